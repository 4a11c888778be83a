import HVCore
@testable import HVSpecs
import Testing

/// I1's page-table exposure check on hand-made observations: a leaf that
/// covers a table frame anywhere in its range is reported, one that ends
/// just before it or starts just after it is not.
@Suite("Isolation: page-table frames are never guest memory")
struct IsolationTests {
    static let kib4: UInt64 = 0x1000, mib2: UInt64 = 0x20_0000

    func violations(leafAt hpa: UInt64, size: PageSize, tables: Set<UInt64>) -> [String] {
        let leaf = Leaf(gpa: GuestPhysAddr(0), hpa: HostPhysAddr(hpa), pageSize: size, flags: .readWrite)
        let space = ObservedSpace(areas: [], leaves: [leaf], tableFrames: tables)
        return Invariants.isolation(ObservedState(spaces: [space], liveFrames: 0, allocatorViolations: []))
    }

    @Test(arguments: [0, 0x1000, 0x10_0000, 0x1F_F000] as [UInt64])
    func aHugeLeafOverATableFrameIsReported(offset: UInt64) {
        let base: UInt64 = 0x4000_0000
        let found = violations(leafAt: base, size: .size2M, tables: [0x10_0000, base + offset, 0x8000_0000])
        #expect(found.count == 1 && found[0].contains("exposes a page-table frame"), "\(found)")
    }

    @Test func tableFramesJustOutsideALeafAreNot() {
        let base: UInt64 = 0x4000_0000
        #expect(violations(leafAt: base, size: .size2M, tables: [base - Self.kib4, base + Self.mib2]).isEmpty)
        #expect(violations(leafAt: base, size: .size4K, tables: [base + Self.kib4]).isEmpty)
        #expect(violations(leafAt: base, size: .size4K, tables: []).isEmpty)
    }

    /// A reserved frame is its space's alone: behind a leaf (of any space),
    /// in a second reserve, or a table, it is reported; beside them it is not.
    @Test func reservedFramesAreNoOnesPage() {
        let base: UInt64 = 0x4000_0000
        let leaf = Leaf(gpa: GuestPhysAddr(0), hpa: HostPhysAddr(base), pageSize: .size2M, flags: .readWrite)
        func found(_ reserved: [[UInt64]], tables: Set<UInt64> = []) -> [String] {
            let spaces = reserved.enumerated().map { i, frames in
                ObservedSpace(areas: [], leaves: i == 0 ? [leaf] : [], tableFrames: i == 0 ? tables : [], reserved: frames)
            }
            return Invariants.isolation(ObservedState(spaces: spaces, liveFrames: 0, allocatorViolations: []))
        }
        #expect(found([[], [base + Self.mib2 - Self.kib4]]).count == 1, "behind another space's leaf")
        #expect(found([[base]]).count == 1, "behind its own leaf")
        #expect(found([[base - Self.kib4], [base - Self.kib4]]).count == 1, "in two reserves")
        #expect(found([[base + Self.mib2]], tables: [base + Self.mib2]).count == 1, "a page table")
        #expect(found([[base - Self.kib4, base + Self.mib2], [base + 2 * Self.mib2]]).isEmpty, "beside the leaf")
    }

    @Test func theSearchFindsTheFirstElementNotBelow() {
        let sorted: [UInt64] = [2, 4, 4, 9]
        #expect(Invariants.firstIndex(notBelow: 0, in: sorted) == 0)
        #expect(Invariants.firstIndex(notBelow: 3, in: sorted) == 1)
        #expect(Invariants.firstIndex(notBelow: 4, in: sorted) == 1)
        #expect(Invariants.firstIndex(notBelow: 9, in: sorted) == 3)
        #expect(Invariants.firstIndex(notBelow: 10, in: sorted) == nil)
        #expect(Invariants.firstIndex(notBelow: 1, in: []) == nil)
    }
}
