import HVCore
import HVKVM
import Testing

/// Whether KVM can be used here; tests that need it are skipped with one
/// clear line naming the reason otherwise.
enum KVMAvailability {
    static let reason: String? = KVMSystem.unavailableReason()
    static var available: Bool {
        if let reason {
            print("SKIPPED: KVM tests: /dev/kvm cannot be used: \(reason)")
            return false
        }
        return true
    }
    /// Each KVM test prints this line; scripts/test counts them.
    static func ran(_ name: String) { print("KVM test ran: \(name)") }
}

/// A VM whose memory is an HVCore address space over an mmap host pool:
/// [0, 1 MiB) eager RAM with code and data, plus what each test adds.
struct KVMFixture {
    let system: KVMSystem
    let pool: HeapFramePool
    let tracker: TrackingAllocator
    let space: EPTAddrSpace
    let runner: GuestRunner

    init(interruptControllers: Bool = false, cpuid: CPUIDTable? = nil) throws {
        system = try KVMSystem()
        pool = try HostMemoryPool.make(capacity: 256 << 20)
        tracker = TrackingAllocator(pool)
        space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: tracker)
        try space.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
        runner = try GuestRunner(space: space, system: system, interruptControllers: interruptControllers, cpuid: cpuid)
    }

    /// Writes the range table the fill guest reads at 0x2000.
    func table(_ ranges: [(UInt64, UInt64)]) throws {
        var words: [UInt8] = []
        for (lo, hi) in ranges + [(0, 0)] {
            words += withUnsafeBytes(of: UInt32(lo).littleEndian, Array.init) + withUnsafeBytes(of: UInt32(hi).littleEndian, Array.init)
        }
        try runner.load(words, at: 0x2000)
    }
}

