import Synchronization

/// An in-process frame pool over one aligned heap block. Host-physical
/// addresses are `physicalBase + offset`; the base is non-zero so that a
/// forgotten translation (address 0) can never look like a real frame.
public final class HeapFramePool: FrameAllocator {
    public let physicalBase: HostPhysAddr
    public let capacityFrames: Int
    public let directMap: DirectMap
    private let bitmap: HVMutex<FrameBitmap>
    private let release: @Sendable (UnsafeMutableRawPointer) -> Void
    /// The host's help in zeroing: drops the pages of a range so they read
    /// as zero again (MADV_DONTNEED on private anonymous memory); false
    /// when it could not, and the pool writes zeros itself.
    private let discard: (@Sendable (UnsafeMutableRawPointer, Int) -> Bool)?
    /// Nanoseconds spent writing zeros or dropping pages, on every thread.
    private let zeroingTime = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - capacity: bytes, a positive multiple of 4 KiB.
    ///   - physicalBase: non-zero and 1 GiB aligned, so 2 MiB and 1 GiB
    ///     alignments in host-physical terms can be met.
    public convenience init(capacity: UInt64, physicalBase: HostPhysAddr = HostPhysAddr(0x1_0000_0000)) {
        precondition(capacity > 0 && capacity % frameSize == 0, "pool capacity must be a positive multiple of 4 KiB")
        // SAFETY: the block lives until deinit; 2 MiB alignment lets the host
        // back 2 MiB frames with huge pages.
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Int(capacity), alignment: Int(PageSize.size2M.bytes))
        self.init(memory: memory, capacity: capacity, physicalBase: physicalBase, zeroFilled: false) { $0.deallocate() }
    }

    /// A pool over memory someone else mapped (an mmap region for KVM);
    /// `release` gives it back when the pool goes.
    ///
    /// SAFETY: `memory` must stay valid and writable for `capacity` bytes
    /// until `release` is called.
    ///
    /// - Parameter zeroFilled: the memory reads as zero now (fresh anonymous
    ///   mmap): frames handed out for the first time need no zeroing.
    public init(memory: UnsafeMutableRawPointer, capacity: UInt64, physicalBase: HostPhysAddr, zeroFilled: Bool,
                discard: (@Sendable (UnsafeMutableRawPointer, Int) -> Bool)? = nil,
                release: @escaping @Sendable (UnsafeMutableRawPointer) -> Void) {
        precondition(capacity > 0 && capacity % frameSize == 0, "pool capacity must be a positive multiple of 4 KiB")
        precondition(physicalBase.raw != 0 && physicalBase.isAligned(to: .size1G), "pool base must be non-zero and 1 GiB aligned")
        precondition(!physicalBase.raw.addingReportingOverflow(capacity).overflow, "pool end overflows")
        self.physicalBase = physicalBase
        capacityFrames = Int(capacity / frameSize)
        directMap = DirectMap(physicalBase: physicalBase.raw, virtualBase: memory, size: capacity)
        bitmap = HVMutex(FrameBitmap(frameCount: capacityFrames, zeroFilled: zeroFilled))
        self.release = release
        self.discard = discard
    }

    deinit { release(directMap.virtualBase) }

    public var freeFrameCount: Int { bitmap.withLock { $0.freeCount } }

    /// Wall-clock milliseconds every thread has spent zeroing this pool's
    /// frames so far (writing zeros, or asking the host to drop pages):
    /// known-zero frames cost nothing and add nothing.
    public var zeroingMilliseconds: Double { Double(zeroingTime.load(ordering: .relaxed)) / 1e6 }

    /// Runs `body` (a zeroing step) and adds its time to `zeroingTime`.
    @inline(__always)
    private func timedZeroing(_ body: () -> Void) {
        let start = ContinuousClock.now
        body()
        let d = ContinuousClock.now - start
        zeroingTime.add(UInt64(d.components.seconds) &* 1_000_000_000 &+ UInt64(d.components.attoseconds / 1_000_000_000), ordering: .relaxed)
    }

    /// Frames still as the host gave them (zero), allocated or not.
    public var knownZeroFrameCount: Int { bitmap.withLock { $0.cleanCount } }

    /// Free runs shorter than this (in frames) are scrubbed by writing
    /// zeros, longer ones by the host dropping their pages. A short run is
    /// a table or a small area's frame among others in use, likely handed
    /// out again soon: a dropped page would cost a syscall now and a host
    /// page fault at its next use, each more than writing it. A long run
    /// (a guest's RAM) goes back to the host, and leaves the RSS.
    public static let discardThreshold = 512

    /// Zeroes free frames that were used, in bulk and off any fault path
    /// (the host drops long runs when it can), so handing them out later
    /// costs no zeroing. Returns how many frames it scrubbed.
    @discardableResult
    public func scrub(limit: Int = .max) -> Int {
        let runs = bitmap.withLock { $0.takeDirtyFree(limit: limit) }
        if !runs.isEmpty {
            timedZeroing {
                for run in runs {
                    let p = directMap.pointer(address(ofFrame: run.start).raw)!
                    if run.count < Self.discardThreshold || discard?(p, run.count * Int(frameSize)) != true {
                        fillZero(address(ofFrame: run.start), count: run.count)
                    }
                }
            }
        }
        // Back in circulation, known zero.
        bitmap.withLock { map in for run in runs { map.set(run.start, run.count, used: false) } }
        return runs.reduce(0) { $0 + $1.count }
    }

    /// Zeroes only the frames of the run that may hold data; frames the
    /// host gave zeroed and nobody has written since are left untouched
    /// (no write, no host page fault).
    public func zero(_ start: HostPhysAddr, count: Int) {
        if count == 1 {
            // The fault path's case: one bit, no list.
            let index = frameIndex(start)
            if bitmap.withLock({ $0.takeDirtyBit(index) }) { timedZeroing { fillZero(start, count: 1) } }
            return
        }
        let runs = takeDirty(start, count)
        if runs.isEmpty { return }
        timedZeroing { for run in runs { fillZero(address(ofFrame: run.start), count: run.count) } }
    }

    /// One lock: the lowest free frame and whether it may hold data; zeroed
    /// (outside the lock) only then.
    public func allocateZeroedFrame() throws(FrameError) -> HostPhysAddr {
        let taken = bitmap.withLock { map -> (Int, Bool)? in
            guard let index = map.takeOne() else { return nil }
            return (index, map.takeDirtyBit(index))
        }
        guard let (index, dirty) = taken else { throw .outOfMemory(requestedFrames: 1, freeFrames: 0) }
        let frame = address(ofFrame: index)
        if dirty { timedZeroing { fillZero(frame, count: 1) } }
        return frame
    }

    /// `allocateZeroedFrame`, from the top of the pool.
    public func allocateTableFrame() throws(FrameError) -> HostPhysAddr {
        let taken = bitmap.withLock { map -> (Int, Bool)? in
            guard let index = map.takeHighest() else { return nil }
            return (index, map.takeDirtyBit(index))
        }
        guard let (index, dirty) = taken else { throw .outOfMemory(requestedFrames: 1, freeFrames: 0) }
        let frame = address(ofFrame: index)
        if dirty { timedZeroing { fillZero(frame, count: 1) } }
        return frame
    }

    private func frameIndex(_ start: HostPhysAddr) -> Int {
        guard let offset = start.distance(from: physicalBase), offset % frameSize == 0, offset / frameSize < UInt64(capacityFrames) else {
            preconditionFailure("zeroing \(start), which this pool does not hold")
        }
        return Int(offset / frameSize)
    }

    /// The runs of `count` frames at `start` that may hold data, marked clean.
    private func takeDirty(_ start: HostPhysAddr, _ count: Int) -> [(start: Int, count: Int)] {
        guard let offset = start.distance(from: physicalBase), offset % frameSize == 0, Int(offset / frameSize) + count <= capacityFrames else {
            preconditionFailure("zeroing \(start), which this pool does not hold")
        }
        return bitmap.withLock { $0.takeDirty(Int(offset / frameSize), count) }
    }

    /// `zero`, but the host drops the frames that may hold data when it
    /// can (they stay non-resident until touched) instead of writing them.
    public func zeroUntouched(_ start: HostPhysAddr, count: Int) {
        let runs = takeDirty(start, count)
        if runs.isEmpty { return }
        timedZeroing {
            for run in runs {
                let at = address(ofFrame: run.start)
                if discard?(directMap.pointer(at.raw)!, run.count * Int(frameSize)) != true { fillZero(at, count: run.count) }
            }
        }
    }

    /// Touches every byte once, so that later timing sees no host page faults.
    public func prefault() {
        directMap.virtualBase.initializeMemory(as: UInt8.self, repeating: 0, count: capacityFrames * Int(frameSize))
    }

    private func address(ofFrame index: Int) -> HostPhysAddr {
        HostPhysAddr(physicalBase.raw + UInt64(index) * frameSize)
    }

    public func allocateFrame() throws(FrameError) -> HostPhysAddr {
        let index = bitmap.withLock { $0.takeOne() }
        guard let index else { throw .outOfMemory(requestedFrames: 1, freeFrames: 0) }
        return address(ofFrame: index)
    }

    /// One lock for the batch; only frames that may hold data are zeroed,
    /// after the lock is dropped (nobody else can see them yet).
    public func allocateZeroedFrames(into frames: UnsafeMutableBufferPointer<UInt64>) throws(FrameError) {
        let count = frames.count
        guard count > 0, let out = frames.baseAddress else { return }
        let base = physicalBase.raw
        var dirty: [UInt64] = []
        let taken: Bool = bitmap.withLock { map in
            guard map.freeCount >= count else { return false }
            map.take(count, base: base, into: out, dirtyFrames: &dirty)
            return true
        }
        guard taken else { throw .outOfMemory(requestedFrames: count, freeFrames: freeFrameCount) }
        if !dirty.isEmpty { timedZeroing { for f in dirty { fillZero(HostPhysAddr(f), count: 1) } } }
    }

    /// Takes the lock once for the whole batch.
    public func allocateFrames(count: Int) throws(FrameError) -> [UInt64] {
        guard count > 0 else { return [] }
        let base = physicalBase.raw
        let result: [UInt64]? = bitmap.withLock { map in
            guard map.freeCount >= count else { return nil }
            return [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
                var i = 0
                map.take(count) { frame in
                    buffer[i] = base &+ UInt64(frame) &* frameSize
                    i += 1
                }
                initialized = count
            }
        }
        guard let result else { throw .outOfMemory(requestedFrames: count, freeFrames: freeFrameCount) }
        return result
    }

    public func allocateContiguous(count: Int, alignment: UInt64) throws(FrameError) -> HostPhysAddr {
        guard count > 0 else { throw .invalidCount(count) }
        guard alignment >= frameSize, alignment & (alignment - 1) == 0 else { throw .invalidAlignment(alignment) }
        // The base is 1 GiB aligned, so frame-index alignment is address alignment up to 1 GiB.
        let step = Int(min(alignment, PageSize.size1G.bytes) / frameSize)
        let result: Result<Int, FrameError> = bitmap.withLock { map in
            guard let start = map.findRun(count, alignment: step) else {
                return .failure(.outOfMemory(requestedFrames: count, freeFrames: map.freeCount))
            }
            map.set(start, count, used: true)
            return .success(start)
        }
        let start = try result.get()
        let hpa = address(ofFrame: start)
        guard hpa.raw % alignment == 0 else {
            free(hpa, count: count)
            throw .outOfMemory(requestedFrames: count, freeFrames: freeFrameCount)
        }
        return hpa
    }

    public func allocate(at start: HostPhysAddr, count: Int) throws(FrameError) {
        guard count > 0 else { throw .invalidCount(count) }
        guard let offset = start.distance(from: physicalBase), offset % frameSize == 0,
              offset / frameSize < UInt64(capacityFrames)
        else { throw .unavailable(at: start, frames: count) }
        let index = Int(offset / frameSize)
        let taken = bitmap.withLock { map -> Bool in
            guard map.isFree(index, count) else { return false }
            map.set(index, count, used: true)
            return true
        }
        if !taken { throw .unavailable(at: start, frames: count) }
    }

    /// One lock for every run.
    public func free(runs: UnsafeBufferPointer<FrameRun>) {
        // A few runs (a small unmap): one by one.
        if runs.count <= 8 {
            bitmap.withLock { map in for run in runs { release(run, &map) } }
            return
        }
        // Many single frames (an unmap after scattered faults) go in one
        // pass over the runs, with no list of indexes in between.
        bitmap.withLock { map in
            if let stopped = map.releaseSingleFrames(of: runs, base: physicalBase.raw) {
                preconditionFailure("double free or foreign frame: \(runs[stopped].start)")
            }
            for run in runs where run.count > 1 { release(run, &map) }
        }
    }

    /// One run back to the bitmap, marked as possibly holding data; traps on
    /// a frame that is not this pool's or not allocated.
    private func release(_ run: FrameRun, _ map: inout FrameBitmap) {
        guard let offset = run.start.distance(from: physicalBase), offset % frameSize == 0 else {
            preconditionFailure("freeing \(run.start), which this pool never handed out")
        }
        let index = Int(offset / frameSize)
        if run.count == 1 {
            precondition(map.releaseOne(index), "double free or foreign frame: \(run.start)")
            return
        }
        precondition(map.isAllUsed(index, run.count), "double free or foreign frame: \(run.count) frame(s) at \(run.start)")
        map.set(index, run.count, used: false)
        map.markDirty(index, run.count)
    }

    public func free(_ start: HostPhysAddr, count: Int) { free(start, count: count, zeroed: false) }

    /// Free, and known zero from now on: handed out again with no zeroing.
    public func freeZeroed(_ start: HostPhysAddr, count: Int) {
        #if DEBUG
        if let p = directMap.pointer(start.raw) {
            // SAFETY: the caller still owns these frames, which lie inside the pool's window.
            let words = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt64.self), count: count * Int(frameSize) / 8)
            precondition(!words.contains { $0 != 0 }, "freeZeroed: \(count) frame(s) at \(start) are not zero")
        }
        #endif
        free(start, count: count, zeroed: true)
    }

    private func free(_ start: HostPhysAddr, count: Int, zeroed: Bool) {
        guard let offset = start.distance(from: physicalBase), offset % frameSize == 0 else {
            preconditionFailure("freeing \(start), which this pool never handed out")
        }
        let index = Int(offset / frameSize)
        bitmap.withLock { map in
            precondition(map.isAllUsed(index, count), "double free or foreign frame: \(count) frame(s) at \(start)")
            map.set(index, count, used: false)
            if zeroed { _ = map.takeDirty(index, count) } else { map.markDirty(index, count) }
        }
    }
}
