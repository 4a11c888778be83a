import Synchronization

/// Wraps any allocator and keeps books: which frames are live, how many at
/// most were live at once, how many allocation calls were made. It traps on
/// a double free or on freeing a frame it never gave out, and can be told to
/// fail a chosen allocation so tests can check every error path.
public final class TrackingAllocator: FrameAllocator {
    /// What to do when a caller frees a frame that is not live.
    public enum OnMisuse: Sendable {
        /// Stop the process: the default, since a double free hands one
        /// frame to two owners.
        case trap
        /// Refuse the free, keep a description, and go on: for checkers that
        /// want a counterexample rather than a crash.
        case record
    }

    private struct Books {
        var violations: [String] = []
        var live = Set<UInt64>()
        var peak = 0
        var allocations = 0
        var failAt: Int?
    }

    public let inner: any FrameAllocator
    public let onMisuse: OnMisuse
    private let books = HVMutex(Books())

    public init(_ inner: any FrameAllocator, onMisuse: OnMisuse = .trap) {
        self.inner = inner
        self.onMisuse = onMisuse
    }

    /// Frees refused in `.record` mode, in words.
    public var violations: [String] { books.withLock { $0.violations } }

    public var directMap: DirectMap { inner.directMap }
    public var freeFrameCount: Int { inner.freeFrameCount }

    /// Frames handed out and not yet freed.
    public var liveFrames: Int { books.withLock { $0.live.count } }
    public var peakFrames: Int { books.withLock { $0.peak } }
    /// Allocation calls made so far (each call counts once, whatever its size).
    public var allocationCount: Int { books.withLock { $0.allocations } }
    public func isLive(_ frame: HostPhysAddr) -> Bool { books.withLock { $0.live.contains(frame.raw) } }
    public var liveFrameSet: Set<UInt64> { books.withLock { $0.live } }

    /// Makes allocation call number `allocationCount + k` (k >= 1) fail with
    /// `.injectedFailure`; nil clears it.
    public func failAllocation(after k: Int?) {
        books.withLock { b in b.failAt = k.map { b.allocations + $0 } }
    }

    private func beginAllocation() throws(FrameError) {
        let failed: Int? = books.withLock { b in
            b.allocations += 1
            if b.failAt == b.allocations { b.failAt = nil; return b.allocations }
            return nil
        }
        if let failed { throw .injectedFailure(allocationNumber: failed) }
    }

    private func record(_ start: HostPhysAddr, count: Int) {
        record((0..<count).lazy.map { start.raw + UInt64($0) * frameSize })
    }

    /// Marks `frames`, just handed out, live; traps on one that already was.
    private func record(_ frames: some Sequence<UInt64>) {
        books.withLock { b in
            for frame in frames {
                let (inserted, _) = b.live.insert(frame)
                precondition(inserted, "allocator handed out \(hex(frame)) twice")
            }
            b.peak = max(b.peak, b.live.count)
        }
    }

    public func allocateFrame() throws(FrameError) -> HostPhysAddr {
        try beginAllocation()
        let frame = try inner.allocateFrame()
        record(frame, count: 1)
        return frame
    }

    public func allocateZeroedFrame() throws(FrameError) -> HostPhysAddr {
        try beginAllocation()
        let frame = try inner.allocateZeroedFrame()
        record(frame, count: 1)
        return frame
    }

    /// One call, however many frames: the inner allocator's batch.
    public func allocateZeroedFrames(into frames: UnsafeMutableBufferPointer<UInt64>) throws(FrameError) {
        try beginAllocation()
        try inner.allocateZeroedFrames(into: frames)
        record(UnsafeBufferPointer(frames))
    }

    public func allocateTableFrame() throws(FrameError) -> HostPhysAddr {
        try beginAllocation()
        let frame = try inner.allocateTableFrame()
        record(frame, count: 1)
        return frame
    }

    public func allocateContiguous(count: Int, alignment: UInt64) throws(FrameError) -> HostPhysAddr {
        try beginAllocation()
        let start = try inner.allocateContiguous(count: count, alignment: alignment)
        record(start, count: count)
        return start
    }

    public func allocate(at start: HostPhysAddr, count: Int) throws(FrameError) {
        try beginAllocation()
        try inner.allocate(at: start, count: count)
        record(start, count: count)
    }

    public func zero(_ start: HostPhysAddr, count: Int) { inner.zero(start, count: count) }
    public func zeroUntouched(_ start: HostPhysAddr, count: Int) { inner.zeroUntouched(start, count: count) }

    /// Each run is checked and recorded as `free` does; the good ones go to
    /// the inner allocator in one batch.
    public func free(runs: UnsafeBufferPointer<FrameRun>) {
        let accepted = runs.filter { !refuse($0.start, $0.count) }
        inner.free(runs: accepted)
    }

    public func freeZeroed(_ start: HostPhysAddr, count: Int) {
        if !refuse(start, count) { inner.freeZeroed(start, count: count) }
    }

    public func free(_ start: HostPhysAddr, count: Int) {
        if !refuse(start, count) { inner.free(start, count: count) }
    }

    /// Takes the run off the live set; true (and recorded or trapped) when
    /// some frame of it is not live.
    private func refuse(_ start: HostPhysAddr, _ count: Int) -> Bool {
        books.withLock { b in
            let frames = (0..<count).map { start.raw + UInt64($0) * frameSize }
            if let bad = frames.first(where: { !b.live.contains($0) }) {
                let message = "double free, or free of a frame never handed out: \(hex(bad))"
                guard onMisuse == .record else { preconditionFailure(message) }
                b.violations.append(message)
                return true
            }
            for frame in frames { b.live.remove(frame) }
            return false
        }
    }
}
