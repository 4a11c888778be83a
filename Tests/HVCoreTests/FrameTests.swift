@testable import HVCore
import Testing

@Suite("Frames: heap pool, tracking allocator, PhysFrame")
struct FrameTests {
    @Test func poolHandsOutDistinctFramesAndTakesThemBack() throws {
        let pool = HeapFramePool(capacity: 64 * frameSize)
        var seen = Set<UInt64>()
        for _ in 0..<64 {
            let f = try pool.allocateFrame()
            #expect(f.raw >= pool.physicalBase.raw && f.raw < pool.physicalBase.raw + 64 * frameSize)
            #expect(f.isAligned(to: .size4K))
            #expect(seen.insert(f.raw).inserted)
        }
        #expect(pool.freeFrameCount == 0)
        #expect(throws: FrameError.outOfMemory(requestedFrames: 1, freeFrames: 0)) { try pool.allocateFrame() }
        for f in seen { pool.free(HostPhysAddr(f), count: 1) }
        #expect(pool.freeFrameCount == 64)
    }

    /// A batch takes whole bitmap words at a time; it must hand out exactly
    /// what one-at-a-time allocation would: the lowest free frames, each once,
    /// across word boundaries and around frames already taken.
    @Test func batchAllocationTakesTheLowestFreeFramesLikeSingles() throws {
        let frames = 300
        let batch = HeapFramePool(capacity: UInt64(frames) * frameSize), single = HeapFramePool(capacity: UInt64(frames) * frameSize)
        var rng = SplitMix64(seed: 11)
        for pool in [batch, single] {
            let all = try pool.allocateFrames(count: frames)
            #expect(pool.freeFrameCount == 0)
            var seeded = SplitMix64(seed: 5)
            for f in all where seeded.below(3) == 0 { pool.free(HostPhysAddr(f), count: 1) }  // scattered holes
        }
        #expect(batch.freeFrameCount == single.freeFrameCount)
        while batch.freeFrameCount > 0 {
            let n = Int(rng.below(UInt64(min(batch.freeFrameCount, 70)))) + 1
            let got = try batch.allocateFrames(count: n)
            let expected = try (0..<n).map { _ in try single.allocateFrame().raw }
            #expect(got == expected, "a batch of \(n)")
            #expect(batch.freeFrameCount == single.freeFrameCount)
        }
        #expect(throws: FrameError.self) { try batch.allocateFrames(count: 1) }
    }

    /// Both zeroing paths (streaming stores for a few frames, the C fill for
    /// long runs) clear exactly the frames asked for.
    @Test(arguments: [1, 3, 16, 17, 40])
    func zeroClearsExactlyItsFrames(count: Int) throws {
        let pool = HeapFramePool(capacity: 64 * frameSize)
        let base = try pool.allocateContiguous(count: 64, alignment: frameSize)
        let bytes = 64 * Int(frameSize)
        let p = pool.hostVirtual(base)!
        p.initializeMemory(as: UInt8.self, repeating: 0xC3, count: bytes)
        let first = HostPhysAddr(base.raw + 2 * frameSize)
        pool.zero(first, count: count)
        let view = UnsafeRawBufferPointer(start: p, count: bytes)
        let lo = 2 * Int(frameSize), hi = lo + count * Int(frameSize)
        #expect(view[lo..<hi].allSatisfy { $0 == 0 }, "the frames are zero")
        #expect(view[..<lo].allSatisfy { $0 == 0xC3 } && view[hi...].allSatisfy { $0 == 0xC3 }, "nothing around them changed")
        pool.free(base, count: 64)
    }

