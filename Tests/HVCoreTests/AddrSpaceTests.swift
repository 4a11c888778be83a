import Dispatch
import Foundation
import Synchronization
import HVCore
import Testing
import TestSupport

/// An address space over a tracking allocator whose pool sits at host
/// 4 GiB. `run` checks invariants when the body ends and that dropping the
/// space brings the allocator back to where it started.
struct SpaceFixture {
    static let poolBase: UInt64 = 0x1_0000_0000
    let tracker: TrackingAllocator
    let pool: HeapFramePool

    init(frames: Int = 8192) {
        pool = HeapFramePool(capacity: UInt64(frames) * frameSize, physicalBase: HostPhysAddr(Self.poolBase))
        tracker = TrackingAllocator(pool)
    }

    func run(backing: BackingPolicy = .huge2MWhenPossible, managed: UInt64 = 1 << 40,
             sourceLocation: SourceLocation = #_sourceLocation, _ body: (EPTAddrSpace) throws -> Void) throws {
        let start = tracker.liveFrames
        do {
            let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: managed), allocator: tracker, backing: backing)
            try body(space)
            #expect(space.invariantViolations() == [], sourceLocation: sourceLocation)
            #expect(tracker.liveFrames == space.tableFrameCount + space.ownedFrameCount, "live frames are tables plus owned frames", sourceLocation: sourceLocation)
        }
        #expect(tracker.liveFrames == start, "allocator back to its starting count", sourceLocation: sourceLocation)
    }

    /// Everything an operation must leave alone when it fails.
    struct Snapshot: Equatable {
        let leaves: [Leaf]
        let areas: [Area]
        let live: Int
    }

    func snapshot(_ space: EPTAddrSpace) -> Snapshot {
        Snapshot(leaves: space.leaves, areas: space.areas, live: tracker.liveFrames)
    }
}

@Suite("Address space operations")
struct AddrSpaceTests {
    @Test func mapLinearUsesHugeLeavesAndHostBelowGuest() throws {
        try SpaceFixture().run { space in
            try space.mapLinear(GuestPhysAddr(8 * gib), to: HostPhysAddr(gib), size: gib + mib2 + kib4, flags: .rwx)
            #expect(space.leaves.map(\.pageSize) == [.size1G, .size2M, .size4K])
            #expect(space.translate(GuestPhysAddr(8 * gib + 0x1234))?.hostAddress == HostPhysAddr(gib + 0x1234))
            #expect(space.translate(GuestPhysAddr(9 * gib + mib2 + 0xFFF))?.hostAddress == HostPhysAddr(2 * gib + mib2 + 0xFFF))
            #expect(space.translate(GuestPhysAddr(9 * gib + mib2 + kib4)) == nil)
            #expect(space.area(containing: GuestPhysAddr(8 * gib))?.backend == .linear(hostStart: HostPhysAddr(gib)))
        }
    }

