import CKVM
import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// How a guest run ended.
public enum RunOutcome: Equatable, CustomStringConvertible {
    /// The guest wrote a status byte to the debug-exit port.
    case exited(status: UInt8)
    case halted
    /// An access the address space refuses: no area, no permission, or
    /// lazy memory that could not be had.
    case violation(MemoryViolation)
    case shutdown(RegisterDump)
    case internalError(suberror: UInt32, RegisterDump)
    case failEntry(reason: UInt64, RegisterDump)
    case unhandledExit(reason: UInt32, RegisterDump)
    case exitLimit(Int)
    /// The wall-clock limit passed (the guest may have been running or
    /// halted inside KVM).
    case timeLimit(seconds: Double, RegisterDump)
    /// The caller's stop condition said so (for example the Linux boot
    /// check once it has seen the lines it needs, or a guest power-off).
    case stopped(String)

    public var description: String {
        switch self {
        case let .exited(status): "exited with status \(status)"
        case .halted: "halted"
        case let .violation(v): "memory violation: \(v)"
        case let .shutdown(r): "shutdown (triple fault)\n\(r)"
        case let .internalError(sub, r): "KVM internal error \(sub)\n\(r)"
        case let .failEntry(reason, r): "VM entry failed (reason \(hex(reason)))\n\(r)"
        case let .unhandledExit(reason, r): "unhandled exit \(reason)\n\(r)"
        case let .exitLimit(n): "stopped after \(n) exits"
        case let .timeLimit(seconds, r): "stopped by the \(Int(seconds)) s wall-clock limit, the vCPU at\n\(r)"
        case let .stopped(why): why
        }
    }
}

public struct MemoryViolation: Equatable, CustomStringConvertible {
    public let gpa: UInt64
    public let width: Int
    public let isWrite: Bool
    public let area: String?
    public let reason: String

    public var description: String {
        "\(isWrite ? "write" : "read") of \(width) byte(s) at \(hex(gpa)) in \(area ?? "no area"): \(reason)"
    }
}

public struct RegisterDump: Equatable, CustomStringConvertible {
    public let rip: UInt64, rsp: UInt64, rax: UInt64, rflags: UInt64
    public let cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, csBase: UInt64
    /// Up to 16 bytes at CS.base + RIP, when that memory is mapped.
    public let bytesAtRIP: [UInt8]
    /// Why the registers are zero, when KVM would not give them.
    public var note: String? = nil

    public var description: String {
        "  rip=\(hex(rip)) rsp=\(hex(rsp)) rax=\(hex(rax)) rflags=\(hex(rflags))\n  cr0=\(hex(cr0)) cr3=\(hex(cr3)) cr4=\(hex(cr4)) efer=\(hex(efer)) cs.base=\(hex(csBase))\n  bytes at rip: \(bytesAtRIP.map { String($0, radix: 16) }.joined(separator: " "))" + (note.map { "\n  \($0)" } ?? "")
    }
}

/// Runs one vCPU of a VM whose memory is an HVCore address space. Pages of
/// lazy areas with a window are the host kernel's to fault in (see
/// `MemslotSync`); other lazy pages arrive as MMIO exits: the runner faults
/// them in through the address space, completes the one access against the
/// new frame, adds the slot and resumes.
public final class GuestRunner {
    public static let serialPort: UInt16 = 0x3F8
    public static let debugExitPort: UInt16 = 0x501
    /// The guest writes 32-bit values here to report results to the host.
    public static let reportPort: UInt16 = 0x502