    /// Batch free: every run back under one lock, marked as holding data;
    /// the tracking allocator refuses a bad run and passes the rest on.
    @Test func batchFreeReturnsEveryRun() throws {
        let pool = HeapFramePool(capacity: 64 * 4096)
        let tracker = TrackingAllocator(pool, onMisuse: .record)
        let frames = try (0..<10).map { _ in try tracker.allocateFrame() }
        let zeroBefore = pool.knownZeroFrameCount
        let runs = [FrameRun(start: frames[1], count: 2), FrameRun(start: frames[5], count: 1), FrameRun(start: frames[8], count: 2)]
        tracker.free(runs: runs)
        #expect(pool.freeFrameCount == 64 - 5)
        #expect(tracker.liveFrames == 5)
        #expect(!tracker.isLive(frames[2]) && tracker.isLive(frames[3]) && !tracker.isLive(frames[9]))
        #expect(pool.knownZeroFrameCount == zeroBefore, "a plain heap pool knows nothing zero to begin with")
        // A run with a frame already free is refused and recorded; the good one still goes back.
        tracker.free(runs: [FrameRun(start: frames[5], count: 1), FrameRun(start: frames[0], count: 1)])
        #expect(tracker.violations.count == 1)
        #expect(pool.freeFrameCount == 64 - 4)
    }

    @Test func poolBaseIsNonZero() {
        let pool = HeapFramePool(capacity: frameSize)
        #expect(pool.physicalBase.raw != 0)
    }

    @Test func contiguousAlignedAllocation() throws {
        let pool = HeapFramePool(capacity: 8 * PageSize.size2M.bytes)
        let first = try pool.allocateFrame()  // breaks the first 2 MiB run
        let run = try pool.allocateContiguous(count: 512, alignment: PageSize.size2M.bytes)
        #expect(run.isAligned(to: .size2M))
        #expect(run.raw >= first.raw + PageSize.size2M.bytes - frameSize)
        #expect(pool.freeFrameCount == 8 * 512 - 513)
        #expect(throws: FrameError.invalidAlignment(0x1800)) { try pool.allocateContiguous(count: 2, alignment: 0x1800) }
        #expect(throws: FrameError.invalidCount(0)) { try pool.allocateContiguous(count: 0, alignment: frameSize) }
        #expect(throws: FrameError.self) { try pool.allocateContiguous(count: 8 * 512, alignment: frameSize) }
        pool.free(run, count: 512)
        pool.free(first, count: 1)
        #expect(pool.freeFrameCount == 8 * 512)
    }

    @Test func allocateAtAddress() throws {
        let pool = HeapFramePool(capacity: 16 * frameSize)
        let at = HostPhysAddr(pool.physicalBase.raw + 4 * frameSize)
        try pool.allocate(at: at, count: 4)
        #expect(throws: FrameError.unavailable(at: at, frames: 1)) { try pool.allocate(at: at, count: 1) }
        #expect(throws: FrameError.self) { try pool.allocate(at: HostPhysAddr(pool.physicalBase.raw - frameSize), count: 1) }
        #expect(throws: FrameError.self) { try pool.allocate(at: HostPhysAddr(pool.physicalBase.raw + 15 * frameSize), count: 2) }
        #expect(throws: FrameError.self) { try pool.allocate(at: HostPhysAddr(pool.physicalBase.raw + 1), count: 1) }
        pool.free(at, count: 4)
        #expect(pool.freeFrameCount == 16)
    }

    @Test func directMapTranslatesBothWays() throws {
        let pool = HeapFramePool(capacity: 4 * frameSize)
        let f = try pool.allocateFrame()
        let p = try #require(pool.hostVirtual(f))
        #expect(pool.hostPhysical(p) == f)
        #expect(pool.hostPhysical(p + 17) == HostPhysAddr(f.raw + 17))
        #expect(pool.hostVirtual(HostPhysAddr(0)) == nil)
        #expect(pool.hostVirtual(HostPhysAddr(pool.physicalBase.raw + 4 * frameSize)) == nil)
        pool.free(f, count: 1)
    }

    @Test func physFrameReturnsItselfWhenDropped() throws {
        let tracker = TrackingAllocator(HeapFramePool(capacity: 8 * frameSize))
        do {
            let frame = try PhysFrame(allocator: tracker)
            #expect(tracker.liveFrames == 1)
            #expect(tracker.isLive(frame.start))
        }
        #expect(tracker.liveFrames == 0)
        #expect(tracker.peakFrames == 1)
    }

