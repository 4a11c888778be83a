import Glibc
import HVCore
import HVTarget

/// `hvkit bench hunt`: the target-protocol campaign against `hvkit serve`
/// (this executable), a fresh process per case as `hunt --target` runs it,
/// and against the static `hvkit-serve` beside it (lines suffixed
/// `_static`) when it was built: the same server without this binary's
/// shared libraries to load at every start.
struct HuntBenchmark {
    static let cases = 100

    /// The static server next to this executable, if there is one.
    static var staticServer: String? {
        let own = ownExecutable()
        guard let slash = own.lastIndex(of: "/") else { return nil }
        let path = String(own[...slash]) + "hvkit-serve"
        return access(path, X_OK) == 0 ? path : nil
    }

    func pass(into figures: inout Figures, record: Bool) throws {
        try pass(command: "\(ownExecutable()) serve", suffix: "", into: &figures, record: record)
        if let server = Self.staticServer { try pass(command: server, suffix: "_static", into: &figures, record: record) }
    }

    func pass(command: String, suffix: String, into figures: inout Figures, record: Bool) throws {
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        var hunt = TargetHunt(command: command, format: .ept, timeoutMs: 10_000)
        let start = clock.now
        let (found, run) = hunt.hunt(cases: Self.cases, seed: 0x4856_4b49_5400_0001, maxLength: 24)
        let elapsed = seconds(clock.now - start)
        precondition(found == nil && run == Self.cases, "\(command) disagreed with the model: \(found.map { "\($0.finding)" } ?? "")")
        // The share of a case that is starting and ending the process.
        let spawnStart = clock.now
        for _ in 0..<20 {
            let r = try TargetRun(command: command, format: .ept, spaces: 1, timeoutMs: 10_000)
            precondition(r.start() == nil)
            r.stop()
        }
        let spawn = seconds(clock.now - spawnStart) / 20
        guard record else { return }
        figures.record("hunt_requests_per_s" + suffix, "requests/s", Double(hunt.requests) / elapsed)
        figures.record("hunt_model_operations_per_s" + suffix, "ops/s", Double(hunt.operations) / elapsed)
        figures.record("hunt_case_ms" + suffix, "ms", elapsed * 1000 / Double(Self.cases))
        figures.record("hunt_process_start_stop_ms" + suffix, "ms", spawn * 1000)
        figures.record("hunt_requests_per_case" + suffix, "requests", Double(hunt.requests) / Double(Self.cases))
    }
}
