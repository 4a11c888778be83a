import ArgumentParser
import Foundation
import HVCore
import HVSpecs
#if canImport(Glibc)
import Glibc
#endif

/// The model-based campaign from the command line: random operation
/// sequences on 1-3 address spaces, run in lockstep with the model; the
/// first disagreement is shrunk and printed as a Swift test.
struct HuntCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hunt",
        abstract: "Hunt mapping bugs: run the implementation against the model on random cases.",
        discussion: "Exits 1 when a counterexample is found. Seeded bugs (--bug) exist only in debug builds."
    )

    @Option(help: "Number of cases.")
    var cases = 1000

    @Option(help: "Campaign seed (decimal or 0x-hex); case i of a seed always generates the same operations.")
    var seed = "0x4856_4b49_5400_0001"

    @Option(help: "Switch on a seeded bug (debug builds only); 'list' names them.")
    var bug: String?

    @Option(help: "Longest generated case, in operations.")
    var maxLength = 24

    @Option(help: "Page-table format: ept, stage2, stage2-48, sv39x4, sv48x4, or all (ept, stage2, sv39x4 and sv48x4 in turn).")
    var format = "all"

    @Flag(help: "Print one JSON object per format instead of text.")
    var json = false

    @Option(help: "Hunt in another implementation: a command (plain words are run directly, anything else under /bin/sh) speaking the target protocol (docs/target-protocol.md) on stdin/stdout.")
    var target: String?

    @Option(help: "With --target: milliseconds the target may take to answer one request before it is killed.")
    var timeoutMs = 2000

    @Option(help: "With --target: where to write the counterexample's replay file (default hvkit-counterexample-FORMAT.jsonl).")
    var output: String?

    func run() throws {
        if bug == "list" {
            for b in SeededBug.allCases { print("\(b.rawValue): \(b.summary)") }
            return
        }
        let seedValue = try SeedOption.parse(seed)
        if let target {
            guard bug == nil else { throw ValidationError("--bug seeds HVCore's own bugs; it does not go with --target") }
            guard cases > 0, maxLength >= 4, timeoutMs > 0 else { throw ValidationError("--cases and --timeout-ms must be positive and --max-length at least 4") }
            try TargetHuntRun(command: target, formatOption: format, cases: cases, seed: seedValue, maxLength: maxLength,
                              timeoutMs: timeoutMs, json: json, output: output).run()
            return
        }
        var seeded: SeededBug?
        if let bug {
            guard let b = SeededBug(rawValue: bug) else {
                throw ValidationError("unknown bug '\(bug)'; known: \(SeededBug.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard SeededBug.available else {
                throw ValidationError("seeded bugs are compiled only into debug builds; run `swift run hvkit hunt --bug \(bug)` without -c release")
            }
            seeded = b
        }
        guard cases > 0, maxLength >= 4 else { throw ValidationError("--cases must be positive and --max-length at least 4") }
        let formats: [NestedFormat]
        if format == "all" { formats = NestedFormat.campaign } else {
            guard let f = NestedFormat(rawValue: format) else { throw ValidationError("--format is ept, stage2, stage2-48, sv39x4, sv48x4 or all") }
            formats = [f]
        }
        var anyFound = false
        for f in formats { anyFound = hunt(f, seedValue, seeded) || anyFound }
        if anyFound { throw ExitCode(1) }
    }

    /// One format's campaign; true when a counterexample was found.
    func hunt(_ nested: NestedFormat, _ seedValue: UInt64, _ seeded: SeededBug?) -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        let (found, run) = Campaign.hunt(cases: cases, seed: seedValue, bug: seeded, maxLength: maxLength, format: nested) { i in
            if !json, i % 50 == 0 || i == cases - 1 {
                var line = "\rhunt \(nested): case \(i + 1)/\(cases)"
                line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
            }
        }
        if !json { var nl = "\n"; nl.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) } }
        let seconds = Double((clock.now - start).components.seconds) + Double((clock.now - start).components.attoseconds) / 1e18
        if json {
            let bugField = seeded.map { "\"\($0.rawValue)\"" } ?? "null"
            if let c = found {
                let ops = c.ops.map { "\"" + $0.description.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",")
                let message = c.message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
                print("{\"format\":\"\(nested)\",\"seed\":\"\(hex(seedValue))\",\"bug\":\(bugField),\"cases_run\":\(run),\"found\":true,\"case\":\(c.caseIndex),\"spaces\":\(c.spaces),\"original_length\":\(c.originalLength),\"length\":\(c.ops.count),\"ops\":[\(ops)],\"message\":\"\(message)\",\"seconds\":\(seconds)}")
            } else {
                print("{\"format\":\"\(nested)\",\"seed\":\"\(hex(seedValue))\",\"bug\":\(bugField),\"cases_run\":\(run),\"found\":false,\"seconds\":\(seconds)}")
            }
        } else if let c = found {
            print("\(nested): counterexample in case \(c.caseIndex) (\(c.spaces) address space(s)), shrunk from \(c.originalLength) to \(c.ops.count) operations:")
            print("  \(c.message)\n")
            print(c.swiftTest)
        } else {
            print("\(nested) (\(nested.type.name)): no counterexample in \(run) cases (seed \(hex(seedValue))\(seeded.map { ", bug \($0.rawValue)" } ?? "")) in \(String(format: "%.1f", seconds)) s")
        }
        return found != nil
    }
}
