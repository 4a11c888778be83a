import CCoreIntrinsics
/// The size of every frame HVKit manages.
public let frameSize: UInt64 = 0x1000

/// A linear window in which host-physical address `physicalBase + k` is
/// host-virtual `virtualBase + k` for `k < size`. Page-table walks use it to
/// turn table addresses into pointers with one addition.
public struct DirectMap: @unchecked Sendable {
    public let physicalBase: UInt64
    public let virtualBase: UnsafeMutableRawPointer
    public let size: UInt64

    @inlinable public init(physicalBase: UInt64, virtualBase: UnsafeMutableRawPointer, size: UInt64) {
        self.physicalBase = physicalBase
        self.virtualBase = virtualBase
        self.size = size
    }

    /// The pointer for `hpa`, or nil when it lies outside the window.
    @inlinable
    public func pointer(_ hpa: UInt64) -> UnsafeMutableRawPointer? {
        let offset = hpa &- physicalBase
        return offset < size ? virtualBase + Int(truncatingIfNeeded: offset) : nil
    }

    /// The number, counted from the window's start, of the frame holding
    /// `pointer`, which must lie inside the window (no check: hot paths).
    @inlinable @inline(__always)
    public func frameIndex(of pointer: UnsafeRawPointer) -> Int {
        Int(truncatingIfNeeded: (UInt(bitPattern: pointer) &- UInt(bitPattern: virtualBase)) >> 12)
    }

    @inlinable
    public func physical(_ pointer: UnsafeRawPointer) -> UInt64? {
        let offset = UInt64(UInt(bitPattern: pointer - UnsafeRawPointer(virtualBase)))
        return pointer >= UnsafeRawPointer(virtualBase) && offset < size ? physicalBase + offset : nil
    }
}

/// Where frames come from. The core never makes a syscall itself: memory
/// reaches it only through an allocator (an in-process heap pool in tests,
/// an mmap pool when guests run on KVM).
///
/// The raw calls hand out addresses; `PhysFrame` is the owning wrapper that
/// frees on drop. Implementations are thread-safe.
public protocol FrameAllocator: AnyObject, Sendable {
    /// One 4 KiB frame. Its contents are unspecified.
    func allocateFrame() throws(FrameError) -> HostPhysAddr
    /// `count` frames, not necessarily contiguous, as host-physical
    /// addresses. All or nothing: on failure none stay allocated.
    func allocateFrames(count: Int) throws(FrameError) -> [UInt64]
    /// `count` physically contiguous frames starting at a multiple of `alignment`.
    func allocateContiguous(count: Int, alignment: UInt64) throws(FrameError) -> HostPhysAddr
    /// Exactly the frames `[start, start + count * 4 KiB)`, for identity maps.
    func allocate(at start: HostPhysAddr, count: Int) throws(FrameError)
    /// Returns frames. Freeing a frame that is not allocated is a program
    /// error and traps: it would hand one frame to two owners.
    func free(_ start: HostPhysAddr, count: Int)
    /// Returns several runs at once (an allocator may take its lock once).
    /// The same rules as `free` for every run.
    func free(runs: UnsafeBufferPointer<FrameRun>)
    /// `free` for frames that read as zero now (an emptied page table): an
    /// allocator that knows which frames are zero may hand them out again
    /// with no zeroing and, since they stay resident, no host page fault.
    /// The caller vouches for the contents; debug builds check them.
    func freeZeroed(_ start: HostPhysAddr, count: Int)
    /// The window through which every frame of this allocator can be touched.
    var directMap: DirectMap { get }
    /// Frames not handed out.
    var freeFrameCount: Int { get }
    /// Makes `count` frames at `start`, just allocated, read as zero. An
    /// allocator that knows which frames are still zero (the host gave them
    /// zeroed and nobody wrote them since) skips those: no write, no host
    /// page touched. Call it before anyone writes the frames.
    func zero(_ start: HostPhysAddr, count: Int)
    /// `zero`, for a long run nobody will touch soon (a lazy window): where
    /// the host can drop pages instead of writing them (so they read as
    /// zero and are not resident until touched), it does.
    func zeroUntouched(_ start: HostPhysAddr, count: Int)
    /// One frame that reads as zero: `allocateFrame` then `zero`, in one
    /// step where the allocator can (one lock, no zeroing of a frame it
    /// knows is zero): the fault path's and a new page table's allocation.
    func allocateZeroedFrame() throws(FrameError) -> HostPhysAddr
    /// `count` frames that read as zero, not necessarily contiguous:
    /// `allocateFrames` then `zero` of each, in one step where the allocator
    /// can (one lock for the batch, no zeroing of frames it knows are zero):
    /// how an address space refills its reserve of frames for faults. All
    /// or nothing. Fills all of `frames` (as many as it holds), lowest
    /// first where the allocator has an order, straight into the caller's
    /// storage (the reserve's own buffer: no array per refill).
    func allocateZeroedFrames(into frames: UnsafeMutableBufferPointer<UInt64>) throws(FrameError)
    /// A zeroed frame for a page table: from the top of the pool where the
    /// allocator can, so tables (small, long-lived, rewritten often) stay
    /// together and resident instead of cutting up the runs that data
    /// areas, lazy windows and huge pages take from the bottom.
    func allocateTableFrame() throws(FrameError) -> HostPhysAddr
}

