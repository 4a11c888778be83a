import CKVM
import Dispatch
import Foundation
import HVCore
import HVKVM
import Testing

@Suite("16550A model")
struct Serial16550Tests {
    typealias R = Serial16550.Register

    @Test func theDriversProbeSeesA16550A() {
        var u = Serial16550()
        #expect(u.write(.scratch, 0x5A) == nil && u.read(.scratch) == 0x5A, "scratch register holds its value")
        // Loopback: MCR = LOOP | OUT2 | RTS shows up in MSR as DCD | CTS (0x90).
        _ = u.write(.modemControl, 0x1A)
        #expect(u.read(.modemStatus) & 0xF0 == 0x90)
        #expect(u.write(.data, 0x41) == nil, "loopback sends nothing out")
        _ = u.write(.modemControl, 0x03)
        #expect(u.read(.modemStatus) == 0xB0, "out of loopback: DCD, DSR, CTS")
        #expect(u.read(.interruptIdentification) == 0x01, "no FIFO yet, nothing pending")
        _ = u.write(.interruptIdentification, 0x07)   // FCR: enable and clear FIFOs
        #expect(u.read(.interruptIdentification) == 0xC1, "FIFO enabled: a 16550A")
        #expect(u.read(.lineStatus) == 0x60, "transmitter empty, no data ready")
    }

    @Test func divisorLatchIsSeparateFromDataAndIER() {
        var u = Serial16550()
        _ = u.write(.lineControl, 0x83)               // DLAB, 8N1
        _ = u.write(.data, 0x01)
        _ = u.write(.interruptEnable, 0x00)
        #expect(u.divisor == 1 && u.read(.data) == 0x01 && u.read(.interruptEnable) == 0)
        _ = u.write(.lineControl, 0x03)
        #expect(u.write(.data, 0x48) == 0x48, "DLAB clear: THR sends")
        #expect(u.interruptEnable == 0 && u.divisor == 1)
    }

    @Test func transmitterEmptyInterruptFollowsTheDriver() {
        var u = Serial16550()
        #expect(!u.interruptPending, "disabled at reset")
        _ = u.write(.interruptEnable, 0x02)
        #expect(u.interruptPending, "enabling THRE with the transmitter empty raises it at once")
        #expect(u.read(.interruptIdentification) & 0x0F == 0x02, "IIR names THRE")
        #expect(!u.interruptPending && u.read(.interruptIdentification) & 0x0F == 0x01, "reading IIR acknowledged it")
        #expect(u.write(.data, 0x0A) == 0x0A)
        #expect(u.interruptPending, "sending a byte empties THR again")
        _ = u.write(.interruptEnable, 0x00)
        #expect(!u.interruptPending, "masked")
    }
}

@Suite("CPUID table")
struct CPUIDTableTests {
    static func entry(_ function: UInt32, _ index: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) -> kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function; e.index = index; e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }

    @Test func hidingXsaveTakesItsDependantsAndLeafD() {
        var t = CPUIDTable(entries: [
            Self.entry(1, ecx: 1 << 26 | 1 << 27 | 1 << 28 | 1 << 13, edx: 0xFFFF),
            Self.entry(7, ebx: 1 << 5 | 1 << 16 | 1 << 3),
            Self.entry(0xD, eax: 7, ebx: 0x340, ecx: 0x340),
            Self.entry(0xD, 1, eax: 0xF),
        ])
        #expect(t.has(.xsave) && t.has(.avx) && t.has(.avx2) && t.has(.cx16))
        t.hide(.xsave)
        #expect(!t.has(.xsave) && !t.has(.osxsave) && !t.has(.avx) && !t.has(.avx2) && !t.has(.avx512f))
        #expect(t.has(.cx16), "unrelated bits stay")
        #expect(t.entries[0].edx == 0xFFFF && t.entries[1].ebx == 1 << 3)
        #expect(t.entries[2].eax == 0 && t.entries[2].ebx == 0 && t.entries[3].eax == 0, "no XSAVE state leaf")
        t.hide(.cx16)
        #expect(!t.has(.cx16))
    }

    @Test func featureListsParseOrNameTheKnownOnes() throws {
        #expect(try CPUIDFeature.parseList("xsave, CX16") == [.xsave, .cx16])
        #expect(throws: KVMError.self) { try CPUIDFeature.parseList("xsave,warp-drive") }
    }
}

