/// A space's reserve of frames for faults: zeroed frames taken from the
/// allocator in one call (one pool lock for many faults) and handed out one
/// per lazy fill under the space's own lock.
///
/// Accounting stays exact: a reserved frame is live in the allocator, owned
/// by this space, mapped nowhere, and never a guest's (so it goes back to the
/// allocator directly, with no invalidation). Refills double from 2 frames up
/// to `maxReserveBatch`, so a space that faults a few times holds about as
/// many frames as it used; `clear` and deinit give the reserve back, and so
/// does any operation of this space that runs short of frames while the
/// reserve holds some (it then runs once more: every operation is
/// all-or-nothing). Frames in one space's reserve are not available to
/// another space until that space uses them or gives them back
/// (`releaseReservedFrames`).
extension AddrSpace {
    /// The most frames one refill takes (256 KiB).
    public static var maxReserveBatch: Int { 64 }

    /// A frame for a lazy page: zeroed unless this space does not zero
    /// (`FrameZeroing.unsafeNeverForBenchmarks`), from the reserve.
    @inline(__always)
    func reservedFrame(_ s: inout State) throws(FrameError) -> HostPhysAddr {
        if let f = s.reserve.pop() { return HostPhysAddr(f) }
        return try refillReserve(&s)
    }

    /// Refills the reserve with one allocator call and returns one of its
    /// frames. When the allocator cannot give the whole batch, one frame,
    /// as a space without a reserve would take it; an injected failure
    /// fails the fault, as it would without a reserve.
    @inline(never)
    func refillReserve(_ s: inout State) throws(FrameError) -> HostPhysAddr {
        let batch = s.reserveBatch
        if batch > 1 {
            do {
                if zeroing == .always {
                    // Straight into the reserve's buffer.
                    try s.reserve.fill(batch) { (frames) throws(FrameError) in try allocator.allocateZeroedFrames(into: frames) }
                } else {
                    s.reserve.load(try allocator.allocateFrames(count: batch)[...])
                }
                s.reserveBatch = min(batch * 2, Self.maxReserveBatch)
                return HostPhysAddr(s.reserve.pop()!)
            } catch {
                guard case .outOfMemory = error else { throw error }
                s.reserveBatch = 1
            }
        } else {
            s.reserveBatch = 2
        }
        return zeroing == .always ? try allocator.allocateZeroedFrame() : try allocator.allocateFrame()
    }

    /// Gives every reserved frame back to the allocator. They were never
    /// mapped, so no guest can reach them and no invalidation is owed.
    func releaseReserve(_ s: inout State) {
        guard !s.reserve.isEmpty else { return }
        for f in s.reserve.frames {
            // Zeroed frames nobody wrote: the allocator may hand them out again without zeroing.
            if zeroing == .always { allocator.freeZeroed(HostPhysAddr(f), count: 1) } else { allocator.free(HostPhysAddr(f), count: 1) }
        }
        s.reserve.removeAll()
    }

    /// True when `e` is a real shortage of frames (not an injected failure,
    /// which must reach the caller as it would without a reserve).
    static func isShortage(_ e: AddrSpaceError) -> Bool {
        switch e {
        case .outOfFrames(.outOfMemory), .pageTable(.outOfFrames(.outOfMemory)),
             .identityUnavailable(_, .outOfMemory), .identityUnavailable(_, .unavailable): true
        default: false
        }
    }

    /// The frames in this space's reserve: live in the allocator, mapped nowhere.
    public var reservedFrames: [UInt64] { state.withLock { $0.reserve.frames } }

    /// Gives the reserve back to the allocator now (for another space, or
    /// before measuring free memory); the next fault starts a new one.
    public func releaseReservedFrames() {
        state.withLock { s in
            releaseReserve(&s)
            s.reserveBatch = 2
        }
    }
}

/// The reserve's storage: a fixed buffer of frame addresses, used only
/// under the space's lock (no array, so no copy-on-write check or bounds
/// check on the fault path).
struct FrameStack: ~Copyable {
    let capacity: Int
    // SAFETY: owned by this value alone (it is not copyable) and freed in deinit.
    private let buffer: UnsafeMutablePointer<UInt64>
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        buffer = .allocate(capacity: capacity)
    }

    deinit { buffer.deallocate() }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    mutating func pop() -> UInt64? {
        guard count > 0 else { return nil }
        count &-= 1
        // SAFETY: 0 <= count < capacity, and slots below count are initialised.
        return buffer[count]
    }

    mutating func push(_ frame: UInt64) {
        precondition(count < capacity, "the frame reserve is full")
        // SAFETY: count < capacity.
        buffer[count] = frame
        count += 1
    }

    /// Replaces the contents with `frames`, to be popped in their order.
    mutating func load(_ frames: ArraySlice<UInt64>) {
        precondition(frames.count <= capacity, "\(frames.count) frames for a reserve of \(capacity)")
        let n = frames.count
        count = n
        frames.withUnsafeBufferPointer { source in
            // SAFETY: n <= capacity; the last slot gets the first frame, popped first.
            for i in 0..<n { buffer[n &- 1 &- i] = source[i] }
        }
    }

    /// Replaces the contents of an empty stack with the `n` frames `take`
    /// writes into its buffer, to be popped in the order written. Left
    /// empty when `take` throws.
    mutating func fill(_ n: Int, _ take: (UnsafeMutableBufferPointer<UInt64>) throws(FrameError) -> Void) throws(FrameError) {
        precondition(count == 0 && n <= capacity, "filling a reserve of \(capacity) holding \(count) with \(n) frames")
        // SAFETY: n <= capacity; the slots are UInt64, trivially initialised by the writes.
        try take(UnsafeMutableBufferPointer(start: buffer, count: n))
        // Popped from the top: reversed, so the first written comes first.
        var written = UnsafeMutableBufferPointer(start: buffer, count: n)
        written.reverse()
        count = n
    }

    mutating func removeAll() { count = 0 }

    /// The frames held, in the order they will be handed out.
    var frames: [UInt64] { (0..<count).reversed().map { buffer[$0] } }
}
