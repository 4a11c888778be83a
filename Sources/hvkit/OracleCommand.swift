import ArgumentParser
import Foundation
import HVCore
import HVOracle

/// The QEMU differentials from the command line.
struct OracleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oracle",
        abstract: "Compare HVKit's page-table walks with QEMU's (TCG) on random tables and probes.",
        discussion: "Needs qemu-system-riscv64, qemu-system-aarch64, qemu-system-x86_64 and the riscv64/aarch64 cross binutils (scripts/setup installs them). Exit status 1 on a disagreement, 2 when an oracle cannot run."
    )

    @Option(help: "sv39x4, sv48x4, stage2 (40-bit IPA, concatenated root), stage2-48, x86-none, x86-32, x86-pae, x86-64, or all.")
    var format = "all"

    @Option(help: "Probes per format.")
    var probes = 10_000

    @Option(help: "Seed for the tables and probes (decimal or 0x-hex).")
    var seed = "0x4f52_4143_4c45"

    @Option(help: "Switch on a seeded bug (the teeth check): in the image QEMU gets, u-clear or rw-swapped (G-stage), s2ap-swapped or af-clear (stage 2); in HVKit's x86 walker, ignores-wp, ignores-nx, forgets-cpl3, ignores-smep-smap, drops-pse36 or page-off.")
    var seededBug: String?

    @Flag(help: "x86: every access at CPL 3.")
    var user = false

    @Flag(help: "x86: CR4.SMEP and CR4.SMAP on (CPL 0 accesses to user pages).")
    var smepSmap = false

    @Flag(help: "One JSON object per format.")
    var json = false

    func run() throws {
        let seedValue = try SeedOption.parse(seed)
        guard probes > 0 else { throw ValidationError("--probes must be positive") }
        let known = ["sv39x4", "sv48x4", "stage2", "stage2-48", "x86-none", "x86-32", "x86-pae", "x86-64"]
        let formats = format == "all" ? known : [format]
        guard formats.allSatisfy(known.contains) else { throw ValidationError("--format is sv39x4, sv48x4, stage2, stage2-48, x86-none, x86-32, x86-pae, x86-64 or all") }
        let gstageBug = seededBug.flatMap { GStageOracle<Sv39x4Format>.Mutation(rawValue: $0) }
        let stage2Bug = seededBug.flatMap { Stage2Oracle<Stage2IPA40Format>.Mutation(rawValue: $0) }
        let walkerBug = seededBug.flatMap { X86PagingOracle.SeededWalkerBug(rawValue: $0) }
        if let seededBug, gstageBug == nil, stage2Bug == nil, walkerBug == nil {
            throw ValidationError("--seeded-bug '\(seededBug)' is none of u-clear, rw-swapped, s2ap-swapped, af-clear, ignores-wp, ignores-nx, forgets-cpl3, ignores-smep-smap, drops-pse36, page-off")
        }
        var failed = false
        for f in formats {
            let progress: (String) -> Void = { if !json { FileHandle.standardError.write(Data("oracle: \($0)\n".utf8)) } }
            let report: OracleReport
            do {
                switch f {
                case "sv39x4":
                    if seededBug != nil && gstageBug == nil { continue }
                    report = try GStageOracle<Sv39x4Format>(seed: seedValue, probes: probes, mutation: gstageBug).run(progress: progress)
                case "sv48x4":
                    if seededBug != nil && gstageBug == nil { continue }
                    report = try GStageOracle<Sv48x4Format>(seed: seedValue, probes: probes, mutation: gstageBug.flatMap { .init(rawValue: $0.rawValue) }).run(progress: progress)
                case "stage2":
                    if seededBug != nil && stage2Bug == nil { continue }
                    report = try Stage2Oracle<Stage2IPA40Format>(seed: seedValue, probes: probes, mutation: stage2Bug).run(progress: progress)
                case "x86-none", "x86-32", "x86-pae", "x86-64":
                    if seededBug != nil && walkerBug == nil { continue }
                    if f == "x86-none" && (user || smepSmap) { continue }
                    report = try X86PagingOracle(mode: f == "x86-none" ? 0 : f == "x86-32" ? 2 : f == "x86-pae" ? 3 : 4, seed: seedValue, probes: probes, bug: walkerBug, user: user, smepSmap: smepSmap).run(progress: progress)
                default:
                    if seededBug != nil && stage2Bug == nil { continue }
                    report = try Stage2Oracle<Stage2IPA48Format>(seed: seedValue, probes: probes, mutation: stage2Bug.flatMap { .init(rawValue: $0.rawValue) }).run(progress: progress)
                }
            } catch {
                FileHandle.standardError.write(Data("hvkit oracle: \(f): \(error)\n".utf8))
                throw ExitCode(2)
            }
            failed = failed || report.disagreementCount > 0
            if json {
                let first = report.disagreements.first.map { "\"\($0.description.replacingOccurrences(of: "\"", with: "'").replacingOccurrences(of: "\n", with: "\\n"))\"" } ?? "null"
                print("{\"format\":\"\(f)\",\"compared\":\(report.compared),\"disagreements\":\(report.disagreementCount),\"excluded\":\(report.excluded.values.reduce(0, +)),\"mappings\":\(report.mappings),\"seconds\":\(String(format: "%.2f", report.seconds)),\"first\":\(first)}")
            } else {
                print(report.summary)
                if let d = report.disagreements.first {
                    print("first disagreement:\n  \(d)\n\n\(d.replay)")
                }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