    @Test func zeroedFrameIsZeroAndFillWorks() throws {
        let pool = HeapFramePool(capacity: 2 * frameSize)
        do {
            let dirty = try PhysFrame(allocator: pool)
            dirty.fill(0xAB)
        }
        let frame = try PhysFrame.zeroed(allocator: pool)
        frame.withUnsafeBytes { bytes in #expect(bytes.allSatisfy { $0 == 0 }) }
        frame.fill(0x5A)
        frame.withUnsafeBytes { bytes in #expect(bytes.count == 4096 && bytes.allSatisfy { $0 == 0x5A }) }
    }

    @Test func intoRawAndAdoptTransferOwnership() throws {
        let tracker = TrackingAllocator(HeapFramePool(capacity: 8 * frameSize))
        let raw = try PhysFrame(allocator: tracker).intoRaw()
        #expect(tracker.liveFrames == 1, "intoRaw must not free")
        _ = PhysFrame(unsafeAdopting: raw, allocator: tracker)
        #expect(tracker.liveFrames == 0)
    }

    @Test func contiguousAndIdentityPhysFrames() throws {
        let tracker = TrackingAllocator(HeapFramePool(capacity: 1024 * frameSize))
        do {
            let big = try PhysFrame(contiguous: 512, alignment: PageSize.size2M.bytes, allocator: tracker)
            #expect(big.start.isAligned(to: .size2M) && big.byteCount == 0x20_0000)
            let pinned = try PhysFrame(at: HostPhysAddr(big.end.raw), count: 2, allocator: tracker)
            #expect(pinned.start == big.end)
            #expect(tracker.liveFrames == 514)
        }
        #expect(tracker.liveFrames == 0)
    }

    @Test func trackerFailsTheKthAllocation() throws {
        let tracker = TrackingAllocator(HeapFramePool(capacity: 8 * frameSize))
        tracker.failAllocation(after: 3)
        let a = try tracker.allocateFrame()
        let b = try tracker.allocateFrame()
        #expect(throws: FrameError.injectedFailure(allocationNumber: 3)) { try tracker.allocateFrame() }
        let c = try tracker.allocateFrame()
        #expect(tracker.allocationCount == 4 && tracker.liveFrames == 3)
        for f in [a, b, c] { tracker.free(f, count: 1) }
        #expect(tracker.liveFrames == 0 && tracker.freeFrameCount == 8)
    }

    @Test func trackerTrapsOnDoubleFree() async {
        await #expect(processExitsWith: .failure) {
            let tracker = TrackingAllocator(HeapFramePool(capacity: 8 * frameSize))
            let f = try! tracker.allocateFrame()
            tracker.free(f, count: 1)
            tracker.free(f, count: 1)
        }
    }

    @Test func trackerTrapsOnForeignFree() async {
        await #expect(processExitsWith: .failure) {
            let tracker = TrackingAllocator(HeapFramePool(capacity: 8 * frameSize))
            tracker.free(HostPhysAddr(0x1_0000_0000), count: 1)
        }
    }

