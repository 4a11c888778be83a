import ArgumentParser
import Foundation
import HVCore
import HVProofs
import SMT

/// Runs the Z3 theorem suite over the shipped kernels.
struct ProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Prove the bit-level kernels with Z3 (and check that each wrong variant is refuted).",
        discussion: "Exits 1 if a theorem is refuted or unknown, or a wrong variant is not refuted."
    )

    @Option(help: "Only theorems whose name contains this.")
    var filter: String?

    @Flag(help: "Print one JSON object per theorem.")
    var json = false

    @Option(help: "Write each shipped theorem's query as DIR/NAME.smt2.")
    var exportSmt2: String?

    @Option(help: "Per-query time-out in milliseconds.")
    var timeout: UInt32 = 2000

    @Flag(help: "Skip the wrong variants.")
    var skipWrong = false

    @Option(help: "Theorems checked at once, each in its own Z3 context (default: one per processor).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        let theorems = ProofSuite.theorems(matching: filter)
        guard !theorems.isEmpty else { throw ValidationError("no theorem matches '\(filter ?? "")'") }
        if let dir = exportSmt2 { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        // Each theorem builds and frees a Z3 context; without this, glibc
        // hands the memory back to the kernel and faults it in again, which
        // cost a third of the suite's time (sys 8.6 s of 13 s on 2 cores).
        SMTContext.keepFreedMemory()
        var failures = 0
        var total = 0.0
        let clock = ContinuousClock()
        let start = clock.now
        let results = ParallelChecks(theorems, jobs: jobs, skipWrong: skipWrong, timeout: timeout)
        for (i, theorem) in theorems.enumerated() {
            let (shipped, wrong, mutated) = results.result(i)
            total += shipped.seconds + (wrong?.seconds ?? 0) + (mutated?.seconds ?? 0)
            let ok = shipped.asExpected && (wrong?.asExpected ?? true) && (mutated?.asExpected ?? true)
            if !ok { failures += 1 }
            if let dir = exportSmt2 {
                try theorem.smtLib(.shipped).write(toFile: "\(dir)/\(theorem.name).smt2", atomically: true, encoding: .utf8)
            }
            if json {
                print(jsonLine(theorem, shipped, wrong, mutated))
            } else {
                let mark = ok ? "ok  " : "FAIL"
                print("[\(i + 1)/\(theorems.count)] \(mark) \(theorem.name): \(describe(shipped)) in \(ms(shipped.seconds))"
                    + (wrong.map { "; wrong variant \(describe($0)) in \(ms($0.seconds))" } ?? "")
                    + (mutated.map { "; mutated variant \(describe($0)) in \(ms($0.seconds))" } ?? ""))
                if shipped.outcome != .proved {
                    print("      claim: \(theorem.statement)")
                    print("      counterexample: \(values(shipped))")
                }
                if let wrong, !wrong.asExpected {
                    print("      the wrong variant (\(theorem.wrongVariant)) was not refuted")
                } else if let wrong, !wrong.counterexample.isEmpty, filter != nil {
                    print("      wrong variant (\(theorem.wrongVariant)) refuted by \(values(wrong))" + (wrong.replay.map { "; replayed: \($0)" } ?? ""))
                }
                if let mutated, !mutated.asExpected {
                    print("      the mutated variant (\(theorem.mutatedVariant ?? "")) was not refuted")
                } else if let mutated, filter != nil {
                    print("      mutated variant (\(theorem.mutatedVariant ?? "")) refuted by \(values(mutated))" + (mutated.replay.map { "; replayed: \($0)" } ?? ""))
                }
                for r in [wrong, mutated].compactMap({ $0 }) where r.replay?.confirmed == false {
                    print("      the \(r.variant.rawValue) variant's counterexample did not replay: \(r.replay!)")
                }
            }
        }
        if !json {
            let wall = clock.now - start
            let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
            print("\(theorems.count - failures)/\(theorems.count) theorems proved\(skipWrong ? "" : " with their wrong variants refuted")"
                + " in \(ms(wallSeconds)) (\(ms(total)) of solving over \(min(jobs, theorems.count)) job\(jobs == 1 ? "" : "s"))")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    private func describe(_ r: TheoremResult) -> String {
        switch r.outcome {
        case .proved: "proved"
        case .refuted: "refuted"
        case let .unknown(reason): "unknown (\(reason))"
        case let .vacuous(reason): "vacuous (\(reason))"
        }
    }

    private func values(_ r: TheoremResult) -> String {
        r.counterexample.map { "\($0.name) = \(hex($0.value))" }.joined(separator: ", ")
    }

    private func ms(_ s: Double) -> String { String(format: "%.0f ms", s * 1000) }

    private func jsonLine(_ t: Theorem, _ shipped: TheoremResult, _ wrong: TheoremResult?, _ mutated: TheoremResult?) -> String {
        func outcome(_ r: TheoremResult) -> String {
            let cex = r.counterexample.map { "\"\($0.name)\":\"\(hex($0.value))\"" }.joined(separator: ",")
            // A refutation's counterexample satisfies the assumptions; a proof was checked for it.
            let assumptions: String = switch r.outcome {
            case .proved, .refuted: "satisfiable"
            case .vacuous: "unsatisfiable"
            case .unknown: "unknown"
            }
            let replay = r.replay.map { ",\"replay\":{\"kind\":\"\($0.kind.rawValue)\",\"confirmed\":\($0.confirmed)}" } ?? ""
            return "{\"outcome\":\"\(describe(r))\",\"assumptions\":\"\(assumptions)\",\"seconds\":\(String(format: "%.4f", r.seconds)),\"counterexample\":{\(cex)}\(replay)}"
        }
        return "{\"theorem\":\"\(t.name)\",\"shipped\":\(outcome(shipped)),\"wrong\":\(wrong.map(outcome) ?? "null"),\"mutated\":\(mutated.map(outcome) ?? "null")}"
    }
}

/// Checks theorems on `jobs` threads, each theorem in its own Z3 context
/// (a context is not thread-safe; separate ones are independent), and
/// hands the results back in suite order as they complete, so progress
/// output stays ordered.
final class ParallelChecks: @unchecked Sendable {
    typealias Pair = (shipped: TheoremResult, wrong: TheoremResult?, mutated: TheoremResult?)
    private let condition = NSCondition()
    private var results: [Pair?]
    private var next = 0

    init(_ theorems: [Theorem], jobs: Int, skipWrong: Bool, timeout: UInt32) {
        results = Array(repeating: nil, count: theorems.count)
        for _ in 0..<min(jobs, theorems.count) {
            let thread = Thread { [self] in
                while let i = take(theorems.count) {
                    let shipped = theorems[i].check(.shipped, timeoutMilliseconds: timeout)
                    let wrong = skipWrong ? nil : theorems[i].check(.wrong, timeoutMilliseconds: timeout)
                    let mutated = skipWrong || theorems[i].mutatedVariant == nil ? nil : theorems[i].check(.mutated, timeoutMilliseconds: timeout)
                    condition.lock()
                    results[i] = (shipped, wrong, mutated)
                    condition.broadcast()
                    condition.unlock()
                }
            }
            // Z3's bit-blasting recurses deeply; give it room.
            thread.stackSize = 64 << 20
            thread.start()
        }
    }

    private func take(_ count: Int) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    /// Waits for theorem `i`'s results.
    func result(_ i: Int) -> Pair {
        condition.lock()
        defer { condition.unlock() }
        while results[i] == nil { condition.wait() }
        return results[i]!
    }
}
