import HVCore

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
}