@Suite("Linux console checker")
struct LinuxConsoleTests {
    /// Lines as the 6.1 kernel prints them on ttyS0 (CR LF endings).
    static let boot = """
    [    0.000000] BIOS-provided physical RAM map:\r
    [    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable\r
    [    0.000000] BIOS-e820: [mem 0x00000000000a0000-0x00000000000fffff] reserved\r
    [    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable\r
    [   35.040343] Memory: 201576K/261756K available (14343K kernel code, 2338K rwdata, 59924K reserved)\r
    HVKIT-INIT: hello from the guest's /init\r
    HVKIT-MEMINFO: MemTotal:         214212 kB\r
    HVKIT-IOMEM: 00001000-0009ffff : System RAM\r
    HVKIT-IOMEM: 00100000-0fffffff : System RAM\r
    [   99.000000] reboot: Power down\r
    """

    static let planned: [BootParams.E820Entry] = {
        let pool = HeapFramePool(capacity: 8 << 20)
        let space = try! EPTAddrSpace(range: try! GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try! space.mapAlloc(GuestPhysAddr(0), size: 0xA_0000, flags: .rwx, populate: .lazy)
        try! space.mapAlloc(GuestPhysAddr(0xA_0000), size: 0x6_0000, flags: [.read, .execute], populate: .lazy)
        try! space.mapAlloc(GuestPhysAddr(0x10_0000), size: 0xFF0_0000, flags: .rwx, populate: .lazy)
        defer { space.clear() }
        return BootParams.e820(space.areas)
    }()

    @Test func parsesWhatTheKernelAndInitSay() {
        let c = LinuxConsole(text: Self.boot)
        #expect(c.e820.map(\.description) == ["[0x0, 0xa0000) usable", "[0xa0000, 0x100000) reserved", "[0x100000, 0x10000000) usable"])
        #expect(c.memory?.available == 201_576 && c.memory?.total == 261_756)
        #expect(c.sawInitMarker && c.memTotalKiB == 214_212 && c.poweredOff)
        #expect(c.iomemSystemRAM.map(\.start) == [0x1000, 0x10_0000] && c.iomemSystemRAM.map(\.end) == [0xA_0000, 0x1000_0000])
    }

    @Test func agreesWithThePlanItCameFrom() {
        #expect(Self.planned.map(\.description) == ["[0x0, 0xa0000) usable", "[0xa0000, 0x100000) reserved", "[0x100000, 0x10000000) usable"],
                "a read-only (ROM) area is reserved")
        #expect(LinuxConsole(text: Self.boot).problems(plannedE820: Self.planned) == [])
    }

    @Test func reportsEachKindOfDisagreement() {
        let wrongMap = Self.boot.replacingOccurrences(of: "0x000000000fffffff] usable", with: "0x0000000007ffffff] usable")
        #expect(LinuxConsole(text: wrongMap).problems(plannedE820: Self.planned).first?.hasPrefix("e820 differs") == true)
        let lessMemory = Self.boot.replacingOccurrences(of: "/261756K", with: "/131072K")
        #expect(LinuxConsole(text: lessMemory).problems(plannedE820: Self.planned).first?.contains("131072 KiB") == true)
        let moreMemory = Self.boot.replacingOccurrences(of: "/261756K", with: "/261764K")
        #expect(LinuxConsole(text: moreMemory).problems(plannedE820: Self.planned).count == 1, "more than planned is wrong too")
        #expect(LinuxConsole(text: "").problems(plannedE820: Self.planned).count == 2, "no lines at all: both missing")
    }
}

