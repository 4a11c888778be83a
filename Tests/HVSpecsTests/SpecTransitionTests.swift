import HVCore
import HVSpecs
import Testing

/// The specification itself, on hand-written cases: the order in which
/// preconditions are checked, and what each transition does.
@Suite("Specification transitions")
struct SpecTransitionTests {
    static let gib: UInt64 = 0x4000_0000
    let state = SpecState(environment: CheckerSetup.environment(spaces: 2))

    @Test func preconditionsAreCheckedInTheStatedOrder() throws {
        // Bad flags win over a bad range.
        #expect(state.mapAlloc(0, gpa: 0x10, size: 0, flags: [.write], eager: true) == .failure(.pageTable(.writeWithoutRead([.write]))))
        // An empty range wins over misalignment.
        #expect(state.mapAlloc(0, gpa: 0x10, size: 0, flags: .read, eager: true) == .failure(.emptyRange(GuestPhysAddr(0x10))))
        #expect(state.mapAlloc(0, gpa: 0x10, size: 0x1000, flags: .read, eager: true) == .failure(.unaligned(what: "guest address", address: 0x10)))
        let managed = try GuestPhysRange(start: GuestPhysAddr(0), size: CheckerSetup.managedSize)
        #expect(state.mapAlloc(0, gpa: CheckerSetup.managedSize, size: 0x1000, flags: .read, eager: true)
            == .failure(.outsideManagedRange(start: GuestPhysAddr(CheckerSetup.managedSize), size: 0x1000, managed: managed)))
        // Overlap is checked after the range, before host bits.
        let one = try state.mapLinear(0, gpa: Self.gib, hpa: 0, size: 0x2000, flags: .read).get()
        #expect(one.mapLinear(0, gpa: Self.gib + 0x1000, hpa: 1 << 52, size: 0x1000, flags: .read)
            == .failure(.overlapsArea(requested: try GuestPhysRange(start: GuestPhysAddr(Self.gib + 0x1000), size: 0x1000),
                                      existing: try GuestPhysRange(start: GuestPhysAddr(Self.gib), size: 0x2000))))
    }

    @Test func unmapCutsAreasAndFreesTokens() throws {
        var s = try state.mapAlloc(0, gpa: 0, size: 0x4000, flags: .readWrite, eager: true).get()
        s = try s.mapAlloc(1, gpa: 0, size: 0x1000, flags: .readWrite, eager: true).get()
        #expect(s.ledger.count == 5)
        s = try s.unmap(0, gpa: 0x1000, size: 0x2000).get()
        #expect(s.spaces[0].areas.map(\.start) == [0, 0x3000])
        #expect(s.ledger.count == 3)
        #expect(s.page(0, 0x1000) == .unmapped)
        #expect(s.ledger.values.filter { $0 == 1 }.count == 1, "the other space's frame is untouched")
    }

    @Test func lazyFaultsFillOnceAndProtectChangesFutureFlags() throws {
        var s = try state.mapAlloc(0, gpa: 0, size: 0x2000, flags: .readWrite, eager: false).get()
        #expect(s.page(0, 0x10) == .lazyAbsent(flags: .readWrite))
        var outcome: SpecFault
        (s, outcome) = s.fault(0, gpa: 0x10, access: .write)
        #expect(outcome == .handled)
        (s, outcome) = s.fault(0, gpa: 0x20, access: .read)
        #expect(outcome == .alreadyPresent)
        #expect(s.ledger.count == 1)
        s = try s.protect(0, gpa: 0x1000, size: 0x1000, flags: [.read]).get()
        (_, outcome) = s.fault(0, gpa: 0x1000, access: .write)
        #expect(outcome == .accessNotAllowed)
    }

    @Test func wordsReadBackAndVanishWithTheirPages() throws {
        var s = try state.mapAlloc(0, gpa: 0, size: 0x1000, flags: .readWrite, eager: true).get()
        s = try s.writeWord(0, gpa: 8, value: 42).get()
        #expect(s.readWord(0, gpa: 8) == .success(42))
        #expect(s.readWord(0, gpa: 16) == .success(0))
        s = try s.unmap(0, gpa: 0, size: 0x1000).get()
        s = try s.mapAlloc(0, gpa: 0, size: 0x1000, flags: .readWrite, eager: true).get()
        #expect(s.readWord(0, gpa: 8) == .success(0), "a new frame reads zero")
        #expect(s.accessError(0, gpa: 0xFFC, length: 8, access: .read) == .unmapped(GuestPhysAddr(0x1000)))
    }

    @Test func invariantsFlagABrokenState() {
        var s = state
        s.spaces[0].frames[0] = 7  // a page holding a token nobody owns
        let o = ObservedState(spaces: [], liveFrames: 0, allocatorViolations: ["double free"])
        let problems = Invariants.raii(s, o)
        #expect(problems.contains { $0.contains("token 7") })
        #expect(problems.contains { $0.contains("double free") })
    }
}
