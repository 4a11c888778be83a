import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a flat binary or ELF image in a VM whose RAM is an HVCore address
/// space: what `hvkit run IMAGE` and the lean `hvkit-vmm` both do. Needs
/// nothing beyond HVCore and KVM (no Foundation), so a binary built on it
/// alone starts small.
public struct ImageRun {
    public var ram: UInt64
    public var lazy: Bool
    public var lazyRegion: UInt64
    public var maxExits: Int
    public var timeLimit: Duration?

    public init(ram: UInt64, lazy: Bool, lazyRegion: UInt64 = 0, maxExits: Int = 10_000_000, timeLimit: Duration? = nil) {
        (self.ram, self.lazy, self.lazyRegion, self.maxExits, self.timeLimit) = (ram, lazy, lazyRegion, maxExits, timeLimit)
    }

    public enum Problem: Error, CustomStringConvertible {
        case badSize(String), overlapsLongModeTables(UInt64)
        public var description: String {
            switch self {
            case let .badSize(why): why
            case let .overlapsLongModeTables(at): "a segment overlaps the long-mode tables at [\(hex(at)), \(hex(at + 0x5000)))"
            }
        }
    }

    /// The guest RAM sizes this run accepts.
    public func validate() throws(Problem) {
        guard ram >= 1 << 20, ram % (2 << 20) == 0 else { throw .badSize("--memory must be a multiple of 2 MiB, at least 2 MiB") }
        guard lazyRegion % (2 << 20) == 0, ram + lazyRegion <= 3 << 30 else {
            throw .badSize("--lazy-region must be a multiple of 2 MiB and RAM + region at most 3 GiB")
        }
    }

    public struct Finished {
        public let outcome: RunOutcome
        public let runner: GuestRunner
        public let pool: HeapFramePool
    }

    /// Loads `guest` and runs it; `console` sees each COM1 byte as it is sent.
    public func run(_ guest: GuestImage, console: ((UInt8) -> Void)?) throws -> Finished {
        try validate()
        try guest.check(ram: ram)
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: ((ram + lazyRegion) / (2 << 20) + 16) * (2 << 20))
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        space.reservesLazyWindows = true   // lazy RAM: one slot, pages faulted in by the host
        try space.mapAlloc(GuestPhysAddr(0), size: ram, flags: .rwx, populate: lazy ? .lazy : .eager)
        if lazyRegion > 0 { try space.mapAlloc(GuestPhysAddr(ram), size: lazyRegion, flags: .rwx, populate: .lazy) }
        let runner = try GuestRunner(space: space, system: system)
        for segment in guest.segments { try runner.load(segment.bytes, at: segment.address) }
        switch guest.bits {
        case 16: try runner.startRealMode(entry: UInt16(guest.entry))
        case 32: try runner.startFlatProtectedMode(entry: UInt32(guest.entry))
        default:
            // Long mode keeps its GDT and page tables at 0x10000-0x14fff.
            let tables = GuestRunner.longModeTables
            if guest.segments.contains(where: { $0.address < tables + 0x5000 && tables < $0.address + $0.memorySize }) {
                throw Problem.overlapsLongModeTables(tables)
            }
            try runner.startLongMode(entry: guest.entry)
        }
        runner.onConsoleOutput = console
        let outcome = try runner.run(maxExits: maxExits, timeLimit: timeLimit)
        return Finished(outcome: outcome, runner: runner, pool: pool)
    }

    /// The one-line summary `hvkit run` prints after the guest's output.
    public static func summary(_ f: Finished) -> String {
        "hvkit run: guest \(f.outcome); \(f.runner.lazyFaults) lazy faults, \(f.runner.slots.slotCount) memslots"
    }

    /// The process exit status for an outcome: the guest's own status, 0
    /// for a halt, 3 for the time limit, 2 for anything else.
    public static func exitStatus(_ outcome: RunOutcome) -> Int32 {
        switch outcome {
        case let .exited(status): Int32(status)
        case .halted: 0
        case .timeLimit: 3
        default: 2
        }
    }

    /// For `hvkit bench kvm` (set HVKIT_REPORT_PEAK_RSS): a parent's wait4
    /// sees its own size in a spawned child's peak RSS, so the run reports
    /// its own, and the guest RAM the host really holds (the resident size
    /// of the pool's mapping). Nil when not asked for.
    public static func peakRSSReport(_ f: Finished) -> String? {
        guard getenv("HVKIT_REPORT_PEAK_RSS") != nil else { return nil }
        let peak = procFile("/proc/self/status").split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let address = UInt(bitPattern: f.pool.directMap.virtualBase)
        var touched = 0, inside = false
        for line in procFile("/proc/self/smaps").split(separator: "\n") {
            let range = line.prefix(while: { $0 != " " }).split(separator: "-")
            if range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) {
                inside = lo <= address && address < hi
            } else if inside, line.hasPrefix("Rss:") {
                touched = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                break
            }
        }
        return "hvkit run: peak_rss_kib \(peak) guest_ram_touched_kib \(touched)"
    }

    /// A /proc file read to its end (they report no size), or "".
    static func procFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return String(decoding: bytes, as: UTF8.self) }
            bytes += chunk[0..<n]
        }
    }
}