@Suite("Linux boot plan")
struct LinuxBootPlanTests {
    @Test func bzImagePlacesTheInitramfsAtTheTopOfRAM() throws {
        let plan = try LinuxBootPlan(image: BzImageTests.image(), initrd: [UInt8](repeating: 1, count: 10_000),
                                     commandLine: "console=ttyS0", ram: 64 << 20, lazy: false)
        #expect(plan.entry == 0x20_0200)
        #expect(plan.initrdAddress == (64 << 20) - 12 * 1024, "page-aligned, just below RAM's end")
        #expect(plan.kernelEnd == 0x60_0000, "load address + init_size")
    }

    @Test func vmlinuxEntersAtItsPhysicalEntryWithASynthesizedHeader() throws {
        let elf = LoaderTests.elf64(entry: 0x100_0000, paddr: 0x100_0000, data: [0xF4])
        let plan = try LinuxBootPlan(image: elf, initrd: nil, commandLine: "quiet", ram: 32 << 20, lazy: true)
        #expect(plan.entry == 0x100_0000 && plan.initrdAddress == nil)
        let h = plan.headerSource
        #expect(h[0x1FE] == 0x55 && h[0x1FF] == 0xAA && Array(h[0x202..<0x206]) == Array("HdrS".utf8))
        #expect(h[0x206] == 0x0F && h[0x207] == 0x02 && h[0x236] & 1 == 1)
        let zero = try BootParams.build(image: h, areas: [], commandLine: 0x2_0000)
        #expect(zero[0x202] == 0x48 && zero[0x229] == 0x00 && zero[0x22A] == 0x02, "header copied, cmd_line_ptr set")
    }

    @Test func badInputsAreClearErrorsBeforeAnyVM() {
        let bz = BzImageTests.image()
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: bz, initrd: nil, commandLine: String(repeating: "x", count: 3000), ram: 64 << 20, lazy: false) }
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: bz, initrd: [UInt8](repeating: 0, count: 62 << 20), commandLine: "", ram: 64 << 20, lazy: false) }
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: bz, initrd: nil, commandLine: "", ram: (64 << 20) + 4096, lazy: false) }
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: bz, initrd: nil, commandLine: "a\u{0}b", ram: 64 << 20, lazy: false) }
        let low = LoaderTests.elf64(entry: 0x8_0000, paddr: 0x8_0000, data: [0xF4])
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: low, initrd: nil, commandLine: "", ram: 64 << 20, lazy: false) }
        let outside = LoaderTests.elf64(entry: 0x800_0000, paddr: 0x800_0000, data: [0xF4])
        #expect(throws: ImageError.self) { try LinuxBootPlan(image: outside, initrd: nil, commandLine: "", ram: 64 << 20, lazy: false) }
    }

    @Test func memoryMapIsRAMThenROMThenRAM() throws {
        let plan = try LinuxBootPlan(image: BzImageTests.image(), initrd: nil, commandLine: "", ram: 64 << 20, lazy: true)
        let pool = HeapFramePool(capacity: 8 << 20)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try plan.mapMemory(into: space)
        #expect(plan.plannedE820(space).map(\.description) == ["[0x0, 0xa0000) usable", "[0xa0000, 0x100000) reserved", "[0x100000, 0x4000000) usable"])
        #expect(plan.usableBytes(space) == (64 << 20) - 0x6_0000)
        #expect(space.translate(GuestPhysAddr(0x10_0000)) == nil, "lazy: high RAM is not there until touched")
        #expect(space.translate(GuestPhysAddr(0xF_0000))?.flags == [.read, .execute], "the ROM hole is read-only zeros")
        space.clear()
    }
}