    public let space: EPTAddrSpace
    public let vm: VirtualMachine
    public let vcpu: VCPU
    public let slots: MemslotSync
    public private(set) var serialOutput: [UInt8] = []
    public private(set) var reports: [UInt32] = []
    /// Lazy pages the guest filled: through an exit (`exitFaults`) or, in a
    /// lazy window, through the host kernel's demand fault (recorded when a
    /// run returns).
    public var lazyFaults: Int { exitFaults + slots.windowFills }
    /// Lazy pages filled by the runner at an MMIO exit.
    public private(set) var exitFaults = 0
    /// Lazy pages the host faulted in itself to load images (not the guest's doing).
    public internal(set) var loadFaults = 0
    /// Set when pages became present outside a run (`load`): slots are synced before the next entry.
    var slotsStale = false
    /// MSR accesses that exited to the runner: (msr, isWrite, value written).
    public private(set) var msrExits: [(msr: UInt32, write: Bool, value: UInt64)] = []
    /// Answers intercepted MSR reads (nil: the guest gets #GP). Writes are
    /// recorded and accepted.
    public var msrReadHandler: (UInt32) -> UInt64? = { _ in 0 }
    /// Decides which port accesses reach the device models; a port it does
    /// not intercept reads as all ones and ignores writes. Nil: every port
    /// goes to the device models.
    public var ioBitmap: IOBitmapView?
    /// Port accesses delivered to the device models: (port, width, isWrite).
    public private(set) var portExits: [(port: UInt16, width: Int, write: Bool)] = []
    /// Nanoseconds from a lazy-fault exit to the resume, per fault.
    public private(set) var faultRoundTrips: [Double] = []

    /// The UART behind COM1 (ports 0x3F8-0x3FF).
    public private(set) var serial = Serial16550()
    /// Sees every byte the guest sends to COM1 as it is sent.
    public var onConsoleOutput: ((UInt8) -> Void)?
    private var serialLineHigh = false

    /// - Parameters:
    ///   - interruptControllers: create the in-kernel PIC, IOAPIC, local
    ///     APIC and PIT (a Linux guest needs them; with them HLT no longer
    ///     exits to the runner).
    ///   - cpuid: what the guest's CPUID returns; nil leaves KVM's default.
    public init(space: EPTAddrSpace, system: KVMSystem, interruptControllers: Bool = false,
                cpuid: CPUIDTable? = nil) throws(KVMError) {
        self.space = space
        vm = try VirtualMachine(system: system)
        if interruptControllers { try vm.createInterruptControllers() }
        slots = try MemslotSync(space: space, vm: vm)
        vcpu = try vm.makeVCPU()
        if let cpuid { try vcpu.setCPUID(cpuid) }
    }

    public var serialText: String { String(decoding: serialOutput, as: UTF8.self) }

    /// Re-derives the slots after the caller changed the address space.
    public func syncSlots() throws(KVMError) { try slots.sync() }

    public func dump() -> RegisterDump {
        recordWindowFills()  // the bytes at RIP may be on a page the guest filled itself
        var unreadable: String?
        var r = kvm_regs(), s = kvm_sregs()
        do throws(KVMError) {
            r = try vcpu.registers()
            s = try vcpu.specialRegisters()
        } catch {
            unreadable = "registers unreadable: \(error)"
        }
        var bytes: [UInt8] = []
        let at = s.cs.base &+ r.rip
        let paging = s.cr0 & (1 << 31) != 0
        for i in 0..<16 {
            // With paging on, RIP is virtual: the vCPU's MMU says where it is.
            let linear = at &+ UInt64(i)
            guard let gpa = paging ? (try? vcpu.translate(linear)).flatMap({ $0.valid ? $0.gpa : nil }) : linear,
                  let b = try? space.readBytes(GuestPhysAddr(gpa), count: 1) else { break }
            bytes += b
        }
        return RegisterDump(rip: r.rip, rsp: r.rsp, rax: r.rax, rflags: r.rflags, cr0: s.cr0, cr3: s.cr3, cr4: s.cr4,
                            efer: s.efer, csBase: s.cs.base, bytesAtRIP: bytes, note: unreadable)
    }