    @Test func mapErrorsChangeNothing() throws {
        try SpaceFixture().run(managed: 64 * gib) { space in
            try space.mapLinear(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: mib2, flags: .readWrite)
            let before = space.leaves
            let existing = try GuestPhysRange(start: GuestPhysAddr(gib), size: mib2)
            #expect(throws: AddrSpaceError.overlapsArea(requested: try GuestPhysRange(start: GuestPhysAddr(gib - kib4), size: 2 * kib4), existing: existing)) {
                try space.mapLinear(GuestPhysAddr(gib - kib4), to: HostPhysAddr(0), size: 2 * kib4, flags: .read)
            }
            #expect(throws: AddrSpaceError.overlapsArea(requested: try GuestPhysRange(start: GuestPhysAddr(gib + mib2 - kib4), size: kib4), existing: existing)) {
                try space.mapAlloc(GuestPhysAddr(gib + mib2 - kib4), size: kib4, flags: .read, populate: .lazy)
            }
            // Adjacent is fine.
            try space.mapAlloc(GuestPhysAddr(gib + mib2), size: kib4, flags: .read, populate: .lazy)
            #expect(throws: AddrSpaceError.self) { try space.mapLinear(GuestPhysAddr(64 * gib - kib4), to: HostPhysAddr(0), size: 2 * kib4, flags: .read) }
            #expect(throws: AddrSpaceError.outsideManagedRange(start: GuestPhysAddr(64 * gib), size: kib4, managed: try GuestPhysRange(start: GuestPhysAddr(0), size: 64 * gib))) {
                try space.mapAlloc(GuestPhysAddr(64 * gib), size: kib4, flags: .read, populate: .eager)
            }
            #expect(throws: AddrSpaceError.unaligned(what: "guest address", address: 0x10)) { try space.mapAlloc(GuestPhysAddr(0x10), size: kib4, flags: .read, populate: .eager) }
            #expect(throws: AddrSpaceError.unaligned(what: "size", address: 0x10)) { try space.mapAlloc(GuestPhysAddr(0), size: 0x10, flags: .read, populate: .eager) }
            #expect(throws: AddrSpaceError.unaligned(what: "host address", address: 0x10)) { try space.mapLinear(GuestPhysAddr(0), to: HostPhysAddr(0x10), size: kib4, flags: .read) }
            #expect(throws: AddrSpaceError.emptyRange(GuestPhysAddr(0))) { try space.mapAlloc(GuestPhysAddr(0), size: 0, flags: .read, populate: .eager) }
            #expect(throws: AddrSpaceError.pageTable(.writeWithoutRead([.write]))) { try space.mapAlloc(GuestPhysAddr(0), size: kib4, flags: [.write], populate: .eager) }
            #expect(throws: AddrSpaceError.rangeOverflow(start: UInt64.max - 0xFFF, size: 2 * kib4)) {
                try space.mapReserved(GuestPhysAddr(UInt64.max - 0xFFF), size: 2 * kib4, flags: .read)
            }
            #expect(space.leaves.count == before.count)
        }
    }

    @Test func unmapSpanningTwoAreasAndAHole() throws {
        let f = SpaceFixture()
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(0x10_0000), size: 16 * kib4, flags: .readWrite, populate: .eager)
            try space.mapLinear(GuestPhysAddr(0x20_0000), to: HostPhysAddr(0x9000_0000), size: 16 * kib4, flags: .readWrite)
            let live = f.tracker.liveFrames
            // From the middle of the first, across the hole, into the second.
            try space.unmap(GuestPhysAddr(0x10_8000), size: 0x20_8000 - 0x10_8000)
            #expect(f.tracker.liveFrames == live - 8, "exactly the 8 unmapped Alloc frames are freed; linear pages are not")
            #expect(space.areas.map(\.range.description) == ["[0x100000, 0x108000)", "[0x208000, 0x210000)"])
            #expect(space.areas[1].backend == .linear(hostStart: HostPhysAddr(0x9000_8000)))
            #expect(space.translate(GuestPhysAddr(0x10_7FFF)) != nil)
            #expect(space.translate(GuestPhysAddr(0x10_8000)) == nil)
            #expect(space.translate(GuestPhysAddr(0x20_7FFF)) == nil)
            #expect(space.translate(GuestPhysAddr(0x20_8000))?.hostAddress == HostPhysAddr(0x9000_8000))
            #expect(space.takePendingInvalidations().map(\.reason) == [.unmap])
        }
    }

    @Test func partialUnmapOfLinearHugeMapping() throws {
        try SpaceFixture().run { space in
            let host: UInt64 = 5 * gib
            try space.mapLinear(GuestPhysAddr(gib), to: HostPhysAddr(host), size: gib, flags: .rwx)
            #expect(space.leaves.count == 1)
            try space.unmap(GuestPhysAddr(gib + 300 * mib2 + 7 * kib4), size: 3 * kib4)
            for page in stride(from: gib, to: 2 * gib, by: Int(kib4)) {
                let inHole = page >= gib + 300 * mib2 + 7 * kib4 && page < gib + 300 * mib2 + 10 * kib4
                let t = space.translate(GuestPhysAddr(page + 0x123))
                if inHole ? t != nil : t?.hostAddress.raw != host + (page - gib) + 0x123 {
                    Issue.record("page \(hex(page)): \(String(describing: t))"); break
                }
            }
            #expect(space.areas.count == 2)
        }
    }

    @Test func protectSplitsAreas() throws {
        try SpaceFixture().run { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 4 * mib2, flags: .rwx, populate: .eager)
            try space.protect(GuestPhysAddr(mib2 + kib4), size: kib4, flags: [.read])
            #expect(space.areas.map(\.flags) == [.rwx, [.read], .rwx])
            #expect(space.areas.map(\.size) == [mib2 + kib4, kib4, 3 * mib2 - 2 * kib4])
            #expect(space.translate(GuestPhysAddr(mib2 + kib4))?.flags == [.read])
            #expect(space.translate(GuestPhysAddr(mib2))?.flags == .rwx)
            #expect(space.takePendingInvalidations().map(\.reason) == [.protect])
            // Lazy pages filled after a protect get the new flags.
            try space.mapAlloc(GuestPhysAddr(gib), size: 4 * kib4, flags: .readWrite, populate: .lazy)
            try space.protect(GuestPhysAddr(gib), size: 4 * kib4, flags: [.read])
            #expect(space.handlePageFault(GuestPhysAddr(gib), access: .write) ==
                .violation(.accessNotAllowed(GuestPhysAddr(gib), needed: .write, area: space.area(containing: GuestPhysAddr(gib))!)))
            guard case let .handled(t) = space.handlePageFault(GuestPhysAddr(gib + 5), access: .read) else {
                Issue.record("read fault not handled"); return
            }
            #expect(t.flags == [.read])
        }
    }

    @Test func translatedBuffersSplitAtHostDiscontiguityAndStopAtAreaEnd() throws {
        try SpaceFixture().run { space in
            let base = SpaceFixture.poolBase
            // Guest-adjacent areas whose host sides are far apart.
            try space.mapLinear(GuestPhysAddr(0x10_0000), to: HostPhysAddr(base + 0x80_0000), size: 2 * kib4, flags: .readWrite)
            try space.mapLinear(GuestPhysAddr(0x10_2000), to: HostPhysAddr(base + 0x40_0000), size: 2 * kib4, flags: .readWrite)
            let buffers = try space.translatedBuffers(GuestPhysAddr(0x10_1800), length: 0x1000, access: .read)
            #expect(buffers.map(\.count) == [0x800, 0x800])
            #expect(space.allocator.hostPhysical(buffers[0].baseAddress!) == HostPhysAddr(base + 0x80_1800))
            #expect(space.allocator.hostPhysical(buffers[1].baseAddress!) == HostPhysAddr(base + 0x40_0000))
            // Host-contiguous pages merge into one buffer.
            #expect(try space.translatedBuffers(GuestPhysAddr(0x10_0000), length: 0x2000, access: .write).map(\.count) == [0x2000])
            // Up to the last byte of an area works; one byte more does not,
            // even though the length is smaller than the area.
            #expect(try space.translatedBuffers(GuestPhysAddr(0x10_3F00), length: 0x100, access: .read).map(\.count) == [0x100])
            #expect(throws: AddrSpaceError.unmapped(GuestPhysAddr(0x10_4000))) {
                try space.translatedBuffers(GuestPhysAddr(0x10_3F00), length: 0x101, access: .read)
            }
            try space.mapAlloc(GuestPhysAddr(0x20_0000), size: 2 * kib4, flags: [.read], populate: .lazy)
            #expect(throws: AddrSpaceError.notPresent(GuestPhysAddr(0x20_0000))) {
                try space.translatedBuffers(GuestPhysAddr(0x20_0000), length: 1, access: .read)
            }
            _ = space.handlePageFault(GuestPhysAddr(0x20_0000), access: .read)
            #expect(throws: AddrSpaceError.accessDenied(GuestPhysAddr(0x20_0000), needed: .write, granted: [.read])) {
                try space.translatedBuffers(GuestPhysAddr(0x20_0000), length: 1, access: .write)
            }
            // A device page outside host memory has no buffer.
            try space.mapReserved(GuestPhysAddr(0xFEC0_0000), size: kib4, flags: [.read, .write, .device])
            #expect(throws: AddrSpaceError.notHostMemory(GuestPhysAddr(0xFEC0_0000), HostPhysAddr(0xFEC0_0000))) {
                try space.translatedBuffers(GuestPhysAddr(0xFEC0_0000), length: 4, access: .read)
            }
        }
    }

    @Test func readAndWriteValuesAcrossPages() throws {
        try SpaceFixture().run { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 4 * kib4, flags: .readWrite, populate: .eager, )
            try space.write(UInt64(0x1122_3344_5566_7788), at: GuestPhysAddr(0xFFC))
            #expect(try space.read(UInt64.self, at: GuestPhysAddr(0xFFC)) == 0x1122_3344_5566_7788)
            #expect(try space.readBytes(GuestPhysAddr(0xFFC), count: 2) == [0x88, 0x77])
            try space.writeBytes(GuestPhysAddr(0x3FFE), [1, 2])
            #expect(throws: AddrSpaceError.unmapped(GuestPhysAddr(0x4000))) { try space.writeBytes(GuestPhysAddr(0x3FFF), [1, 2]) }
            #expect(try space.readBytes(GuestPhysAddr(0x3FFE), count: 2) == [1, 2], "a failed write changes nothing")
        }
    }

    @Test func lazyPageFaultedTwiceKeepsOneFrameAndItsData() throws {
        let f = SpaceFixture()
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 16 * kib4, flags: .readWrite, populate: .lazy)
            let live = f.tracker.liveFrames
            guard case let .handled(first) = space.handlePageFault(GuestPhysAddr(gib + 0x3008), access: .write) else {
                Issue.record("first fault not handled"); return
            }
            #expect(first.pageSize == .size4K)
            try space.write(UInt32(0xDEAD_BEEF), at: GuestPhysAddr(gib + 0x3008))
            let afterFirst = f.tracker.liveFrames
            #expect(afterFirst > live)
            #expect(space.handlePageFault(GuestPhysAddr(gib + 0x3010), access: .read) == .violation(.alreadyPresent(GuestPhysAddr(gib + 0x3010), space.translate(GuestPhysAddr(gib + 0x3010))!)))
            #expect(f.tracker.liveFrames == afterFirst, "a repeated fault allocates nothing")
            #expect(space.translate(GuestPhysAddr(gib + 0x3000))?.hostAddress == first.hostAddress.alignedDown(to: .size4K))
            #expect(try space.read(UInt32.self, at: GuestPhysAddr(gib + 0x3008)) == 0xDEAD_BEEF)
            #expect(space.lazyFillCount == 1)
        }
    }

    @Test func framesHandedToTheGuestAreZero() throws {
        let f = SpaceFixture(frames: 2048)
        // Dirty every frame of the pool first.
        let all = try f.pool.allocateFrames(count: 2048)
        for frame in all { f.pool.hostVirtual(HostPhysAddr(frame))!.initializeMemory(as: UInt8.self, repeating: 0xAA, count: 4096) }
        for frame in all { f.pool.free(HostPhysAddr(frame), count: 1) }
        try f.run(backing: .huge2MWhenPossible) { space in
            try space.mapAlloc(GuestPhysAddr(0), size: mib2 + 8 * kib4, flags: .readWrite, populate: .eager)
            #expect(space.leaves.contains { $0.pageSize == .size2M })
            #expect(try space.readBytes(GuestPhysAddr(0), count: Int(mib2 + 8 * kib4)).allSatisfy { $0 == 0 })
            try space.mapAlloc(GuestPhysAddr(gib), size: kib4, flags: .readWrite, populate: .lazy)
            _ = space.handlePageFault(GuestPhysAddr(gib), access: .read)
            #expect(try space.readBytes(GuestPhysAddr(gib), count: 4096).allSatisfy { $0 == 0 })
            try space.mapIdentical(GuestPhysAddr(SpaceFixture.poolBase + 1024 * kib4), size: kib4, flags: .read)
            #expect(try space.readBytes(GuestPhysAddr(SpaceFixture.poolBase + 1024 * kib4), count: 4096).allSatisfy { $0 == 0 })
        }
    }

    @Test func backingPolicyDecidesLeafSizes() throws {
        try SpaceFixture().run(backing: .frames4K) { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 2 * mib2, flags: .readWrite, populate: .eager)
            #expect(Set(space.leaves.map(\.pageSize)) == [.size4K])
            #expect(space.leaves.count == 1024)
        }
        try SpaceFixture().run(backing: .huge2MWhenPossible) { space in
            try space.mapAlloc(GuestPhysAddr(mib2 - kib4), size: 2 * mib2 + kib4, flags: .readWrite, populate: .eager)
            #expect(space.leaves.map(\.pageSize) == [.size4K, .size2M, .size2M])
            // Partly unmapping a 2 MiB backing frame frees exactly those 4 KiB.
            try space.unmap(GuestPhysAddr(mib2 + 5 * kib4), size: 2 * kib4)
            #expect(space.ownedFrameCount == 1 + 1024 - 2)
        }
    }

    @Test func mapIdenticalOwnsExactlyThatMemory() throws {
        let f = SpaceFixture()
        try f.run { space in
            let gpa = SpaceFixture.poolBase + 16 * kib4
            try space.mapIdentical(GuestPhysAddr(gpa), size: 4 * kib4, flags: .readWrite)
            #expect(space.translate(GuestPhysAddr(gpa + 5))?.hostAddress == HostPhysAddr(gpa + 5))
            #expect(f.tracker.isLive(HostPhysAddr(gpa)))
            // Taken: the same host memory cannot be had twice.
            let before = f.snapshot(space)
            #expect(throws: AddrSpaceError.identityUnavailable(try GuestPhysRange(start: GuestPhysAddr(gpa + 2 * gib), size: kib4), .unavailable(at: HostPhysAddr(gpa + 2 * gib), frames: 1))) {
                try space.mapIdentical(GuestPhysAddr(gpa + 2 * gib), size: kib4, flags: .read)
            }
            let taken = try f.tracker.allocateFrame()
            #expect(throws: AddrSpaceError.self) { try space.mapIdentical(GuestPhysAddr(taken.raw), size: kib4, flags: .read) }
            f.tracker.free(taken, count: 1)
            #expect(f.snapshot(space) == before)
            // Unmapping returns it.
            try space.unmap(GuestPhysAddr(gpa), size: 4 * kib4)
            #expect(!f.tracker.isLive(HostPhysAddr(gpa)))
        }
    }

    @Test func pageFaultViolations() throws {
        try SpaceFixture().run(managed: 16 * gib) { space in
            try space.mapLinear(GuestPhysAddr(0), to: HostPhysAddr(gib), size: kib4, flags: .readWrite)
            try space.mapAlloc(GuestPhysAddr(mib2), size: kib4, flags: [.read], populate: .lazy)
            #expect(space.handlePageFault(GuestPhysAddr(16 * gib), access: .read) == .violation(.outsideRange(GuestPhysAddr(16 * gib))))
            #expect(space.handlePageFault(GuestPhysAddr(gib), access: .read) == .violation(.noArea(GuestPhysAddr(gib))))
            let lazy = space.area(containing: GuestPhysAddr(mib2))!
            #expect(space.handlePageFault(GuestPhysAddr(mib2), access: .execute) == .violation(.accessNotAllowed(GuestPhysAddr(mib2), needed: .execute, area: lazy)))
            let linear = space.area(containing: GuestPhysAddr(0))!
            #expect(space.handlePageFault(GuestPhysAddr(8), access: .write) == .violation(.linearBackend(GuestPhysAddr(8), area: linear)))
            #expect(space.lazyFillCount == 0)
        }
    }

    @Test func faultWhenThePoolIsExhaustedLeaksNothing() throws {
        let f = SpaceFixture(frames: 8)
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 64 * kib4, flags: .readWrite, populate: .lazy)
            var handled = 0
            var exhausted = false
            for page in 0..<64 {
                switch space.handlePageFault(GuestPhysAddr(UInt64(page) * kib4), access: .write) {
                case .handled: handled += 1
                case .violation(.outOfFrames): exhausted = true
                case let other: Issue.record("unexpected \(other)")
                }
            }
            #expect(exhausted && handled == 8 - 4, "4 frames go to tables, the rest to pages")
        }
    }

    /// The fault builds its tables before it asks for the page's frame; when
    /// that frame cannot be had, the tables it built go back (and out of the
    /// leaf-table index) and the space is as it was.
    @Test func aFaultWhoseFrameCannotBeHadFreesTheTablesItBuilt() throws {
        let f = SpaceFixture(frames: 4)   // the root and three tables: no frame left for the page
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 16 * kib4, flags: .readWrite, populate: .lazy)
            let tables = space.tableFrameCount
            guard case .violation(.outOfFrames) = space.handlePageFault(GuestPhysAddr(gib + 3 * kib4), access: .read) else {
                Issue.record("the fault should have run out of frames")
                return
            }
            #expect(space.tableFrameCount == tables)
            #expect(space.lazyFillCount == 0)
            #expect(space.translate(GuestPhysAddr(gib + 3 * kib4)) == nil)
        }
    }

    @Test func clearFreesEverything() throws {
        let f = SpaceFixture()
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: f.tracker)
        try space.mapAlloc(GuestPhysAddr(0), size: 3 * mib2, flags: .readWrite, populate: .eager)
        try space.mapLinear(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .readWrite)
        space.clear()
        #expect(space.areas.isEmpty && space.leaves.isEmpty)
        #expect(f.tracker.liveFrames == 1, "only the root table is left")
        try space.mapAlloc(GuestPhysAddr(0), size: kib4, flags: .readWrite, populate: .eager)
        #expect(space.invariantViolations() == [])
    }

    @Test func concurrentFaultsFillEachPageOnce() throws {
        let f = SpaceFixture()
        try f.run { space in
            let pages = 512
            try space.mapAlloc(GuestPhysAddr(gib), size: UInt64(pages) * kib4, flags: .readWrite, populate: .lazy)
            let handled = Counter()
            DispatchQueue.concurrentPerform(iterations: 4) { thread in
                var rng = SplitMix64(seed: UInt64(thread))
                var order = Array(0..<pages)
                order.shuffle(using: &rng)
                for page in order {
                    let gpa = GuestPhysAddr(gib + UInt64(page) * kib4 + rng.below(4096))
                    if case .handled = space.handlePageFault(gpa, access: .write) { handled.add() }
                    #expect(space.translate(gpa) != nil)
                }
            }
            #expect(handled.value == pages)
            #expect(space.lazyFillCount == pages)
            #expect(space.ownedFrameCount == pages)
        }
    }
}

