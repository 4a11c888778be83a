import HVCore
import HVKVM
import Testing

/// Lazy windows on KVM (issue 18): a lazy area's slot exists from the
/// start and the host kernel fills its pages; the space records them.
@Suite("KVM: lazy windows", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct LazyWindowKVMTests {
    static let lazy: UInt64 = 32 << 20

    /// The window is made of frames an earlier owner filled with data: the
    /// guest reads zero everywhere, and only the pages it touched count as
    /// filled (the frames were dropped, not written, so the rest are not
    /// even resident).
    @Test func usedFramesReachTheGuestZeroAndOnlyTouchedPagesAreFilled() throws {
        let f = try KVMFixture()
        let dirty = try f.pool.allocateContiguous(count: 32, alignment: 4096)
        f.pool.hostVirtual(dirty)!.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 32 * 4096)
        f.pool.free(dirty, count: 32)
        try f.space.mapAlloc(GuestPhysAddr(Self.lazy), size: 32 * 4096, flags: .readWrite, populate: .lazy)
        #expect(f.space.area(containing: GuestPhysAddr(Self.lazy))?.window == dirty.raw, "the window is the used run")
        try f.runner.syncSlots()
        try f.runner.load(TestGuests.orWords(from: UInt32(Self.lazy), to: UInt32(Self.lazy) + 16 * 4096), at: 0x1000)
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try f.runner.run()
        #expect(outcome == .exited(status: 0), "\(outcome)")
        #expect(f.runner.reports == [0], "every word of the used frames read as zero")
        #expect(f.runner.lazyFaults == 16 && f.runner.exitFaults == 0, "\(f.runner.lazyFaults) fills, \(f.runner.exitFaults) through exits")
        #expect(f.space.translate(GuestPhysAddr(Self.lazy + 15 * 4096))?.hostAddress.raw == dirty.raw + 15 * 4096)
        #expect(f.space.translate(GuestPhysAddr(Self.lazy + 16 * 4096)) == nil, "untouched pages stay lazy")
        #expect(f.space.invariantViolations().isEmpty)
        KVMAvailability.ran("usedFramesReachTheGuestZeroAndOnlyTouchedPagesAreFilled")
    }

    /// A read-only lazy window is a read-only slot: the guest's write exits
    /// and is a violation at the exact address; nothing lands.
    @Test func writeToAReadOnlyWindowIsAViolation() throws {
        let f = try KVMFixture()
        try f.space.mapAlloc(GuestPhysAddr(Self.lazy), size: 16 * 4096, flags: .read, populate: .lazy)
        try f.runner.syncSlots()
        #expect(f.runner.vm.slots.values.contains { $0.guest == Self.lazy && $0.size == 16 * 4096 && $0.readOnly })
        try f.runner.load(TestGuests.probe(UInt32(Self.lazy) + 0x3004, write: true), at: 0x1000)
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try f.runner.run()
        guard case let .violation(v) = outcome else { Issue.record("expected a violation, got \(outcome)"); return }
        #expect(v.gpa == Self.lazy + 0x3004 && v.isWrite && v.width == 4 && v.area != nil, "\(v)")
        #expect(f.space.translate(GuestPhysAddr(Self.lazy + 0x3000)) == nil, "the page was not filled by the refused write")
        KVMAvailability.ran("writeToAReadOnlyWindowIsAViolation")
    }
}