@Suite("Guests on KVM", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct KVMGuestTests {
    @Test func realModeHelloOnTheSerialPort() throws {
        let f = try KVMFixture()
        try f.runner.load(TestGuests.realModeHello("Hello from HVKit\n", status: 7), at: 0x1000)
        try f.runner.startRealMode(entry: 0x1000)
        let outcome = try f.runner.run()
        #expect(outcome == .exited(status: 7), "\(outcome)")
        #expect(f.runner.serialText == "Hello from HVKit\n")
        #expect(f.runner.slots.divergence().isEmpty)
        KVMAvailability.ran("realModeHelloOnTheSerialPort")
    }

    /// With a window the lazy area is one slot from the start and the host
    /// fills its pages without an exit; without one (a space that does not
    /// reserve windows, or a pool with no run to spare) each page is an
    /// MMIO exit and a slot change.
    @Test(arguments: [true, false]) func fillEagerAndLazyMemoryAndAgreeWithTheModel(windows: Bool) throws {
        let f = try KVMFixture()
        f.space.reservesLazyWindows = windows
        // Eager 4 MiB at 16 MiB (2 MiB frames), lazy 4 MiB at 64 MiB.
        try f.space.mapAlloc(GuestPhysAddr(16 << 20), size: 4 << 20, flags: .readWrite, populate: .eager)
        try f.space.mapAlloc(GuestPhysAddr(64 << 20), size: 4 << 20, flags: .readWrite, populate: .lazy)
        #expect((f.space.area(containing: GuestPhysAddr(64 << 20))?.window != nil) == windows)
        try f.runner.syncSlots()
        let slotsBefore = f.runner.slots.slotCount, operationsBefore = f.runner.slots.operations
        let ranges: [(UInt64, UInt64)] = [(16 << 20, 20 << 20), (64 << 20, 68 << 20)]
        try f.table(ranges)
        try f.runner.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try f.runner.run()
        #expect(outcome == .exited(status: 0), "\(outcome)")
        #expect(f.runner.reports == [0], "the guest read back every word it wrote")
        #expect(f.runner.lazyFaults == 1024, "one fill per lazy page, each filled once")
        #expect(f.space.lazyFillCount == 1024)
        if windows {
            #expect(f.runner.exitFaults == 0, "no lazy page needed an exit")
            #expect(f.runner.slots.operations == operationsBefore, "and no slot changed")
            #expect(slotsBefore == 3 && f.runner.slots.slotCount == 3, "one slot per area")
        } else {
            #expect(f.runner.exitFaults == 1024)
        }
        // I6: what the guest wrote is where translate says.
        var divergences = 0
        for (lo, hi) in ranges {
            for page in stride(from: lo, to: hi, by: 4096) {
                let word = try f.space.read(UInt32.self, at: GuestPhysAddr(page))
                if word != TestGuests.pattern(page) { divergences += 1 }
            }
        }
        #expect(divergences == 0)
        #expect(f.runner.slots.divergence().isEmpty)
        print("KVM fill (windows \(windows)): \(f.runner.slots.slotCount) slots, \(f.runner.lazyFaults) lazy fills, \(f.runner.exitFaults) through exits, median exit round trip \(median(f.runner.faultRoundTrips)) ns")
        KVMAvailability.ran("fillEagerAndLazyMemoryAndAgreeWithTheModel(windows: \(windows))")
    }

    @Test func writeToReadOnlyMemoryIsAViolation() throws {
        let f = try KVMFixture()
        try f.space.mapAlloc(GuestPhysAddr(32 << 20), size: 2 << 20, flags: [.read], populate: .eager)
        try f.runner.syncSlots()
        #expect(f.runner.vm.slots.values.contains { $0.guest == 32 << 20 && $0.readOnly })
        try f.runner.load(TestGuests.probe(UInt32(32 << 20) + 0x10, write: true), at: 0x1000)
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try f.runner.run()
        guard case let .violation(v) = outcome else { Issue.record("expected a violation, got \(outcome)"); return }
        #expect(v.gpa == (32 << 20) + 0x10 && v.isWrite && v.width == 4 && v.area != nil)
        #expect(try f.space.read(UInt32.self, at: GuestPhysAddr((32 << 20) + 0x10)) == 0, "the write did not land")
        KVMAvailability.ran("writeToReadOnlyMemoryIsAViolation")
    }

    @Test func readOfUnmappedMemoryIsAViolation() throws {
        let f = try KVMFixture()
        try f.runner.load(TestGuests.probe(0x4000_0000, write: false), at: 0x1000)
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try f.runner.run()
        guard case let .violation(v) = outcome else { Issue.record("expected a violation, got \(outcome)"); return }
        #expect(v.gpa == 0x4000_0000 && !v.isWrite && v.area == nil)
        KVMAvailability.ran("readOfUnmappedMemoryIsAViolation")
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let s = values.sorted()
    return s[s.count / 2]
}

@Suite("KVM: running out of frames", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct KVMPoolExhaustionTests {
    /// A lazy fault when the pool is empty stops the guest with a clear
    /// report; nothing leaks and the host stays healthy.
    @Test func lazyFaultWithAnEmptyPoolStopsTheGuest() throws {
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: 4 << 20)
        let tracker = TrackingAllocator(pool)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: tracker, backing: .frames4K)
        try space.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
        try space.mapAlloc(GuestPhysAddr(16 << 20), size: 16 << 20, flags: .readWrite, populate: .lazy)
        let runner = try GuestRunner(space: space, system: system)
        try runner.load([UInt32(16 << 20), UInt32(32 << 20), 0, 0].withUnsafeBytes(Array.init), at: 0x2000)
        try runner.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
        try runner.startFlatProtectedMode(entry: 0x1000)
        let outcome = try runner.run()
        guard case let .violation(v) = outcome else { Issue.record("expected the guest to stop, got \(outcome)"); return }
        #expect(v.reason.contains("no frame"), "\(v)")
        #expect(v.isWrite && v.gpa >= 16 << 20)
        #expect(pool.freeFrameCount == 0)
        #expect(tracker.liveFrames == space.tableFrameCount + space.ownedFrameCount, "nothing leaked")
        #expect(space.invariantViolations().isEmpty)
        KVMAvailability.ran("lazyFaultWithAnEmptyPoolStopsTheGuest")
    }
}

@Suite("KVM: long mode", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct KVMLongModeTests {
    /// The runner prepares long mode (GDT, identity page tables in guest
    /// memory, CR0/CR4/EFER); the guest fills eager and lazy memory, reads
    /// it back, and every word agrees with translate.
    @Test func longModeGuestFillsAndAgrees() throws {
        let f = try KVMFixture()
        try f.space.mapAlloc(GuestPhysAddr(128 << 20), size: 2 << 20, flags: .readWrite, populate: .lazy)
        try f.space.mapAlloc(GuestPhysAddr(0x1_0000_0000 - (4 << 20)), size: 2 << 20, flags: .readWrite, populate: .eager)
        try f.runner.syncSlots()
        let ranges: [(UInt64, UInt64)] = [(128 << 20, 130 << 20), (0x1_0000_0000 - (4 << 20), 0x1_0000_0000 - (2 << 20))]
        try f.table(ranges)
        try f.runner.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
        try f.runner.startLongMode(entry: 0x1000)
        let outcome = try f.runner.run()
        #expect(outcome == .exited(status: 0), "\(outcome)")
        let s = try f.runner.vcpu.specialRegisters()
        #expect(s.efer & (1 << 10) != 0 && s.cs.l == 1, "the guest ran in 64-bit mode")
        #expect(f.runner.lazyFaults == 512)
        for (lo, hi) in ranges {
            for page in stride(from: lo, to: hi, by: 4096) {
                #expect(try f.space.read(UInt32.self, at: GuestPhysAddr(page)) == TestGuests.pattern(page))
            }
        }
        KVMAvailability.ran("longModeGuestFillsAndAgrees")
    }
}

@Suite("KVM: guests that crash", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct KVMCrashTests {
    /// An exception with no usable IDT escalates to a triple fault: the run
    /// ends with SHUTDOWN and a register dump naming RIP and its bytes.
    @Test func tripleFaultIsReportedWithRegisters() throws {
        let f = try KVMFixture()
        try f.runner.load([0x90, 0xCC, 0xF4], at: 0x1000)  // nop; int3; hlt
        try f.runner.startFlatProtectedMode(entry: 0x1000)
        var s = try f.runner.vcpu.specialRegisters()
        s.idt.base = 0
        s.idt.limit = 0
        try f.runner.vcpu.setSpecialRegisters(s)
        let outcome = try f.runner.run()
        switch outcome {
        case let .shutdown(dump), let .internalError(_, dump):
            #expect(dump.csBase == 0 && dump.cr0 & 1 == 1, "\(dump)")
            #expect(dump.description.contains("rip="))
        default:
            Issue.record("expected a shutdown (triple fault), got \(outcome)")
        }
        KVMAvailability.ran("tripleFaultIsReportedWithRegisters")
    }
}
