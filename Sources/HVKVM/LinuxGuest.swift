import HVCore

/// Boots a Linux bzImage on KVM in an HVCore address space and watches its
/// console: the driver behind `hvkit run --kernel` and the boot tests.
public final class LinuxGuest {
    public enum StopPoint: String, CaseIterable, Sendable {
        /// Once the first complete console line arrives (for a bzImage, its
        /// decompressor's; for a vmlinux, the kernel's banner).
        case firstLine = "first-line"
        /// Once the kernel has printed its e820 map and its "Memory:" line.
        case memoryLine = "memory"
        /// Once the guest's /init has printed its marker and memory view.
        case initDone = "init"
        /// Only when the guest powers off, dies, or the time limit passes.
        case never
    }

    public struct Timeline: Sendable {
        public var firstOutput: Double?
        public var e820: Double?
        public var memoryLine: Double?
        public var initMarker: Double?
        public var end: Double = 0
    }

    public let plan: LinuxBootPlan
    public let pool: HeapFramePool
    public let space: EPTAddrSpace
    public let runner: GuestRunner
    public let cpuid: CPUIDTable
    /// Features asked to be hidden that KVM does not offer: the table cannot
    /// hide them (some KVMs, PVM among them, show the host's bit).
    public let notHideable: [CPUIDFeature]
    public private(set) var console = LinuxConsole()
    public private(set) var timeline = Timeline()
    private var line: [UInt8] = []
    /// Every complete console line so far.
    public private(set) var lines: [String] = []

    /// Plans memory, builds the VM (in-kernel irqchip and PIT, KVM's
    /// supported CPUID minus `hide`), loads everything, and stops at the
    /// kernel's entry. `echo` sees each console byte as it arrives.
    public init(plan: LinuxBootPlan, system: KVMSystem, hide: [CPUIDFeature] = [], echo: ((UInt8) -> Void)? = nil) throws(LinuxBootError) {
        self.plan = plan
        do throws(KVMError) {
            // Data frames, page-table frames, and room for 2 MiB alignment.
            pool = try HostMemoryPool.make(capacity: plan.ram + (16 << 20))
            var table = try system.supportedCPUID()
            notHideable = hide.filter { !table.has($0) }
            for feature in hide { table.hide(feature) }
            cpuid = table
        } catch { throw .kvm(error) }
        do throws(AddrSpaceError) {
            space = try EPTAddrSpace(range: try! GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
            space.reservesLazyWindows = true
            try plan.mapMemory(into: space)
        } catch { throw .memory(error) }
        do throws(KVMError) {
            runner = try GuestRunner(space: space, system: system, interruptControllers: true, cpuid: cpuid)
        } catch { throw .kvm(error) }
        try plan.load(into: runner)
        let clock = ContinuousClock()
        let start = clock.now
        func seconds() -> Double {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        runner.onConsoleOutput = { [unowned self] byte in
            if timeline.firstOutput == nil { timeline.firstOutput = seconds() }
            echo?(byte)
            guard byte == 0x0A else { line.append(byte); return }
            let text = String(decoding: line, as: UTF8.self)
            line.removeAll(keepingCapacity: true)
            if !text.allSatisfy({ $0 == "\r" }) { lines.append(text) }
            console.take(text)
            if timeline.e820 == nil, !console.e820.isEmpty { timeline.e820 = seconds() }
            if timeline.memoryLine == nil, console.memory != nil { timeline.memoryLine = seconds() }
            if timeline.initMarker == nil, console.sawInitMarker { timeline.initMarker = seconds() }
            timeline.end = seconds()
        }
    }

    /// Runs until `stop`, a power-off, a triple fault, a KVM error, or the
    /// wall-clock limit.
    public func run(stop: StopPoint, timeLimit: Duration) throws(KVMError) -> RunOutcome {
        let start = ContinuousClock.now
        let outcome = try runner.run(maxExits: Int.max, timeLimit: timeLimit) { [unowned self] _ in
            if console.poweredOff { return "the guest powered off" }
            switch stop {
            case .firstLine where !lines.isEmpty:
                return "stopped after the first console line, as asked"
            case .memoryLine where console.memory != nil && !console.e820.isEmpty:
                return "stopped after the kernel's e820 map and memory line, as asked"
            case .initDone where console.sawInitMarker && console.memTotalKiB != nil && !console.iomemSystemRAM.isEmpty:
                return "stopped after /init reported the guest's memory, as asked"
            default: return nil
            }
        }
        let d = ContinuousClock.now - start
        timeline.end = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return outcome
    }

    /// Differences between what the kernel reported and HVKit's plan.
    public var problems: [String] { console.problems(plannedE820: plan.plannedE820(space)) }
}
