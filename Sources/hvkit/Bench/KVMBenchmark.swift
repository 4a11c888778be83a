import Foundation
import HVCore
import HVKVM
#if canImport(Glibc)
import Glibc
#endif

/// `hvkit bench kvm`: guest memory on KVM as a guest and a user see it.
/// Fault figures come from guest run times, so HVKit's lazy fault and
/// KVM's own demand fault are measured the same way: the same guest
/// touches 4,096 fresh pages, then the same pages again (present now); the
/// difference over 4,096 is one fault's round trip.
struct KVMBenchmark {
    static let pages = 4096
    static let lazyStart: UInt64 = 16 << 20
    let progress: (String) -> Void

    /// Wall-clock nanoseconds of one guest run from `entry`.
    private func timedRun(_ runner: GuestRunner) throws -> Double {
        try runner.startFlatProtectedMode(entry: 0x1000)
        var outcome: RunOutcome?
        let ns = try measure { outcome = try runner.run(maxExits: 100_000, timeLimit: .seconds(60)) }
        guard outcome == .exited(status: 0) else { throw KVMBenchError.guest("\(outcome.map(String.init(describing:)) ?? "nothing")") }
        return ns
    }

    enum KVMBenchError: Error, CustomStringConvertible {
        case guest(String), spawn(String)
        var description: String {
            switch self {
            case let .guest(s): "the benchmark guest ended with \(s)"
            case let .spawn(s): s
            }
        }
    }

    /// One pass of the fault figures.
    func faults(into figures: inout Figures, record: Bool) throws {
        let system = try KVMSystem()
        let bytes = UInt64(Self.pages) * 4096
        let code = TestGuests.touchPages(from: UInt32(Self.lazyStart), to: UInt32(Self.lazyStart + bytes))

        // A fresh 64 MiB pool, 1 MiB of eager RAM with the touch guest at
        // 0x1000, and `region` mapping the 4,096 pages it touches.
        func vm(_ region: (EPTAddrSpace) throws -> Void) throws -> (EPTAddrSpace, GuestRunner) {
            let pool = try HostMemoryPool.make(capacity: 64 << 20)
            let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
            try space.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
            try region(space)
            let runner = try GuestRunner(space: space, system: system)
            try runner.load(code, at: 0x1000)
            return (space, runner)
        }

        // HVKit: a lazy region with a window (one slot from the start; the
        // host faults pages in, the run records them before it returns).
        let (space, runner) = try vm {
            $0.reservesLazyWindows = true
            try $0.mapAlloc(GuestPhysAddr(Self.lazyStart), size: bytes, flags: .readWrite, populate: .lazy)
        }
        let slotOpsBefore = runner.slots.operations
        let faulting = try timedRun(runner)
        guard runner.lazyFaults == Self.pages, runner.exitFaults == 0 else {
            throw KVMBenchError.guest("\(runner.lazyFaults) lazy fills (\(runner.exitFaults) through exits), not \(Self.pages) without exits")
        }
        let present = try timedRun(runner)

        // HVKit without a window (what a pool with no free run falls back
        // to): each page an MMIO exit, handlePageFault and a slot change.
        let (_, exits) = try vm { try $0.mapAlloc(GuestPhysAddr(Self.lazyStart), size: bytes, flags: .readWrite, populate: .lazy) }
        let exitSlotOpsBefore = exits.slots.operations
        let exitFaulting = try timedRun(exits)
        guard exits.exitFaults == Self.pages else { throw KVMBenchError.guest("\(exits.exitFaults) exit faults, not \(Self.pages)") }
        let exitPresent = try timedRun(exits)
        let host = exits.faultRoundTrips.sorted()[exits.faultRoundTrips.count / 2]

        // KVM alone: one plain memslot over host memory nobody has touched
        // (the top of the fresh pool, mapped linearly), faulted in by KVM
        // and the host kernel.
        let (_, anon) = try vm {
            try $0.mapLinear(GuestPhysAddr(Self.lazyStart), to: HostPhysAddr(0x1_0000_0000 + (32 << 20)), size: bytes, flags: .readWrite)
        }
        let anonFaulting = try timedRun(anon)
        let anonPresent = try timedRun(anon)

        // HVKit eager over known-zero frames: the frames are mapped (one
        // slot) but the host has not touched them, so the first touch is
        // the host kernel's demand fault, with no exit to HVKit.
        let (_, zero) = try vm { try $0.mapAlloc(GuestPhysAddr(Self.lazyStart), size: bytes, flags: .readWrite, populate: .eager) }
        let zeroFirst = try timedRun(zero)
        let zeroAgain = try timedRun(zero)

        guard record else { return }
        figures.record("eager_known_zero_first_touch_us", "us", max(0, zeroFirst - zeroAgain) / Double(Self.pages) / 1000)
        figures.record("eager_known_zero_memslots", "slots", Double(zero.slots.slotCount))
        figures.record("lazy_fault_roundtrip_us", "us", max(0, faulting - present) / Double(Self.pages) / 1000)
        figures.record("kvm_anon_fault_us", "us", max(0, anonFaulting - anonPresent) / Double(Self.pages) / 1000)
        figures.record("memslots_after_4096_faults", "slots", Double(runner.slots.slotCount))
        figures.record("memslot_operations_4096_faults", "ops", Double(runner.slots.operations - slotOpsBefore))
        figures.record("areas_after_4096_faults", "areas", Double(space.areaCount))
        figures.record("lazy_exit_fault_roundtrip_us", "us", max(0, exitFaulting - exitPresent) / Double(Self.pages) / 1000)
        figures.record("lazy_exit_fault_host_handling_us", "us", host / 1000)
        figures.record("lazy_exit_memslots_after_4096_faults", "slots", Double(exits.slots.slotCount))
        figures.record("lazy_exit_memslot_operations_4096_faults", "ops", Double(exits.slots.operations - exitSlotOpsBefore))
    }