@Suite("Address space: lock-free translate")
struct LockFreeTranslateTests {
    #if DEBUG
    /// The same race made deterministic: half way through a lock-free walk
    /// (after the entry at `level` is read) the page is unmapped and a page
    /// at the same table slots of another 1 GiB region is mapped, reusing the
    /// freed table frames. The walk must notice and answer from the table as
    /// it is now (unmapped), never with the other page's host address.
    /// A 4 KiB page takes the two-load path through the level-0 table index
    /// (reported as level 1), a 2 MiB page the one through the level-1 index
    /// (reported as level 2), and a 1 GiB page is walked from the root.
    @Test(arguments: [(PageSize.size4K, 1), (.size4K, 0), (.size2M, 2), (.size2M, 1), (.size1G, 3), (.size1G, 2)])
    func aWalkThatRacedAWriterIsRetried(size: PageSize, level: Int) throws {
        let f = SpaceFixture()
        try f.run { space in
            let offset: UInt64 = size == .size1G ? 0 : 0x1220_0000
            let page = GuestPhysAddr(4 * gib + offset), twin = GuestPhysAddr(6 * gib + offset)
            try space.mapLinear(page, to: HostPhysAddr(0x40_0000_0000), size: size.bytes, flags: .readWrite)
            #expect(space.translate(page)?.pageSize == size)
            let armed = Mutex(true)
            let levels = Mutex<[Int]>([])
            space.setPauseInLockFreeWalk { [unowned space] at in
                levels.withLock { $0.append(at) }
                guard at == level, armed.withLock({ let a = $0; $0 = false; return a }) else { return }
                try! space.unmap(page, size: size.bytes)
                try! space.mapLinear(twin, to: HostPhysAddr(0x80_0000_0000), size: size.bytes, flags: .readWrite)
            }
            let answer = space.translate(page)
            space.setPauseInLockFreeWalk(nil)
            #expect(levels.withLock { $0.first } == [PageSize.size4K: 1, .size2M: 2, .size1G: 3][size], "the walk took the path this case is for")
            #expect(armed.withLock { !$0 }, "the writer ran inside the walk")
            #expect(answer == nil, "the page was unmapped before the walk ended; got \(String(describing: answer))")
            #expect(space.translate(twin)?.hostAddress.raw == 0x80_0000_0000)
            try space.unmap(twin, size: size.bytes)
        }
    }
    #endif