    /// Runs until the guest exits, halts, or does something it may not.
    ///
    /// - Parameters:
    ///   - timeLimit: wall-clock limit; a watchdog kicks the vCPU out of
    ///     KVM_RUN when it passes, even from a halted guest.
    ///   - stopWhen: asked before every entry (so after every handled exit);
    ///     a non-nil answer ends the run with `.stopped(answer)`.
    ///
    /// Lazy-window pages the guest filled during the run are recorded in
    /// the space before it returns (or throws).
    public func run(maxExits: Int = 1_000_000, timeLimit: Duration? = nil,
                    stopWhen: ((GuestRunner) -> String?)? = nil) throws(KVMError) -> RunOutcome {
        let outcome: RunOutcome
        do {
            outcome = try runEntries(maxExits: maxExits, timeLimit: timeLimit, stopWhen: stopWhen)
        } catch {
            recordWindowFills()
            throw error
        }
        try slots.recordWindowFills()
        return outcome
    }

    /// Records lazy-window fills where nothing can be thrown (a failure is reported).
    private func recordWindowFills() {
        do throws(KVMError) { try slots.recordWindowFills() } catch { Sys.report("recording lazy-window fills: \(error)") }
    }

    private func runEntries(maxExits: Int, timeLimit: Duration?, stopWhen: ((GuestRunner) -> String?)?) throws(KVMError) -> RunOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        ckvm_set_immediate_exit(vcpu.run, 0)   // a watchdog of an earlier run may have set it
        if slotsStale {
            try slots.sync()
            slotsStale = false
        }
        let watchdog = try timeLimit.map { (limit) throws(KVMError) in try Watchdog(vcpu: vcpu, after: limit) }
        defer { watchdog?.cancel() }
        for _ in 0..<maxExits {
            // Asked before each entry, so after the exit that completed the
            // condition (a guest that halts inside KVM right after its last
            // console line would never exit again).
            if let stopWhen, let why = stopWhen(self) { return .stopped(why) }
            do {
                try vcpu.enter()
            } catch let .call(_, errno) where errno == .interrupted {
                if let timeLimit, clock.now - started >= timeLimit {
                    return .timeLimit(seconds: Double(timeLimit.components.seconds), dump())
                }
                continue
            }
            let run = vcpu.run
            switch Int32(ckvm_exit_reason(run)) {
            case KVM_EXIT_IO:
                if let outcome = try handleIO(run) { return outcome }
            case KVM_EXIT_MMIO:
                let started = clock.now
                if let outcome = try handleMMIO(run) { return outcome }
                let elapsed = clock.now - started
                faultRoundTrips.append(Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9)
            case KVM_EXIT_X86_RDMSR:
                let index = ckvm_msr_index(run)
                msrExits.append((index, false, 0))
                if let value = msrReadHandler(index) { ckvm_msr_complete(run, value, 0) } else { ckvm_msr_complete(run, 0, 1) }
            case KVM_EXIT_X86_WRMSR:
                msrExits.append((ckvm_msr_index(run), true, ckvm_msr_data(run)))
                ckvm_msr_complete(run, ckvm_msr_data(run), 0)
            case KVM_EXIT_HLT:
                return .halted
            case KVM_EXIT_SHUTDOWN:
                return .shutdown(dump())
            case KVM_EXIT_INTERNAL_ERROR:
                return .internalError(suberror: ckvm_internal_suberror(run), dump())
            case KVM_EXIT_FAIL_ENTRY:
                return .failEntry(reason: ckvm_fail_entry_reason(run), dump())
            case let reason:
                return .unhandledExit(reason: UInt32(reason), dump())
            }
        }
        return .exitLimit(maxExits)
    }

    private func handleIO(_ run: UnsafeMutablePointer<kvm_run>) throws(KVMError) -> RunOutcome? {
        let port = ckvm_io_port(run), size = Int(ckvm_io_size(run)), count = Int(ckvm_io_count(run))
        let data = UnsafeMutableRawPointer(run) + Int(ckvm_io_data_offset(run))
        let isOut = Int32(ckvm_io_direction(run)) == KVM_EXIT_IO_OUT
        if let bitmap = ioBitmap, !bitmap.exits(port, size) {
            // Not intercepted: no device model sees it.
            if !isOut { data.initializeMemory(as: UInt8.self, repeating: 0xFF, count: size * count) }
            return nil
        }
        portExits.append((port, size, isOut))
        for i in 0..<count {
            let item = data + i * size
            if port >= Self.serialPort, port < Self.serialPort + 8 {
                let register = Serial16550.Register(rawValue: Int(port - Self.serialPort))!
                if isOut {
                    if let byte = serial.write(register, item.load(as: UInt8.self)) {
                        serialOutput.append(byte)
                        onConsoleOutput?(byte)
                    }
                } else {
                    let value = serial.read(register)
                    for b in 0..<size { item.storeBytes(of: value, toByteOffset: b, as: UInt8.self) }
                }
                continue
            }
            if isOut {
                switch port {
                case Self.debugExitPort: return .exited(status: item.load(as: UInt8.self))
                case Self.reportPort: reports.append(size == 4 ? item.loadUnaligned(as: UInt32.self) : UInt32(item.load(as: UInt8.self)))
                default: break  // other ports are ignored, as absent hardware
                }
            } else {
                // Every other port reads as all ones, like a floating bus.
                for b in 0..<size { item.storeBytes(of: 0xFF as UInt8, toByteOffset: b, as: UInt8.self) }
            }
        }
        try updateSerialInterrupt()
        return nil
    }

    /// Drives COM1's interrupt line (IRQ 4) when the in-kernel irqchip exists.
    private func updateSerialInterrupt() throws(KVMError) {
        guard vm.hasInterruptControllers, serial.interruptPending != serialLineHigh else { return }
        serialLineHigh = serial.interruptPending
        try vm.setInterruptLine(4, high: serialLineHigh)
    }

    private func handleMMIO(_ run: UnsafeMutablePointer<kvm_run>) throws(KVMError) -> RunOutcome? {
        let gpa = ckvm_mmio_address(run), width = Int(ckvm_mmio_length(run)), isWrite = ckvm_mmio_is_write(run) != 0
        let data = ckvm_mmio_data(run)!
        let area = space.area(containing: GuestPhysAddr(gpa))
        func violation(_ reason: String) -> RunOutcome {
            .violation(MemoryViolation(gpa: gpa, width: width, isWrite: isWrite, area: area?.description, reason: reason))
        }
        switch space.handlePageFault(GuestPhysAddr(gpa), access: isWrite ? .write : .read) {
        case let .handled(t):
            exitFaults += 1
            // Complete the one access against the new frame, then let KVM map it.
            do {
                if isWrite {
                    try space.write(GuestPhysAddr(gpa), from: UnsafeRawBufferPointer(start: data, count: width))
                } else {
                    try space.read(GuestPhysAddr(gpa), into: UnsafeMutableRawBufferPointer(start: data, count: width))
                }
            } catch {
                return violation("the access crosses into memory it may not touch: \(error)")
            }
            try slots.pageBecamePresent(Leaf(gpa: t.leafStart, hpa: HostPhysAddr(t.hostAddress.raw & ~0xFFF), pageSize: .size4K, flags: t.flags))
            return nil
        case let .violation(v):
            return violation(v.description)
        }
    }
}

/// Kicks a vCPU out of KVM_RUN once a deadline passes: a POSIX timer
/// aimed at the vCPU's own thread sends it a signal whose handler sets
/// immediate_exit (see ckvm_arm_watchdog). No helper thread is involved, so
/// the kick arrives even when every worker thread is blocked in KVM_RUN.
/// Lives on the vCPU thread: armed when a run starts, disarmed when it ends.
struct Watchdog {
    static let signal = SIGUSR1

    init(vcpu: VCPU, after limit: Duration) throws(KVMError) {
        let nanos = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        if ckvm_arm_watchdog(vcpu.run, Self.signal, max(nanos, 1)) < 0 { throw Sys.error("timer_create(watchdog)") }
    }

    func cancel() { ckvm_disarm_watchdog() }
}
