import Synchronization

/// Wraps any allocator and keeps books: which frames are live, how many at
/// most were live at once, how many allocation calls were made. It traps on
/// a double free or on freeing a frame it never gave out, and can be told to
/// fail a chosen allocation so tests can check every error path.
public final class TrackingAllocator: FrameAllocator {
    private struct Books {
        var live = Set<UInt64>()
        var peak = 0
        var allocations = 0
        var failAt: Int?
    }

    public let inner: any FrameAllocator
    private let books = Mutex(Books())

    public init(_ inner: any FrameAllocator) { self.inner = inner }

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
        books.withLock { b in
            for i in 0..<count {
                let (inserted, _) = b.live.insert(start.raw + UInt64(i) * frameSize)
                precondition(inserted, "allocator handed out \(start) twice")
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

    public func free(_ start: HostPhysAddr, count: Int) {
        books.withLock { b in
            for i in 0..<count {
                let frame = start.raw + UInt64(i) * frameSize
                precondition(b.live.remove(frame) != nil,
                              "double free, or free of a frame never handed out: \(hex(frame))")
            }
        }
        inner.free(start, count: count)
    }
}