    #if DEBUG
    /// UInt64 masks shift amounts, Z3 does not: a kernel shifting by 64 or
    /// more would make the two domains disagree, so it traps instead.
    @Test func shiftsOf64OrMoreTrap() async {
        await #expect(processExitsWith: .failure) {
            let amount = Int(CommandLine.arguments.count) + 63
            _ = UInt64(1).shiftedLeft(by: amount)
        }
    }
    #endif

    @Test func poolTrapsOnDoubleFreeInABatch() async {
        await #expect(processExitsWith: .failure) {
            let pool = HeapFramePool(capacity: 8 * frameSize)
            let f = try! pool.allocateFrame()
            pool.free(runs: [FrameRun(start: f, count: 1), FrameRun(start: f, count: 1)])
        }
    }

    @Test func poolTrapsOnAFrameFreedTwiceAcrossRunsOfABatch() async {
        await #expect(processExitsWith: .failure) {
            let pool = HeapFramePool(capacity: 8 * frameSize)
            let f = try! pool.allocateFrames(count: 2)
            pool.free(runs: [FrameRun(start: HostPhysAddr(f[0]), count: 2), FrameRun(start: HostPhysAddr(f[1]), count: 1)])
        }
    }

    /// Scattered single frames freed in one batch (an unmap after faults)
    /// are free again, each once, and the searches find them from both ends:
    /// a few runs (freed one by one) and many (freed in one pass).
    @Test(arguments: [5, 12])
    func scatteredSinglesFreedInABatchAreFoundAgain(count: Int) throws {
        let pool = HeapFramePool(capacity: 300 * frameSize)
        let frames = try pool.allocateFrames(count: 300)
        let picks = [5, 63, 64, 130, 299, 7, 8, 70, 71, 200, 201, 250].prefix(count).sorted()
        let freed = picks.map { HostPhysAddr(frames[$0]) }
        pool.free(runs: freed.reversed().map { FrameRun(start: $0, count: 1) } + [FrameRun(start: HostPhysAddr(frames[100]), count: 2)])
        #expect(pool.freeFrameCount == count + 2)
        #expect(try pool.allocateFrame() == freed[0], "the lowest freed frame")
        #expect(try pool.allocateTableFrame() == freed[count - 1], "the highest freed frame")
        #expect(Set(try pool.allocateFrames(count: count)) == Set(freed[1..<(count - 1)].map(\.raw) + [frames[100], frames[101]]))
        #expect(pool.freeFrameCount == 0)
    }

    @Test func poolTrapsOnADoubleFreeAmongManySingles() async {
        await #expect(processExitsWith: .failure) {
            let pool = HeapFramePool(capacity: 64 * frameSize)
            let f = try! pool.allocateFrames(count: 20)
            pool.free(runs: (f + [f[3]]).map { FrameRun(start: HostPhysAddr($0), count: 1) })
        }
    }

    @Test func poolTrapsOnDoubleFree() async {
        await #expect(processExitsWith: .failure) {
            let pool = HeapFramePool(capacity: 8 * frameSize)
            let f = try! pool.allocateFrame()
            pool.free(f, count: 1)
            pool.free(f, count: 1)
        }
    }
}

/// Known-zero frames (issue 18): a pool over memory it is told is zero
/// does not zero a frame again until the frame has been used and freed.
@Suite("FrameRunList")
struct FrameRunListTests {
    final class Sink: @unchecked Sendable {
        var batches: [[FrameRun]] = []
    }

    /// Touching runs merge, whatever their sizes; others stay apart; a full
    /// buffer goes to the sink before the next run, the rest at flush.
    @Test func mergesTouchingRunsAndFlushesWhenFull() {
        let sink = Sink()
        let list = FrameRunList(capacity: 2) { sink.batches.append(Array($0)) }
        let base: UInt64 = 0x1_0000_0000
        list.append(base, frames: 1)
        list.append(base + frameSize, frames: 512)       // touches: one run of 513
        list.append(base + 514 * frameSize, frames: 1)   // a gap of one frame
        list.append(base + 515 * frameSize, frames: 2)   // touches the last
        #expect(sink.batches.isEmpty && list.count == 2)
        list.append(base, frames: 1)                     // before, not after: a third run, so the two go first
        let first: [FrameRun] = [FrameRun(start: HostPhysAddr(base), count: 513), FrameRun(start: HostPhysAddr(base + 514 * frameSize), count: 3)]
        #expect(sink.batches == [first])
        for i in 0..<3 { list.append(base + UInt64(2000 + 2 * i) * frameSize, frames: 1) }
        list.flush()
        #expect(list.count == 0)
        #expect(sink.batches.count == 3)
        let frames: Int = sink.batches.flatMap { $0 }.map(\.count).reduce(0, +)
        #expect(frames == 520)
        list.flush()
        #expect(sink.batches.count == 3, "an empty flush sends nothing")
    }
}

