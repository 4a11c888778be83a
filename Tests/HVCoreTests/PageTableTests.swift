import HVCore
import Testing
import TestSupport

/// A table over a tracking allocator, and the checks every test ends with.
/// A bare page table of any format over a tracking allocator.
final class FormatTableFixture<Format: PageTableFormat> {
    let tracker: TrackingAllocator
    let table: NestedPageTable<Format>

    init(capacityFrames: Int = 4096) throws {
        tracker = TrackingAllocator(HeapFramePool(capacity: UInt64(capacityFrames) * frameSize))
        table = try NestedPageTable<Format>(allocator: tracker)
    }

    /// Table frames are the only frames a bare page table owns.
    func expectSound(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(table.invariantViolations() == [], comment, sourceLocation: sourceLocation)
        #expect(tracker.liveFrames == table.tableFrameCount, comment, sourceLocation: sourceLocation)
    }

    var model: IntervalModel { IntervalModel.from(leaves: table.leaves) }
}

typealias TableFixture = FormatTableFixture<EPTFormat>

@Suite("EPT page table")
struct PageTableTests {
    @Test func mapQueryAndLevels() throws {
        let f = try TableFixture()
        let t = f.table
        try t.mapRegion(GuestPhysAddr(gib), to: HostPhysAddr(4 * gib), size: gib, flags: .rwx)
        try t.mapRegion(GuestPhysAddr(0x20_0000), to: HostPhysAddr(0x80_0000), size: 0x20_0000, flags: .readWrite)
        try t.mapRegion(GuestPhysAddr(0x1000), to: HostPhysAddr(0x7000), size: 0x1000, flags: [.read])
        #expect(t.query(GuestPhysAddr(gib + 0x1234)) ==
            Translation(hostAddress: HostPhysAddr(4 * gib + 0x1234), flags: .rwx, pageSize: .size1G, leafStart: GuestPhysAddr(gib)))
        #expect(t.query(GuestPhysAddr(0x3F_FFFF))?.pageSize == .size2M)
        #expect(t.query(GuestPhysAddr(0x3F_FFFF))?.hostAddress == HostPhysAddr(0x9F_FFFF))
        #expect(t.query(GuestPhysAddr(0x1FFF)) ==
            Translation(hostAddress: HostPhysAddr(0x7FFF), flags: .read, pageSize: .size4K, leafStart: GuestPhysAddr(0x1000)))
        #expect(t.query(GuestPhysAddr(0)) == nil)
        #expect(t.query(GuestPhysAddr(0x2000)) == nil)
        #expect(t.query(GuestPhysAddr(2 * gib)) == nil)
        #expect(t.leaves.map(\.pageSize) == [.size4K, .size2M, .size1G])
        f.expectSound()
    }

    @Test func allowHugeFalseUsesOnly4KPages() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0x4000_0000), size: 4 * mib2, flags: .rwx, allowHuge: false)
        #expect(f.table.leaves.count == 2048)
        #expect(Set(f.table.leaves.map(\.pageSize)) == [.size4K])
        f.expectSound()
    }

    @Test func mixedAlignmentPicksLargestLeafEachStep() throws {
        let f = try TableFixture()
        // 4 KiB up to the 2 MiB boundary, then 2 MiB leaves, then 4 KiB again.
        try f.table.mapRegion(GuestPhysAddr(mib2 - 2 * kib4), to: HostPhysAddr(8 * gib + mib2 - 2 * kib4),
                              size: 2 * kib4 + 2 * mib2 + kib4, flags: .readWrite)
        #expect(f.table.leaves.map(\.pageSize) == [.size4K, .size4K, .size2M, .size2M, .size4K])
        f.expectSound()
    }

    @Test func hostBelowGuestIsFine() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(8 * gib), to: HostPhysAddr(gib), size: gib + mib2, flags: .rwx)
        #expect(f.table.query(GuestPhysAddr(9 * gib + 5))?.hostAddress == HostPhysAddr(2 * gib + 5))
        f.expectSound()
    }

    @Test func refusesBadInput() throws {
        let f = try TableFixture()
        let t = f.table
        #expect(throws: PageTableError.writeWithoutRead([.write])) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: kib4, flags: [.write])
        }
        #expect(throws: PageTableError.noAccess([.user])) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: kib4, flags: [.user])
        }
        #expect(throws: PageTableError.unknownFlags(MappingFlags(rawValue: 0x41))) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: kib4, flags: MappingFlags(rawValue: 0x41))
        }
        #expect(throws: PageTableError.unaligned(what: "guest address", address: 0x10, alignment: 0x1000)) {
            try t.mapRegion(GuestPhysAddr(0x10), to: HostPhysAddr(0), size: kib4, flags: .read)
        }
        #expect(throws: PageTableError.unaligned(what: "host address", address: 0x10, alignment: 0x1000)) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0x10), size: kib4, flags: .read)
        }
        #expect(throws: PageTableError.unaligned(what: "size", address: 0x10, alignment: 0x1000)) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: 0x10, flags: .read)
        }
        #expect(throws: PageTableError.emptyRange(GuestPhysAddr(0))) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: 0, flags: .read)
        }
        #expect(throws: PageTableError.unaligned(what: "guest address", address: 0x1000, alignment: mib2)) {
            try t.map(GuestPhysAddr(0x1000), to: HostPhysAddr(0), size: .size2M, flags: .read)
        }
        #expect(throws: PageTableError.guestAddressOutOfRange(start: GuestPhysAddr(1 << 48), size: kib4, addressBits: 48)) {
            try t.mapRegion(GuestPhysAddr(1 << 48), to: HostPhysAddr(0), size: kib4, flags: .read)
        }
        #expect(throws: PageTableError.guestAddressOutOfRange(start: GuestPhysAddr((1 << 48) - kib4), size: 2 * kib4, addressBits: 48)) {
            try t.mapRegion(GuestPhysAddr((1 << 48) - kib4), to: HostPhysAddr(0), size: 2 * kib4, flags: .read)
        }
        #expect(throws: PageTableError.hostAddressOutOfRange(start: HostPhysAddr(1 << 52), size: kib4, addressBits: 52)) {
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(1 << 52), size: kib4, flags: .read)
        }
        #expect(throws: PageTableError.guestAddressOutOfRange(start: GuestPhysAddr(UInt64.max - 0xFFF), size: kib4, addressBits: 48)) {
            try t.unmap(GuestPhysAddr(UInt64.max - 0xFFF), size: kib4)
        }
        #expect(t.leaves.isEmpty)
        f.expectSound()
    }

    @Test func outOfRangeAddressesNeverWrapIntoOtherEntries() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(gib), size: kib4, flags: .read)
        try f.table.mapRegion(GuestPhysAddr((1 << 48) - kib4), to: HostPhysAddr(2 * gib), size: kib4, flags: .read)
        // 2^48 and 2^48 + 2^47 - 4K select the same indices as 0 and the last page.
        #expect(f.table.query(GuestPhysAddr(1 << 48)) == nil)
        #expect(f.table.query(GuestPhysAddr((1 << 49) - kib4)) == nil)
        #expect(f.table.query(GuestPhysAddr(UInt64.max)) == nil)
        #expect(f.table.query(GuestPhysAddr((1 << 48) - 1))?.hostAddress == HostPhysAddr(2 * gib + 0xFFF))
        f.expectSound()
    }

    @Test func overlappingMapIsRefusedAndRolledBack() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(gib + 3 * mib2), to: HostPhysAddr(gib), size: kib4, flags: .read)
        let before = f.model
        let liveBefore = f.tracker.liveFrames
        // Starts in empty space (creating tables and leaves), then hits the page.
        #expect(throws: PageTableError.alreadyMapped(GuestPhysAddr(gib + 3 * mib2))) {
            try f.table.mapRegion(GuestPhysAddr(gib - 4 * mib2), to: HostPhysAddr(0x10 * gib), size: 8 * mib2, flags: .rwx, allowHuge: false)
        }
        #expect(f.model == before)
        #expect(f.tracker.liveFrames == liveBefore)
        // A huge leaf above the target level also conflicts.
        try f.table.mapRegion(GuestPhysAddr(4 * gib), to: HostPhysAddr(4 * gib), size: gib, flags: .read)
        #expect(throws: PageTableError.alreadyMapped(GuestPhysAddr(4 * gib))) {
            try f.table.map(GuestPhysAddr(4 * gib + kib4), to: HostPhysAddr(0), size: .size4K, flags: .read)
        }
        f.expectSound()
    }

    /// A 1 GiB leaf with one 4 KiB page unmapped becomes 2 MiB and 4 KiB
    /// leaves; every other byte translates exactly as before.
    @Test func partialUnmapOfHugePageSplits() throws {
        let f = try TableFixture()
        let base = GuestPhysAddr(2 * gib), host = HostPhysAddr(7 * gib)
        try f.table.mapRegion(base, to: host, size: gib, flags: .rwx)
        #expect(f.table.leaves.count == 1 && f.tracker.liveFrames == 2)
        let hole = base.raw + 5 * mib2 + 3 * kib4
        let removed = try f.table.unmap(GuestPhysAddr(hole), size: kib4)
        #expect(removed == kib4)
        let sizes = f.table.leaves.map(\.pageSize)
        #expect(sizes.filter { $0 == .size2M }.count == 511)
        #expect(sizes.filter { $0 == .size4K }.count == 511)
        #expect(!sizes.contains(.size1G))
        for page in stride(from: base.raw, to: base.raw + gib, by: Int(kib4)) {
            let q = f.table.query(GuestPhysAddr(page + 0xABC))
            if page == hole {
                #expect(q == nil)
            } else if q?.hostAddress.raw != host.raw + (page - base.raw) + 0xABC || q?.flags != .rwx {
                Issue.record("page \(hex(page)) translates to \(String(describing: q))")
                break
            }
        }
        #expect(f.table.takePendingInvalidations() == [Invalidation(range: try GuestPhysRange(start: GuestPhysAddr(hole), size: kib4), reason: .unmap)])
        f.expectSound()
        // Unmapping the rest frees every table but the root.
        try f.table.unmap(base, size: gib)
        #expect(f.table.leaves.isEmpty)
        #expect(f.tracker.liveFrames == 1)
        f.expectSound()
    }

    @Test func protectOfSubRangeSplits() throws {
        let f = try TableFixture()
        let base = GuestPhysAddr(gib), host = HostPhysAddr(3 * gib)
        try f.table.mapRegion(base, to: host, size: gib, flags: .rwx)
        let sub = base.raw + mib2 + kib4
        let touched = try f.table.protect(GuestPhysAddr(sub), size: mib2, flags: [.read])
        #expect(touched == mib2)
        var expected = IntervalModel()
        expected.map(base.raw, gib, host.raw, .rwx)
        expected.update(sub, mib2) { _ in [.read] }
        #expect(f.model.normalized == expected.normalized)
        #expect(f.table.query(GuestPhysAddr(sub - 1))?.flags == .rwx)
        #expect(f.table.query(GuestPhysAddr(sub))?.flags == .read)
        #expect(f.table.query(GuestPhysAddr(sub + mib2 - 1))?.flags == .read)
        #expect(f.table.query(GuestPhysAddr(sub + mib2))?.flags == .rwx)
        #expect(f.table.takePendingInvalidations().map(\.reason) == [.protect])
        // Widening needs no invalidation.
        try f.table.protect(GuestPhysAddr(sub), size: mib2, flags: .rwx)
        #expect(f.table.pendingInvalidations.isEmpty)
        // Changing the memory type does.
        try f.table.protect(GuestPhysAddr(sub), size: kib4, flags: [.read, .write, .execute, .device])
        #expect(f.table.takePendingInvalidations().count == 1)
        f.expectSound()
    }

    @Test func unmapAcrossHolesAndMixedLeaves() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(gib), size: 3 * mib2, flags: .readWrite)
        try f.table.mapRegion(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .readWrite)
        let removed = try f.table.unmap(GuestPhysAddr(mib2 + kib4), size: gib)
        #expect(removed == (2 * mib2 - kib4) + (mib2 + kib4))
        var expected = IntervalModel()
        expected.map(0, 3 * mib2, gib, .readWrite)
        expected.map(gib, gib, gib, .readWrite)
        expected.update(mib2 + kib4, gib) { _ in nil }
        #expect(f.model.normalized == expected.normalized)
        // Unmapping only holes removes nothing and asks for no invalidation.
        _ = f.table.takePendingInvalidations()
        #expect(try f.table.unmap(GuestPhysAddr(16 * gib), size: gib) == 0)
        #expect(f.table.pendingInvalidations.isEmpty)
        f.expectSound()
    }

    /// The figures quoted in the closing note: live frames while 1 GiB is
    /// mapped with 4 KiB leaves, and after it is unmapped.
    @Test func liveFramesForOneGiBAt4K() throws {
        let f = try TableFixture(capacityFrames: 1024)
        try f.table.mapRegion(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .rwx, allowHuge: false)
        // Root + one PDPT + one PD + 512 PTs.
        #expect(f.tracker.liveFrames == 515)
        #expect(f.table.leaves.count == 262_144)
        f.expectSound()
        try f.table.unmap(GuestPhysAddr(gib), size: gib)
        #expect(f.tracker.liveFrames == 1)
        #expect(f.tracker.peakFrames == 515)
        f.expectSound()
    }

    @Test func eptPointerValue() throws {
        let f = try TableFixture()
        let root = f.table.root.raw
        #expect(f.table.eptPointer() == root | 0x1E)
        #expect(f.table.eptPointer(accessedDirty: true) == root | 0x5E)
    }

    @Test func droppingTheTableFreesEveryTableFrame() throws {
        let tracker = TrackingAllocator(HeapFramePool(capacity: 256 * frameSize))
        do {
            let t = try EPTPageTable(allocator: tracker)
            try t.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(0), size: 8 * mib2, flags: .rwx, allowHuge: false)
            #expect(tracker.liveFrames > 1)
        }
        #expect(tracker.liveFrames == 0)
    }

    @Test func invariantCheckCatchesCorruption() throws {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(gib), size: kib4, flags: .readWrite)
        let leafTable = try #require(f.table.tableFrames.max())
        let entry = try #require(f.tracker.hostVirtual(HostPhysAddr(leafTable))).assumingMemoryBound(to: UInt64.self)
        let saved = entry.pointee
        entry.pointee = saved & ~1  // write without read
        #expect(f.table.invariantViolations().contains { $0.contains("malformed") })
        entry.pointee = saved
        #expect(f.table.invariantViolations().isEmpty)
    }
}


