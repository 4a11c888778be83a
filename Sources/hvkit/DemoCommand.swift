import ArgumentParser
import Foundation
import HVCore
import HVKVM

/// The main job on its embedded default: a VM whose memory is an HVCore
/// address space (eager RAM, a lazy region, a read-only region) runs real
/// test guests on KVM, and the host checks that what the guest wrote is
/// where the model says.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run test guests on KVM in HVKit-managed memory and check them against the model."
    )

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "Only the page-table demo (no KVM).")
    var pageTable = false

    func run() throws {
        if pageTable { return try PageTableDemo(json: json).run() }
        if let reason = KVMSystem.unavailableReason() {
            FileHandle.standardError.write(Data("demo: KVM cannot be used (\(reason)); running the page-table demo instead\n".utf8))
            return try PageTableDemo(json: json).run()
        }
        let mib: UInt64 = 1 << 20
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: 256 * mib)
        let tracker = TrackingAllocator(pool)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: tracker)
        space.reservesLazyWindows = true
        let ram = (GuestPhysAddr(0), 16 * mib), lazy = (GuestPhysAddr(64 * mib), 16 * mib), rom = (GuestPhysAddr(32 * mib), 2 * mib)
        try space.mapAlloc(ram.0, size: ram.1, flags: .rwx, populate: .eager)
        try space.mapAlloc(lazy.0, size: lazy.1, flags: .readWrite, populate: .lazy)
        try space.mapAlloc(rom.0, size: rom.1, flags: [.read, .execute], populate: .eager)
        let runner = try GuestRunner(space: space, system: system)
        let slotsAtStart = runner.slots.slotCount

        // 1. Real mode: a greeting on the serial port.
        try runner.load(TestGuests.realModeHello("HVKit guest: hello from real mode\n"), at: 0x1000)
        try runner.startRealMode(entry: 0x1000)
        let hello = try runner.run()

        // 2. Long mode (the runner builds the GDT and identity page tables in
        //    guest memory): fill and verify one word per page of RAM above
        //    1 MiB and of the whole lazy region.
        let ranges: [(UInt64, UInt64)] = [(mib, ram.1), (lazy.0.raw, lazy.0.raw + lazy.1)]
        var table: [UInt32] = []
        for (lo, hi) in ranges { table += [UInt32(lo), UInt32(hi)] }
        try runner.load((table + [0, 0]).withUnsafeBytes(Array.init), at: 0x2000)
        try runner.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
        try runner.startLongMode(entry: 0x1000)
        let fill = try runner.run()
        var checked = 0, divergences = 0
        for (lo, hi) in ranges {
            for page in stride(from: lo, to: hi, by: 4096) {
                checked += 1
                if (try? space.read(UInt32.self, at: GuestPhysAddr(page))) != TestGuests.pattern(page) { divergences += 1 }
            }
        }
        divergences += runner.slots.divergence().count

        // 3. A write to the read-only region must stop the guest.
        try runner.load(TestGuests.probe(UInt32(rom.0.raw) + 0x40, write: true), at: 0x1000)
        try runner.startFlatProtectedMode(entry: 0x1000)
        let probe = try runner.run()

        let roundTrip = median(runner.faultRoundTrips)
        if json {
            let areas = space.areas.map { "{\"range\":\"\($0.range)\",\"flags\":\"\($0.flags)\",\"backend\":\"\($0.backend)\"}" }
            print("{\"guest_output\":\(quote(runner.serialText)),\"hello\":\(quote(hello.description)),\"fill\":\(quote(fill.description)),\"read_only_probe\":\(quote(probe.description)),\"areas\":[\(areas.joined(separator: ","))],\"lazy_faults\":\(runner.lazyFaults),\"lazy_exit_faults\":\(runner.exitFaults),\"slots_at_start\":\(slotsAtStart),\"slots\":\(runner.slots.slotCount),\"fault_round_trip_ns_median\":\(Int(roundTrip)),\"pages_checked\":\(checked),\"divergences\":\(divergences)}")
        } else {
            print("HVKit demo: guests on KVM in HVCore-managed memory")
            print("\nGuest output:\n  " + runner.serialText.split(separator: "\n").joined(separator: "\n  "))
            print("\nRuns:")
            print("  real-mode hello:           \(hello)")
            print("  long-mode fill+check:      \(fill) (mismatches reported by the guest: \(runner.reports.last.map(String.init) ?? "-"))")
            print("  write to read-only memory: \(probe)")
            print("\nMemory map:")
            for a in space.areas { print("  \(a.range)  \(a.flags)  \(a.backend)" + (a.window.map { ", window at host \(hex($0))" } ?? "")) }
            print("\nLazy pages filled: \(runner.lazyFaults), \(runner.exitFaults) of them through an exit"
                  + (runner.exitFaults > 0 ? " (median exit-to-resume \(Int(roundTrip / 1000)) us)" : "")
                  + "; the rest the host faulted in through the lazy area's window")
            print("Memslots: \(slotsAtStart) at start, \(runner.slots.slotCount) now (\(runner.slots.operations) slot operations)")
            for slot in runner.vm.slots.values.sorted(by: { $0.guest < $1.guest }) { print("  \(slot)") }
            print("Agreement: \(checked) pages checked against translate; divergences: \(divergences)")
        }
        let ok = hello == .exited(status: 0) && fill == .exited(status: 0) && divergences == 0
        if case .violation = probe {} else { throw ExitCode.failure }
        if !ok { throw ExitCode.failure }
    }

    private func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        return values.sorted()[values.count / 2]
    }

    private func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
    }
}