    /// The table indexes cover the managed range up to their 1 TiB cap, from
    /// a start that is not 2 MiB aligned; past the cap (where the level-1
    /// index may still cover the 1 GiB region the level-0 index stops in)
    /// the longer paths answer. Each page, 4 KiB or 2 MiB, translates to its
    /// own frame, and the invariant check (which compares every index slot
    /// with the tables) passes after every step.
    @Test func theIndexesCoverTheRangeUpToTheirCapAndTheWalkTheRest() throws {
        let f = SpaceFixture()
        let start: UInt64 = 0x7_0012_3000, size: UInt64 = (2 << 40) + 0x20_0000
        let cap = start + (1 << 40)   // 0x107_0012_3000, inside the 1 GiB region 0x107_0000_0000
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(start), size: size), allocator: f.tracker)
        let mib2 = PageSize.size2M.bytes
        let pages: [(gpa: UInt64, size: UInt64)] = [
            (start, kib4), (start + 0x1_d000, kib4), (0x8_0000_0000, mib2),          // inside both indexes
            (cap & ~0xfff - kib4, kib4),                                            // the last indexed 2 MiB region
            (cap + 0x40_0000, kib4), (0x107_0060_0000, mib2),                       // past the level-0 index only
            (0x108_0020_0000, mib2), (start + size - kib4, kib4),                   // past both
        ]
        let host: (Int) -> UInt64 = { 0x40_0000_0000 + UInt64($0) * mib2 }
        for (i, page) in pages.enumerated() {
            try space.mapLinear(GuestPhysAddr(page.gpa), to: HostPhysAddr(host(i)), size: page.size, flags: .readWrite)
            #expect(space.translate(GuestPhysAddr(page.gpa))?.pageSize.bytes == page.size)
            #expect(space.invariantViolations() == [])
        }
        for (i, page) in pages.enumerated() {
            let t = space.translate(GuestPhysAddr(page.gpa + page.size - 8))
            #expect(t?.hostAddress.raw == host(i) + page.size - 8, "page \(i) at \(String(page.gpa, radix: 16))")
            let beside = page.gpa + page.size
            #expect(space.translate(GuestPhysAddr(beside)) == nil || pages.contains { $0.gpa == beside })
        }
        for page in pages {
            try space.unmap(GuestPhysAddr(page.gpa), size: page.size)
            #expect(space.invariantViolations() == [])
            #expect(space.translate(GuestPhysAddr(page.gpa)) == nil)
        }
    }

    /// A reader translates one page while a writer maps and unmaps it and a
    /// page of another 1 GiB region at the same table slots, over and over:
    /// the tables freed by one unmap are the frames the next map takes, so a
    /// walk that kept following a stale table would read the other page's
    /// entry and answer with its host address. Every answer must be one the
    /// table really held: unmapped, or this page's own host address with one
    /// of the flags it had.
    @Test func answersAreAlwaysOnesTheTableHeld() throws {
        let f = SpaceFixture()
        try f.run { space in
            let page = GuestPhysAddr(gib + 0x1234_5000), twin = GuestPhysAddr(3 * gib + 0x1234_5000)
            let hostA: UInt64 = 0x40_0000_0000, hostB: UInt64 = 0x80_0000_0000
            let rounds = 20_000
            let done = Counter(), failures = Counter()
            // Two real threads (not pool work items, which a busy pool may run
            // one after the other): the writer starts once the reader runs.
            let readerStarted = DispatchSemaphore(value: 0), writerDone = DispatchSemaphore(value: 0)
            // The closure holds the space unowned: a Thread may release its
            // closure after writerDone is signalled, and a strong reference
            // there kept the space (and its root frame) alive past the
            // fixture's leak check now and then.
            let writer = Thread { [unowned space] in
                readerStarted.wait()
                for round in 0..<rounds {
                    do {
                        try space.mapLinear(page, to: HostPhysAddr(hostA), size: kib4, flags: .readWrite)
                        if round % 4 == 0 { try space.protect(page, size: kib4, flags: .read) }
                        try space.unmap(page, size: kib4)
                        try space.mapLinear(twin, to: HostPhysAddr(hostB), size: kib4, flags: .readWrite)
                        try space.unmap(twin, size: kib4)
                    } catch { failures.add() }
                }
                done.add()
                writerDone.signal()
            }
            writer.start()
            var answers = 0
            var wrong: [Translation] = []
            readerStarted.signal()
            while done.value == 0 {
                for _ in 0..<4096 {
                    guard let t = space.translate(GuestPhysAddr(page.raw + 8)) else { continue }
                    answers += 1
                    if t.hostAddress.raw != hostA + 8 || t.pageSize != .size4K || (t.flags != .readWrite && t.flags != .read) {
                        wrong.append(t)
                    }
                }
            }
            writerDone.wait()
            #expect(failures.value == 0)
            #expect(wrong.isEmpty, "lock-free answers the table never held: \(wrong.prefix(3))")
            #expect(answers > 0, "the reader saw the page mapped at least once")
            #expect(space.translate(page) == nil && space.areas.isEmpty)
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var count = 0
    func add() { lock.wait(); count += 1; lock.signal() }
    var value: Int { lock.wait(); defer { lock.signal() }; return count }
}

@Suite("Address space: zeroing policy")
struct ZeroingPolicyTests {
    /// The benchmark-only policy really skips zeroing (so the default's
    /// zero-filled frames are the default's doing, not the pool's).
    @Test func unsafeNeverLeavesOldBytes() throws {
        let f = SpaceFixture(frames: 64)
        let all = try f.pool.allocateFrames(count: 64)
        for frame in all { f.pool.hostVirtual(HostPhysAddr(frame))!.initializeMemory(as: UInt8.self, repeating: 0xAA, count: 4096) }
        for frame in all { f.pool.free(HostPhysAddr(frame), count: 1) }
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: gib), allocator: f.tracker,
                                     backing: .frames4K, zeroing: .unsafeNeverForBenchmarks)
        try space.mapAlloc(GuestPhysAddr(0), size: 4 * kib4, flags: .readWrite, populate: .eager)
        // Table frames are always zeroed; data frames keep the old bytes.
        #expect(try space.readBytes(GuestPhysAddr(0), count: 16) == [UInt8](repeating: 0xAA, count: 16))
        #expect(space.invariantViolations() == [])
    }
}