@Suite("Linux-guest machinery on KVM", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct LinuxMachineryKVMTests {
    /// Real-mode code: CPUID leaf 1, ECX and EDX to the report port, halt.
    static let cpuidLeaf1: [UInt8] = [
        0x66, 0xB8, 0x01, 0x00, 0x00, 0x00,   // mov eax, 1
        0x66, 0x31, 0xC9,                     // xor ecx, ecx
        0x0F, 0xA2,                           // cpuid
        0xBA, 0x02, 0x05,                     // mov dx, 0x502
        0x66, 0x89, 0xC8,                     // mov eax, ecx
        0x66, 0xEF,                           // out dx, eax
        0x66, 0x89, 0xD0,                     // mov eax, edx
        0x66, 0xEF,                           // out dx, eax
        0xF4,                                 // hlt
    ]

    /// Every feature KVM offers can be hidden from the guest. (A bit KVM
    /// does not offer cannot: some KVMs, PVM among them, show the guest the
    /// host's bit whatever the table says; for XSAVE a Linux guest then
    /// needs `noxsave` on its command line.)
    @Test func hiddenCPUIDBitsAreHiddenFromTheGuest() throws {
        let system = try KVMSystem()
        var table = try system.supportedCPUID()
        let leaf1 = CPUIDFeature.known.filter { $0.leaf == 1 && $0.register == .ecx }
        let offered = leaf1.filter { table.has($0) }
        for feature in offered { table.hide(feature) }
        for feature in leaf1 where !offered.contains(feature) { print("note: KVM does not offer \(feature); not checked") }
        try #require(!offered.isEmpty, "KVM offers none of \(leaf1.map(\.name))")
        let vm = try KVMFixture(cpuid: table)
        let runner = vm.runner
        try runner.load(Self.cpuidLeaf1, at: 0x1000)
        try runner.startRealMode(entry: 0x1000)
        let outcome = try runner.run()
        #expect(outcome == .halted, "\(outcome)")
        try #require(runner.reports.count == 2)
        let ecx = runner.reports[0]
        for feature in offered {
            #expect(ecx >> UInt32(feature.bit) & 1 == 0, "\(feature) hidden (guest ECX = \(hex(UInt64(ecx))))")
        }
        KVMAvailability.ran("hiddenCPUIDBitsAreHiddenFromTheGuest (\(offered.map(\.name).joined(separator: ","))")
    }

    /// The watchdog needs no other thread: it stops the guest on time even
    /// when every worker thread of the process's dispatch pool is busy (as
    /// when other tests hold them in KVM_RUN).
    @Test func theWatchdogNeedsNoFreeWorkerThread() throws {
        let vm = try KVMFixture()
        let runner = vm.runner
        try runner.load([0xEB, 0xFE], at: 0x1000)   // jmp $
        try runner.startRealMode(entry: 0x1000)
        let release = DispatchSemaphore(value: 0)
        let busy = 256
        for _ in 0..<busy { DispatchQueue.global().async { release.wait() } }
        defer { for _ in 0..<busy { release.signal() } }
        let started = ContinuousClock.now
        let outcome = try runner.run(timeLimit: .milliseconds(500))
        let took = ContinuousClock.now - started
        guard case .timeLimit = outcome else { Issue.record("\(outcome)"); return }
        #expect(took < .seconds(10), "stopped after \(took)")
        KVMAvailability.ran("theWatchdogNeedsNoFreeWorkerThread")
    }

    /// The UART's transmitter-empty interrupt reaches the guest through the
    /// in-kernel PIC on IRQ 4, as the 8250 driver expects: a real-mode guest
    /// programs the PIC, enables THRE in IER, halts with interrupts on, and
    /// its IRQ 4 handler reports what IIR said.
    @Test func theUARTInterruptArrivesOnIRQ4() throws {
        let vm = try KVMFixture(interruptControllers: true)
        let runner = vm.runner
        let handler: UInt16 = 0x1000 + 49
        var code: [UInt8] = [0xFA]                                                   // cli
        code += [0xC7, 0x06, 0x30, 0x00, UInt8(handler & 0xFF), UInt8(handler >> 8)] // IVT[0x0C].offset = handler
        code += [0xC7, 0x06, 0x32, 0x00, 0x00, 0x00]                                 // IVT[0x0C].segment = 0
        for (port, value) in [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xEF)] as [(UInt8, UInt8)] {
            code += [0xB0, value, 0xE6, port]                                        // PIC: vectors 8-15, only IRQ 4 unmasked
        }
        code += [0xBA, 0xFC, 0x03, 0xB0, 0x08, 0xEE]                                 // MCR = OUT2
        code += [0xBA, 0xF9, 0x03, 0xB0, 0x02, 0xEE]                                 // IER = THRE
        code += [0xFB, 0xF4, 0xEB, 0xFD]                                             // sti; hlt; jmp back to hlt
        precondition(code.count == 49)
        code += [0xBA, 0xFA, 0x03, 0xEC]                                             // handler: in al, IIR
        code += [0xBA, 0x02, 0x05, 0xEE]                                             // report it
        code += [0xB0, 0x20, 0xE6, 0x20]                                             // EOI
        code += [0xBA, 0x01, 0x05, 0xB0, 0x00, 0xEE, 0xF4]                           // exit 0
        try runner.load(code, at: 0x1000)
        try runner.startRealMode(entry: 0x1000)
        let outcome = try runner.run(timeLimit: .seconds(20))
        #expect(outcome == .exited(status: 0), "\(outcome)")
        #expect(runner.reports == [0x02], "the handler saw IIR = THRE pending")
        #expect(!runner.serial.interruptPending, "reading IIR acknowledged it")
        KVMAvailability.ran("theUARTInterruptArrivesOnIRQ4")
    }

    /// A stop condition met by the guest's last exit ends the run even when
    /// the guest then halts inside KVM for good (as Linux does after
    /// "reboot: Power down" with the in-kernel irqchip).
    @Test func aStopConditionMetByTheLastExitEndsTheRun() throws {
        let vm = try KVMFixture(interruptControllers: true)
        let runner = vm.runner
        var code: [UInt8] = [0xBA, 0xF8, 0x03]                       // mov dx, 0x3f8
        for byte in Array("Power down\n".utf8) { code += [0xB0, byte, 0xEE] }  // mov al, byte; out dx, al
        code += [0xFA, 0xF4]                                          // cli; hlt (inside KVM, forever)
        try runner.load(code, at: 0x1000)
        try runner.startRealMode(entry: 0x1000)
        let outcome = try runner.run(timeLimit: .seconds(20)) { r in r.serialText.hasSuffix("Power down\n") ? "powered off" : nil }
        #expect(outcome == .stopped("powered off"), "\(outcome)")
        KVMAvailability.ran("aStopConditionMetByTheLastExitEndsTheRun")
    }

    /// A guest that never exits on its own is stopped by the wall-clock
    /// limit, both spinning (jmp $) and halted inside KVM (cli; hlt with
    /// the in-kernel irqchip, where HLT never reaches the runner).
    @Test(arguments: [("spinning", [0xEB, 0xFE] as [UInt8]), ("halted in KVM", [0xFA, 0xF4] as [UInt8])])
    func theWatchdogStopsAGuestThatNeverExits(_ what: String, code: [UInt8]) throws {
        let vm = try KVMFixture(interruptControllers: true)
        let runner = vm.runner
        try runner.load(code, at: 0x1000)
        try runner.startRealMode(entry: 0x1000)
        let started = ContinuousClock.now
        let outcome = try runner.run(timeLimit: .milliseconds(1500))
        let took = ContinuousClock.now - started
        guard case let .timeLimit(_, dump) = outcome else { Issue.record("\(what): \(outcome)"); return }
        #expect(took >= .milliseconds(1500) && took < .seconds(30), "\(what): stopped after \(took)")
        #expect(dump.rip >= 0x1000 && dump.rip <= 0x1002, "\(what): the vCPU is where the guest loops: \(dump)")
        // The kick does not linger: a second run is stopped by its own limit, not at once.
        let again = ContinuousClock.now
        _ = try runner.run(timeLimit: .milliseconds(300))
        #expect(ContinuousClock.now - again >= .milliseconds(300))
        KVMAvailability.ran("theWatchdogStopsAGuestThatNeverExits(\(what))")
    }
}