@Suite("Recorded invalidations are bounded")
struct InvalidationCapTests {
    /// Past `maxPendingInvalidations` the list becomes one record for the
    /// whole space, which covers every change it replaced; taking it starts over.
    @Test func manyUnmapsCollapseIntoOneThatCoversThemAll() throws {
        let pool = HeapFramePool(capacity: 4096 * 4096)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        let bound = NestedPageTable<EPTFormat>.maxPendingInvalidations
        try space.mapAlloc(GuestPhysAddr(0), size: UInt64(bound + 10) * 2 * 4096, flags: .readWrite, populate: .eager)
        var done: [Invalidation] = []
        for k in 0..<bound {
            try space.unmap(GuestPhysAddr(UInt64(k) * 2 * 4096), size: 4096)
            done.append(Invalidation(range: try GuestPhysRange(start: GuestPhysAddr(UInt64(k) * 2 * 4096), size: 4096), reason: .unmap))
        }
        #expect(space.pendingInvalidations == done, "up to the bound, each change is its own record")
        try space.protect(GuestPhysAddr(UInt64(bound) * 2 * 4096), size: 4096, flags: .read)
        let collapsed = space.pendingInvalidations
        #expect(collapsed.count == 1 && collapsed[0].reason == .everything, "\(collapsed.count) records")
        #expect(done.allSatisfy { collapsed[0].covers($0) })
        try space.unmap(GuestPhysAddr(UInt64(bound + 1) * 2 * 4096), size: 4096)
        #expect(space.pendingInvalidations.count == 1, "nothing more is listed after the collapse")
        #expect(space.takePendingInvalidations().count == 1)
        try space.unmap(GuestPhysAddr(UInt64(bound + 2) * 2 * 4096), size: 4096)
        #expect(space.pendingInvalidations.map(\.reason) == [.unmap], "taken: the list starts over")
    }
}