    /// Start-up as a user sees it: the lean `hvkit-vmm` and the whole
    /// `hvkit run` on a tiny guest, timed from outside the process, and
    /// QEMU's microvm with the same guest.
    func startup(into figures: inout Figures, record: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-bench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("hello.bin").path
        let code = TestGuests.realModeHello("hi\n", status: 0)
        FileManager.default.createFile(atPath: image, contents: Data(code))
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path

        // The lean VMM beside this binary (`swift build -c release` builds it).
        let vmm = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("hvkit-vmm").path
        let hasVMM = access(vmm, X_OK) == 0
        if !hasVMM { progress("no hvkit-vmm beside \(me) (swift build -c release --product hvkit-vmm): its figures are left out") }
        let tool = try Self.spawn([me, "run", image, "--mode", "real", "--lazy"])
        let lazy = hasVMM ? try Self.spawn([vmm, image, "--mode", "real", "--lazy"]) : nil
        let eager = hasVMM ? try Self.spawn([vmm, image, "--mode", "real", "--memory", "64M"]) : nil
        var qemu: Spawned?
        if let q = Self.which("qemu-system-x86_64") {
            // A 64 KiB BIOS: the guest at offset 0 (F000:0000), a far jump there at the reset vector.
            var bios = [UInt8](repeating: 0, count: 0x10000)
            bios.replaceSubrange(0..<code.count, with: code)
            bios.replaceSubrange(0xFFF0..<0xFFF5, with: [0xEA, 0x00, 0x00, 0x00, 0xF0])
            let biosPath = dir.appendingPathComponent("bios.bin").path
            FileManager.default.createFile(atPath: biosPath, contents: Data(bios))
            qemu = try Self.spawn([q, "-M", "microvm", "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "64M", "-nodefaults",
                                   "-nographic", "-serial", "stdio", "-bios", biosPath, "-device", "isa-debug-exit,iobase=0x501,iosize=1"])
        }
        guard record else { return }
        if let lazy, let eager {
            figures.record("start_to_first_output_ms", "ms", lazy.firstOutput * 1000)
            figures.record("exit_ms", "ms", lazy.exit * 1000)
            figures.record("rss_overhead_kib", "KiB", Double(lazy.peakRSSKiB - lazy.guestTouchedKiB))
            figures.record("eager_64m_start_ms", "ms", eager.firstOutput * 1000)
            figures.record("eager_64m_rss_overhead_kib", "KiB", Double(eager.peakRSSKiB - eager.guestTouchedKiB))
        }
        // The whole tool (Foundation, Z3, the argument parser) for the same guest.
        figures.record("hvkit_run_start_to_first_output_ms", "ms", tool.firstOutput * 1000)
        figures.record("hvkit_run_exit_ms", "ms", tool.exit * 1000)
        figures.record("hvkit_run_rss_overhead_kib", "KiB", Double(tool.peakRSSKiB - tool.guestTouchedKiB))
        if let qemu { figures.record("qemu_microvm_start_to_first_output_ms", "ms", qemu.firstOutput * 1000) }
    }

    /// A spawned run: seconds to its first output byte and to its exit;
    /// for `hvkit run`, the peak RSS and guest RAM it reports on stderr.
    struct Spawned { let firstOutput: Double, exit: Double, peakRSSKiB: Int, guestTouchedKiB: Int }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// Runs `argv` with stdout and stderr on pipes: seconds to its first
    /// byte and to its exit, and what `hvkit run` reports of its peak RSS
    /// (wait4's figure would include this process's own size, which a
    /// spawned child inherits as its starting high-water mark).
    static func spawn(_ argv: [String]) throws -> Spawned {
        var fds: [Int32] = [0, 0], errFDs: [Int32] = [0, 0]
        guard pipe(&fds) == 0, pipe(&errFDs) == 0 else { throw KVMBenchError.spawn("pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFDs[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, errFDs[0])
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var environment = ProcessInfo.processInfo.environment
        environment["HVKIT_REPORT_PEAK_RSS"] = "1"
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let clock = ContinuousClock()
        let start = clock.now
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
        close(fds[1])
        close(errFDs[1])
        guard rc == 0 else {
            close(fds[0]); close(errFDs[0])
            throw KVMBenchError.spawn("posix_spawn \(argv[0]): \(String(cString: strerror(rc)))")
        }
        var first: Duration?
        var byte: UInt8 = 0
        while read(fds[0], &byte, 1) == 1 { if first == nil { first = clock.now - start } }
        close(fds[0])
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        let exit = clock.now - start
        var errors: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(errFDs[0], &chunk, chunk.count)
            if n <= 0 { break }
            errors += chunk[0..<n]
        }
        close(errFDs[0])
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        guard let first else { throw KVMBenchError.spawn("\(argv.joined(separator: " ")) printed nothing (status \(status))") }
        // "hvkit run: peak_rss_kib N guest_ram_touched_kib M", when it is hvkit.
        let words = String(decoding: errors, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        func value(after key: String) -> Int { words.firstIndex(of: Substring(key)).flatMap { Int(words[$0 + 1]) } ?? 0 }
        return Spawned(firstOutput: seconds(first), exit: seconds(exit), peakRSSKiB: value(after: "peak_rss_kib"),
                       guestTouchedKiB: value(after: "guest_ram_touched_kib"))
    }
}