extension FrameAllocator {
    /// One call per frame, so an allocator that counts calls sees each one.
    public func allocateFrames(count: Int) throws(FrameError) -> [UInt64] {
        var frames: [UInt64] = []
        frames.reserveCapacity(count)
        do {
            for _ in 0..<count { frames.append(try allocateFrame().raw) }
        } catch {
            for f in frames { free(HostPhysAddr(f), count: 1) }
            throw error
        }
        return frames
    }

    public func hostVirtual(_ hpa: HostPhysAddr) -> UnsafeMutableRawPointer? {
        directMap.pointer(hpa.raw)
    }

    public func hostPhysical(_ pointer: UnsafeRawPointer) -> HostPhysAddr? {
        directMap.physical(pointer).map(HostPhysAddr.init)
    }

    public func zero(_ start: HostPhysAddr, count: Int) { fillZero(start, count: count) }

    public func zeroUntouched(_ start: HostPhysAddr, count: Int) { zero(start, count: count) }

    public func allocateZeroedFrame() throws(FrameError) -> HostPhysAddr {
        let frame = try allocateFrame()
        zero(frame, count: 1)
        return frame
    }

    public func allocateZeroedFrames(into frames: UnsafeMutableBufferPointer<UInt64>) throws(FrameError) {
        let taken = try allocateFrames(count: frames.count)
        for (i, f) in taken.enumerated() {
            zero(HostPhysAddr(f), count: 1)
            frames[i] = f
        }
    }

    /// `allocateZeroedFrames(into:)`, as an array of `count` frames.
    public func allocateZeroedFrames(count: Int) throws(FrameError) -> [UInt64] {
        var error: FrameError?
        let frames = [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(FrameError) { try allocateZeroedFrames(into: buffer); initialized = count } catch let e { error = e; initialized = 0 }
        }
        if let error { throw error }
        return frames
    }

    public func free(runs: UnsafeBufferPointer<FrameRun>) { for run in runs { free(run.start, count: run.count) } }

    /// `free(runs:)` for runs in an array.
    public func free(runs: [FrameRun]) { runs.withUnsafeBufferPointer { free(runs: $0) } }

    public func allocateTableFrame() throws(FrameError) -> HostPhysAddr { try allocateZeroedFrame() }

    /// An allocator that does not track zero frames treats them as any other.
    public func freeZeroed(_ start: HostPhysAddr, count: Int) { free(start, count: count) }

    /// Fills `count` frames at `start` with zero bytes.
    public func fillZero(_ start: HostPhysAddr, count: Int) {
        guard let p = hostVirtual(start) else {
            preconditionFailure("zeroing \(start), which this allocator does not map")
        }
        // A few frames (a fault's): streaming stores skip reading cold lines
        // in. Long runs (eager populate): the C library's fill is as fast.
        if count <= 16 {
            hv_zero_streaming(p, count * Int(frameSize))
        } else {
            p.initializeMemory(as: UInt8.self, repeating: 0, count: count * Int(frameSize))
        }
    }
}
