import ArgumentParser
import HVCore

/// The page-table part of the demo: builds the nested page table of a small
/// VM layout, changes it the way a hypervisor would, and prints it. Runs
/// when KVM is not available, or with `hvkit demo --page-table`.
struct PageTableDemo {
    var json = false

    func run() throws {
        let pool = HeapFramePool(capacity: 64 * 1024 * 1024)
        let tracker = TrackingAllocator(pool)
        let table = try EPTPageTable(allocator: tracker)
        let gib: UInt64 = 0x4000_0000, mib: UInt64 = 0x10_0000

        var steps: [(String, String)] = []
        func step(_ what: String, _ body: () throws -> Void) rethrows {
            try body()
            let invalidations = table.takePendingInvalidations()
            let note = invalidations.isEmpty ? "" : " -> \(EPTFormat.invalidationName) for \(invalidations.map(\.description).joined(separator: ", "))"
            steps.append((what, "\(tracker.liveFrames) table frames\(note)"))
        }

        try step("map RAM [0x0, 0x8000_0000) -> host 0x1_0000_0000 RWX") {
            try table.mapRegion(GuestPhysAddr(0), to: HostPhysAddr(4 * gib), size: 2 * gib, flags: .rwx)
        }
        try step("map firmware [0xFFE0_0000, +2 MiB) -> host 0x2_0000_0000 R X") {
            try table.mapRegion(GuestPhysAddr(0xFFE0_0000), to: HostPhysAddr(8 * gib), size: 2 * mib, flags: [.read, .execute])
        }
        try step("map device [0xFEC0_0000, +4 KiB) -> host 0xFEC0_0000 RW DEVICE") {
            try table.mapRegion(GuestPhysAddr(0xFEC0_0000), to: HostPhysAddr(0xFEC0_0000), size: 4096, flags: [.read, .write, .device])
        }
        try step("unmap a balloon page [0x4020_3000, +4 KiB)") {
            try table.unmap(GuestPhysAddr(0x4020_3000), size: 4096)
        }
        try step("write-protect [0x10_0000, +1 MiB)") {
            try table.protect(GuestPhysAddr(0x10_0000), size: mib, flags: [.read, .execute])
        }
        var refused = ""
        do {
            try table.mapRegion(GuestPhysAddr(0x4000_0000), to: HostPhysAddr(0), size: 4096, flags: .read)
        } catch {
            refused = "\(error)"
        }
        let problems = table.invariantViolations()
        let leaves = table.leaves
        let runs = coalesce(leaves)

        if json {
            let runText = runs.map { r in
                "{\"gpa\":\"\(hex(r.gpa))\",\"end\":\"\(hex(r.end))\",\"hpa\":\"\(hex(r.hpa))\",\"flags\":\"\(r.flags)\",\"leaves\":{\(r.counts.map { "\"\($0.key)\":\($0.value)" }.sorted().joined(separator: ","))}}"
            }
            print("{\"format\":\"\(EPTFormat.name)\",\"eptp\":\"\(hex(table.eptPointer()))\",\"table_frames\":\(table.tableFrameCount),\"leaves\":\(leaves.count),\"runs\":[\(runText.joined(separator: ","))],\"invariant_violations\":\(problems.count)}")
        } else {
            print("HVKit page-table demo: \(EPTFormat.name) for a sample VM layout")
            for (what, after) in steps { print("  \(what): \(after)") }
            print("  refused as expected: \(refused)")
            print("\nMappings (\(leaves.count) leaves, coalesced):")
            print("  \(pad("guest range", 28))  \(pad("host start", 14))  \(pad("flags", 9))  leaves")
            for r in runs {
                let counts = r.counts.sorted { $0.key < $1.key }.map { "\($0.value)x\($0.key)" }.joined(separator: " ")
                print("  \(pad("[\(hex(r.gpa)), \(hex(r.end)))", 28))  \(pad(hex(r.hpa), 14))  \(pad(r.flags.description, 9))  \(counts)")
            }
            print("\nEPTP \(hex(table.eptPointer())) (WB, 4-level); \(table.tableFrameCount) table frames; invariants: \(problems.isEmpty ? "hold" : problems.joined(separator: "; "))")
        }
        if !problems.isEmpty { throw ExitCode.failure }
    }

    private func pad(_ s: String, _ width: Int = 16) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }

    private struct Run {
        var gpa: UInt64, end: UInt64, hpa: UInt64, flags: MappingFlags
        var counts: [PageSize: Int]
    }

    /// Adjacent leaves contiguous on both sides with equal flags, as one run.
    private func coalesce(_ leaves: [Leaf]) -> [Run] {
        var runs: [Run] = []
        for leaf in leaves {
            if var last = runs.last, last.end == leaf.gpa.raw, last.hpa + (last.end - last.gpa) == leaf.hpa.raw, last.flags == leaf.flags {
                last.end += leaf.pageSize.bytes
                last.counts[leaf.pageSize, default: 0] += 1
                runs[runs.count - 1] = last
            } else {
                runs.append(Run(gpa: leaf.gpa.raw, end: leaf.gpa.raw + leaf.pageSize.bytes, hpa: leaf.hpa.raw, flags: leaf.flags, counts: [leaf.pageSize: 1]))
            }
        }
        return runs
    }
}
