import Dispatch
import Foundation
import Synchronization
import HVCore
import Testing
import TestSupport

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

    /// An unmap gives back every frame of the leaves it removes, whole
    /// runs of 2 MiB frames merged with their neighbours included.
    @Test func unmapGivesBackEveryFrameOfHugeAndSmallLeaves() throws {
        let f = SpaceFixture()
        try f.run(backing: .huge2MWhenPossible) { space in
            try space.mapAlloc(GuestPhysAddr(mib2 - kib4), size: 3 * mib2 + 2 * kib4, flags: .readWrite, populate: .eager)
            #expect(space.leaves.map(\.pageSize) == [.size4K, .size2M, .size2M, .size2M, .size4K])
            try space.unmap(GuestPhysAddr(mib2 - kib4), size: 3 * mib2 + 2 * kib4)
            #expect(space.ownedFrameCount == 0)
            #expect(f.tracker.liveFrames == space.tableFrameCount + space.reservedFrames.count, "only tables and the reserve stay live")
        }
    }

    /// More scattered frames than one batch of the unmap's run list holds:
    /// every batch reaches the allocator.
    @Test func unmapAfterManyScatteredFaultsGivesBackEveryFrame() throws {
        let f = SpaceFixture(frames: 8192)
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 64 * mib2, flags: .readWrite, populate: .lazy)
            var rng = SplitMix64(seed: 5)
            let pages = rng.distinct(16384, 5000)  // more than a batch of the run list (4096)
            for p in pages { _ = space.handlePageFault(GuestPhysAddr(gib + p * kib4), access: .write) }
            #expect(space.ownedFrameCount == pages.count)
            try space.unmap(GuestPhysAddr(gib), size: 64 * mib2)
            #expect(space.ownedFrameCount == 0)
            #expect(f.tracker.liveFrames == space.tableFrameCount + space.reservedFrames.count, "only tables and the reserve stay live")
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

    /// Faulting a pool dry leaks nothing and holds nothing back: every
    /// frame ends as a page or a table (with 300 frames the space's frame
    /// reserve is in play, refilled in batches, and must be empty at the end).
    @Test(arguments: [8, 300])
    func faultWhenThePoolIsExhaustedLeaksNothing(frames: Int) throws {
        let f = SpaceFixture(frames: frames)
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 1024 * kib4, flags: .readWrite, populate: .lazy)
            var handled = 0
            var exhausted = false
            for page in 0..<1024 where !exhausted {
                switch space.handlePageFault(GuestPhysAddr(UInt64(page) * kib4), access: .write) {
                case .handled: handled += 1
                case .violation(.outOfFrames): exhausted = true
                case let other: Issue.record("unexpected \(other)")
                }
            }
            #expect(exhausted && handled == frames - space.tableFrameCount, "\(space.tableFrameCount) frames go to tables, the rest to pages")
            #expect(f.pool.freeFrameCount == 0 && space.reservedFrames.isEmpty && f.tracker.liveFrames == frames)
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