@Suite("Known-zero frames")
struct KnownZeroFrameTests {
    /// Memory that is *not* zero, declared zero-filled: a frame zero() left
    /// alone still shows 0xAA, so the test sees which frames were written.
    static func pool(_ frames: Int) -> HeapFramePool {
        let bytes = frames * 4096
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 2 << 20)
        memory.initializeMemory(as: UInt8.self, repeating: 0xAA, count: bytes)
        return HeapFramePool(memory: memory, capacity: UInt64(bytes), physicalBase: HostPhysAddr(0x1_0000_0000), zeroFilled: true) { $0.deallocate() }
    }

    static func bytes(_ pool: HeapFramePool, _ frame: HostPhysAddr) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: pool.hostVirtual(frame)!, count: 4096))
    }

    /// The fault path's one-step allocation: a known-zero frame is handed
    /// out unwritten, a used one is zeroed, and the time goes to the
    /// pool's zeroing figure only then.
    @Test func allocateZeroedFrameWritesOnlyUsedFrames() throws {
        let pool = Self.pool(2)
        let a = try pool.allocateZeroedFrame()
        #expect(Self.bytes(pool, a).allSatisfy { $0 == 0xAA }, "known zero: not written")
        #expect(pool.zeroingMilliseconds == 0)
        pool.free(a, count: 1)   // now it may hold data
        let b = try pool.allocateZeroedFrame()
        #expect(b == a, "the lowest free frame again")
        #expect(Self.bytes(pool, b).allSatisfy { $0 == 0 }, "a used frame is zeroed")
        #expect(pool.zeroingMilliseconds > 0)
        #expect(pool.knownZeroFrameCount == 2, "and is known zero again")
        _ = try pool.allocateZeroedFrame()
        #expect(throws: FrameError.self) { try pool.allocateZeroedFrame() }
    }

    /// Frames given back in one batch of many single-frame runs (an unmap
    /// after faults) may hold data: they are zeroed before anyone gets
    /// them again, and the pass leaves the counts right.
    @Test func batchFreedSingleFramesAreZeroedBeforeReuse() throws {
        let pool = Self.pool(64)
        let frames = try pool.allocateFrames(count: 40)
        // Every other frame back, in one call of 20 runs (more than the one-by-one path takes).
        let back = stride(from: 0, to: 40, by: 2).map { FrameRun(start: HostPhysAddr(frames[$0]), count: 1) }
        pool.free(runs: back)
        #expect(pool.freeFrameCount == 64 - 20)
        #expect(pool.knownZeroFrameCount == 64 - 20, "the 20 freed frames may hold data")
        let again = try pool.allocateZeroedFrames(count: 20)
        #expect(Set(again) == Set(back.map(\.start.raw)), "the lowest free frames again")
        for f in again { #expect(Self.bytes(pool, HostPhysAddr(f)).allSatisfy { $0 == 0 }, "a freed frame is zeroed") }
    }

    /// The reserve's batch: the lowest free frames, in order, across word
    /// boundaries; the dirty ones zeroed and clean again, the clean ones
    /// not written; all or nothing when the pool is short.
    @Test func allocateZeroedFramesZeroesOnlyDirtyFramesOfTheBatch() throws {
        let pool = Self.pool(200)
        let early = try pool.allocateFrames(count: 130)
        // Frames 3, 63, 64 and 100 hold data now; the rest of the first 130 stay allocated.
        for i in [3, 63, 64, 100] { pool.free(HostPhysAddr(early[i]), count: 1) }
        let batch = try pool.allocateZeroedFrames(count: 72)
        let expected = [3, 63, 64, 100].map { early[$0] } + (130..<198).map { 0x1_0000_0000 + UInt64($0) * 4096 }
        #expect(batch == expected)
        for f in batch.prefix(4) { #expect(Self.bytes(pool, HostPhysAddr(f)).allSatisfy { $0 == 0 }, "a dirty frame is zeroed") }
        for f in batch.dropFirst(4) { #expect(Self.bytes(pool, HostPhysAddr(f)).allSatisfy { $0 == 0xAA }, "a known-zero frame is not written") }
        #expect(pool.knownZeroFrameCount == 200, "every frame is known zero again")
        #expect(pool.freeFrameCount == 200 - 130 - 68)
        #expect(throws: FrameError.self) { try pool.allocateZeroedFrames(count: 3) }
        #expect(pool.freeFrameCount == 2, "a refused batch takes nothing")
        #expect(try pool.allocateZeroedFrames(count: 2).count == 2)
    }

    /// Issue 19: a frame freed as zero (an emptied page table) is handed
    /// out again unwritten; a plain free still makes it dirty.
    @Test func freeZeroedKeepsAFrameKnownZero() throws {
        let pool = Self.pool(2)
        let a = try pool.allocateZeroedFrame()
        pool.hostVirtual(a)!.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)   // what an emptied table holds
        pool.freeZeroed(a, count: 1)
        #expect(pool.knownZeroFrameCount == 2)
        let b = try pool.allocateZeroedFrame()
        #expect(b == a)
        #expect(pool.zeroingMilliseconds == 0, "handed out with no zeroing")
        pool.free(b, count: 1)
        #expect(pool.knownZeroFrameCount == 1, "a plain free may leave data")
    }

    /// Issue 19: the page tables an unmap empties (pruned one by one, or a
    /// whole subtree under a large unmap) go back known zero and really are
    /// zero, so reusing them for tables or guest data costs no zeroing; the
    /// data frames go back as used.
    @Test(arguments: [false, true])
    func emptiedPageTablesComeBackKnownZero(wholeSubtree: Bool) throws {
        let frames = 2048
        let memory = UnsafeMutableRawPointer.allocate(byteCount: frames * 4096, alignment: 2 << 20)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: frames * 4096)
        let pool = HeapFramePool(memory: memory, capacity: UInt64(frames) * 4096, physicalBase: HostPhysAddr(0x1_0000_0000),
                                 zeroFilled: true) { $0.deallocate() }
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: pool,
                                     backing: .frames4K)
        // Scattered pages (each unmap prunes its emptied tables), or 4 MiB
        // of 4 KiB pages unmapped at once (two level-0 tables freed with
        // their entries as a subtree).
        let pages = wholeSubtree ? (0..<1024).map { GuestPhysAddr(0x4000_0000 + UInt64($0) * 4096) }
                                 : (0..<8).map { GuestPhysAddr(UInt64($0) << 30 + 0x1234_5000) }
        if wholeSubtree {
            try space.mapAlloc(pages[0], size: 0x40_0000, flags: .readWrite, populate: .eager)
        } else {
            for g in pages { try space.mapAlloc(g, size: 4096, flags: .readWrite, populate: .eager) }
        }
        let tables = space.tableFrameCount - 1
        #expect(tables >= (wholeSubtree ? 4 : 9))
        // What the guest wrote: every data frame holds 0x77.
        let data = Set(try pages.map { try #require(space.translate($0)).hostAddress.raw })
        for f in data { pool.hostVirtual(HostPhysAddr(f))!.initializeMemory(as: UInt8.self, repeating: 0x77, count: 4096) }
        if wholeSubtree { try space.unmap(pages[0], size: 0x40_0000) } else { for g in pages { try space.unmap(g, size: 4096) } }
        #expect(space.tableFrameCount == 1)
        #expect(pool.knownZeroFrameCount == frames - data.count, "only the \(data.count) data frames may hold data, not the \(tables) tables")
        // Soundness: every other free frame really reads zero.
        let all = try pool.allocateFrames(count: pool.freeFrameCount)
        for f in all where !data.contains(f) {
            #expect(KnownZeroFrameTests.bytes(pool, HostPhysAddr(f)).allSatisfy { $0 == 0 }, "frame \(hex(f)) is known zero but holds data")
        }
        pool.free(runs: all.map { FrameRun(start: HostPhysAddr($0), count: 1) })
    }

    /// Issue 19: page-table frames come from the top of the pool, data
    /// frames from the bottom, so tables do not cut up the runs data takes;
    /// a frame freed high is found again, and both ends meet when full.
    @Test func tableFramesComeFromTheTop() throws {
        let pool = Self.pool(130)
        let top = HostPhysAddr(0x1_0000_0000 + 129 * 4096)
        let t1 = try pool.allocateTableFrame()
        #expect(t1 == top)
        #expect(Self.bytes(pool, t1).allSatisfy { $0 == 0xAA }, "known zero: not written")
        let d1 = try pool.allocateZeroedFrame()
        #expect(d1 == HostPhysAddr(0x1_0000_0000), "data from the bottom")
        let t2 = try pool.allocateTableFrame()
        #expect(t2.raw == top.raw - 4096)
        pool.free(t1, count: 1)
        let t3 = try pool.allocateTableFrame()
        #expect(t3 == top, "the freed top frame again, zeroed: it was used")
        #expect(Self.bytes(pool, t3).allSatisfy { $0 == 0 })
        var seen: Set<UInt64> = [t2.raw, t3.raw, d1.raw]
        for i in 0..<127 {
            let f = i % 2 == 0 ? try pool.allocateTableFrame() : try pool.allocateFrame()
            #expect(seen.insert(f.raw).inserted, "handed out twice: \(f)")
        }
        #expect(pool.freeFrameCount == 0)
        #expect(throws: FrameError.self) { try pool.allocateTableFrame() }
        pool.free(HostPhysAddr(0x1_0000_0000 + 64 * 4096), count: 1)
        #expect(try pool.allocateTableFrame() == HostPhysAddr(0x1_0000_0000 + 64 * 4096), "found below the old top")
    }

    @Test func aSpacesTablesSitAtTheTopOfItsPool() throws {
        let pool = HeapFramePool(capacity: 1024 * 4096)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: pool, backing: .frames4K)
        try space.mapAlloc(GuestPhysAddr(0x4000_0000), size: 0x10_0000, flags: .readWrite, populate: .eager)
        let limit = pool.physicalBase.raw + 1024 * 4096
        #expect(space.tableFrameSet.allSatisfy { $0 >= limit - 8 * 4096 }, "tables at the top")
        #expect(try #require(space.translate(GuestPhysAddr(0x4000_0000))).hostAddress.raw < pool.physicalBase.raw + 256 * 4096, "data at the bottom")
    }

    @Test func firstUseSkipsZeroingAndReuseZeroes() throws {
        let pool = Self.pool(8)
        #expect(pool.knownZeroFrameCount == 8)
        let a = try pool.allocateFrame()
        pool.zero(a, count: 1)
        #expect(Self.bytes(pool, a).allSatisfy { $0 == 0xAA }, "a frame the host gave zeroed is not written again")
        pool.hostVirtual(a)!.storeBytes(of: 0x1234_5678, as: UInt32.self)
        pool.free(a, count: 1)
        #expect(pool.knownZeroFrameCount == 7, "freed after use: it may hold data")
        let again = try pool.allocateFrame()
        #expect(again == a, "lowest first: the same frame")
        pool.zero(again, count: 1)
        #expect(Self.bytes(pool, again).allSatisfy { $0 == 0 }, "a reused frame is zeroed")
        #expect(pool.knownZeroFrameCount == 8, "and known zero again")
    }

    @Test func runsZeroOnlyTheirDirtyFrames() throws {
        let pool = Self.pool(128)
        let run = try pool.allocateContiguous(count: 100, alignment: 4096)
        pool.free(HostPhysAddr(run.raw + 10 * 4096), count: 1)   // frame 10 used and freed
        try pool.allocate(at: HostPhysAddr(run.raw + 10 * 4096), count: 1)
        pool.zero(run, count: 100)
        for i in 0..<100 {
            let expected: UInt8 = i == 10 ? 0 : 0xAA
            #expect(Self.bytes(pool, HostPhysAddr(run.raw + UInt64(i) * 4096)).allSatisfy { $0 == expected }, "frame \(i)")
        }
    }

    @Test func aPoolOverOrdinaryMemoryZeroesEverything() throws {
        let pool = HeapFramePool(capacity: 4 * 4096)
        #expect(pool.knownZeroFrameCount == 0)
        let f = try pool.allocateFrame()
        pool.hostVirtual(f)!.initializeMemory(as: UInt8.self, repeating: 0x55, count: 4096)
        pool.zero(f, count: 1)
        #expect(Self.bytes(pool, f).allSatisfy { $0 == 0 })
    }

    /// A long free run goes back to the host in one call; a short one
    /// (issue 19: a table's or a small area's frame) is written with zeros
    /// and stays resident, which costs less than a syscall now and a host
    /// page fault at its next use.
    @Test func scrubbingHandsLongRunsToTheHostAndWritesShortOnes() throws {
        let long = HeapFramePool.discardThreshold
        let frames = long + 16
        let bytes = frames * 4096
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 2 << 20)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        final class Calls: @unchecked Sendable { var ranges: [(Int, Int)] = [] }
        let calls = Calls()
        let base = UInt(bitPattern: memory)
        let pool = HeapFramePool(memory: memory, capacity: UInt64(bytes), physicalBase: HostPhysAddr(0x1_0000_0000), zeroFilled: true,
                                 discard: { p, n in
                                     calls.ranges.append((Int(UInt(bitPattern: p) - base), n))
                                     p.initializeMemory(as: UInt8.self, repeating: 0, count: n)   // what MADV_DONTNEED gives
                                     return true
                                 }) { $0.deallocate() }
        let frames4 = try pool.allocateFrames(count: 4)
        let spacer = try pool.allocateFrame()
        let longRun = try pool.allocateContiguous(count: long, alignment: 4096)
        for f in frames4 + (0..<long).map({ longRun.raw + UInt64($0) * 4096 }) {
            pool.hostVirtual(HostPhysAddr(f))!.initializeMemory(as: UInt8.self, repeating: 0x77, count: 4096)
        }
        for f in frames4 { pool.free(HostPhysAddr(f), count: 1) }
        pool.free(longRun, count: long)
        #expect(pool.knownZeroFrameCount == frames - 4 - long)
        #expect(pool.scrub() == 4 + long)
        let longOffset = Int(longRun.raw - 0x1_0000_0000)
        #expect(calls.ranges.count == 1 && calls.ranges[0] == (longOffset, long * 4096), "one call, for the long run only: \(calls.ranges)")
        #expect(pool.knownZeroFrameCount == frames && pool.freeFrameCount == frames - 1, "clean and free again")
        for f in frames4 {
            #expect(Array(UnsafeRawBufferPointer(start: pool.hostVirtual(HostPhysAddr(f))!, count: 4096)).allSatisfy { $0 == 0 }, "written zero")
        }
        #expect(pool.scrub() == 0, "nothing left to scrub")
        // Handed out again, they are not written: they are known zero.
        let again = try pool.allocateFrame()
        pool.zero(again, count: 1)
        #expect(calls.ranges.count == 1)
        #expect(Array(UnsafeRawBufferPointer(start: pool.hostVirtual(again)!, count: 4096)).allSatisfy { $0 == 0 })
        pool.free(spacer, count: 1)
    }

    @Test func scrubbingWithoutTheHostWritesZeros() throws {
        let pool = HeapFramePool(capacity: 4 * 4096)
        let f = try pool.allocateFrame()
        pool.hostVirtual(f)!.initializeMemory(as: UInt8.self, repeating: 0x55, count: 4096)
        pool.free(f, count: 1)
        #expect(pool.scrub() == 4, "a pool over ordinary memory scrubs every free frame")
        #expect(Array(UnsafeRawBufferPointer(start: pool.hostVirtual(f)!, count: 4096)).allSatisfy { $0 == 0 })
        #expect(pool.knownZeroFrameCount == 4)
    }
}
