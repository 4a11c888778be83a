import ArgumentParser
import HVCore
import HVKVM
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a fixed benchmark workload (one warm-up pass, five measured passes).",
        discussion: "Run in a release build: swift run -c release hvkit bench addrspace --json"
    )

    @Argument(help: "The workload: addrspace, check, kvm or hunt.")
    var workload: String

    @Flag(help: "Print one JSON object per figure, one per line.")
    var json = false

    @Option(help: "Measured passes (after one warm-up pass).")
    var passes = 5

    @Option(name: .customLong("only"), help: "Run only these workload groups: populate, linear, lazy, small.")
    var only: [String] = []

    @Option(help: "Page-table format for addrspace: ept (the default, compared with upstream), stage2, stage2-48, sv39x4 or sv48x4.")
    var format = "ept"

    func validate() throws {
        guard ["addrspace", "check", "kvm", "hunt"].contains(workload) else { throw ValidationError("unknown workload '\(workload)'; known: addrspace, check, kvm, hunt") }
        guard passes >= 1 else { throw ValidationError("--passes must be at least 1") }
        for group in only where !AddrSpaceWorkloads.groups.contains(group) {
            throw ValidationError("unknown group '\(group)'; known: \(AddrSpaceWorkloads.groups.joined(separator: ", "))")
        }
        guard NestedFormat(rawValue: format) != nil else { throw ValidationError("--format is ept, stage2, stage2-48, sv39x4 or sv48x4") }
    }

    func run() throws {
        func progress(_ message: String) {
            var line = "bench: \(message)\n"
            line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
        }
        #if DEBUG
        progress("warning: this is a debug build; figures are only meaningful with -c release")
        #endif
        var figures = Figures()
        if workload == "kvm" {
            if let reason = KVMSystem.unavailableReason() { throw ValidationError("bench kvm needs /dev/kvm: \(reason)") }
            let bench = KVMBenchmark(progress: progress)
            for pass in 0...passes {
                progress(pass == 0 ? "warm-up pass" : "pass \(pass)/\(passes)")
                try bench.faults(into: &figures, record: pass > 0)
                try bench.startup(into: &figures, record: pass > 0)
            }
        } else if workload == "hunt" {
            if HuntBenchmark.staticServer == nil { progress("no hvkit-serve beside this executable (swift build -c release builds it): the _static lines are left out") }
            for pass in 0...passes {
                progress(pass == 0 ? "warm-up pass" : "pass \(pass)/\(passes)")
                try HuntBenchmark().pass(into: &figures, record: pass > 0)
            }
        } else if workload == "check" {
            for pass in 0...passes {
                progress(pass == 0 ? "warm-up pass" : "pass \(pass)/\(passes)")
                try CheckBenchmark().pass(into: &figures, record: pass > 0)
            }
        } else {
            let nested = NestedFormat(rawValue: format)!
            progress("format \(nested.type.name)")
            let run = RunAddrSpace(only: Set(only.isEmpty ? AddrSpaceWorkloads.groups : only), passes: passes,
                                   suffix: nested == .ept ? "" : "_\(nested)", progress: progress)
            figures = try nested.accept(run).get()
        }
        for line in json ? figures.jsonLines() : figures.table() { print(line) }
    }
}

/// The addrspace workloads on the format chosen at run time.
struct RunAddrSpace: NestedFormatVisitor {
    let only: Set<String>, passes: Int, suffix: String, progress: (String) -> Void

    func visit<F: PageTableFormat>(_ format: F.Type) -> Result<Figures, any Error> {
        Result {
            var figures = Figures()
            let bench = try AddrSpaceBenchmark<F>(only: only, formatSuffix: suffix, progress: progress)
            for pass in 0...passes {
                progress(pass == 0 ? "warm-up pass" : "pass \(pass)/\(passes)")
                try bench.pass(into: &figures, record: pass > 0)
                if pass > 0 { AddrSpaceBenchmark<F>.yardsticks(into: &figures) }
            }
            return figures
        }
    }
}
