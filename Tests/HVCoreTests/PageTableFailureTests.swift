import HVCore
import Testing
import TestSupport

/// For every k, failing the k-th frame allocation during an operation leaves
/// the table exactly as it was and the live-frame count unchanged; the loop
/// ends with the operation succeeding, so every allocation point was hit.
@Suite("EPT page table: all-or-nothing under allocation failure")
struct PageTableFailureTests {
    static func seeded() throws -> TableFixture {
        let f = try TableFixture()
        try f.table.mapRegion(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .rwx)
        try f.table.mapRegion(GuestPhysAddr(3 * gib + mib2), to: HostPhysAddr(5 * gib), size: mib2, flags: .readWrite)
        try f.table.mapRegion(GuestPhysAddr(600 * gib), to: HostPhysAddr(5 * gib), size: 3 * kib4, flags: .read)
        return f
    }

    static func everyFailurePoint(_ name: String, _ op: (EPTPageTable) throws(PageTableError) -> Void) throws -> Int {
        var k = 1
        while true {
            let f = try seeded()
            let before = f.model
            let live = f.tracker.liveFrames
            f.tracker.failAllocation(after: k)
            do {
                try op(f.table)
                f.tracker.failAllocation(after: nil)
                f.expectSound("\(name) succeeded at k=\(k)")
                return k - 1
            } catch {
                guard case .outOfFrames(.injectedFailure) = error else {
                    Issue.record("\(name): unexpected error \(error)")
                    return k
                }
                #expect(f.model == before, "\(name): table changed after failing allocation \(k)")
                #expect(f.tracker.liveFrames == live, "\(name): frames leaked after failing allocation \(k)")
                #expect(f.table.pendingInvalidations.isEmpty, "\(name): invalidation recorded for a failed operation")
                f.expectSound("\(name) failed at k=\(k)")
            }
            k += 1
            if k > 100 { Issue.record("\(name): never succeeded"); return k }
        }
    }

    @Test func mapRegionAcrossManyNewTables() throws {
        // 4 KiB leaves crossing a 512 GiB and a 1 GiB boundary: new PDPT, PDs and PTs.
        let points = try Self.everyFailurePoint("mapRegion") { t throws(PageTableError) in
            try t.mapRegion(GuestPhysAddr(512 * gib - mib2 - kib4), to: HostPhysAddr(kib4),
                            size: 2 * mib2 + 2 * kib4, flags: .readWrite, allowHuge: false)
        }
        #expect(points >= 6)
    }

    @Test func mapRegionWithHugeLeaves() throws {
        let points = try Self.everyFailurePoint("mapRegion huge") { t throws(PageTableError) in
            try t.mapRegion(GuestPhysAddr(8 * gib - mib2), to: HostPhysAddr(16 * gib - mib2), size: 2 * gib + 2 * mib2, flags: .rwx)
        }
        #expect(points >= 2)
    }

    @Test func unmapThatSplitsBothEdges() throws {
        // Cuts the 1 GiB leaf at both ends down to 4 KiB: one 1 GiB split
        // shared by both edges, then one 2 MiB split at each edge.
        let points = try Self.everyFailurePoint("unmap") { t throws(PageTableError) in
            try t.unmap(GuestPhysAddr(gib + mib2 + kib4), size: gib - 2 * mib2 - 2 * kib4)
        }
        #expect(points == 3)
    }

    @Test func protectThatSplits() throws {
        let points = try Self.everyFailurePoint("protect") { t throws(PageTableError) in
            try t.protect(GuestPhysAddr(gib + 7 * kib4), size: 3 * mib2, flags: [.read])
        }
        #expect(points == 3)
    }
}
