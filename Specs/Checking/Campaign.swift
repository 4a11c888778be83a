import HVCore

/// A failing case, shrunk, in forms a person can use.
public struct Counterexample: Sendable {
    public let seed: UInt64
    public let caseIndex: Int
    public let spaces: Int
    public let bug: SeededBug?
    public let originalLength: Int
    public let ops: [SpecOp]
    public let message: String
    public var format: NestedFormat = .ept

    /// Swift Testing source that replays the case.
    public var swiftTest: String {
        let type = format == .ept ? "Lockstep" : "FormatLockstep<\(String(describing: format.type))>"
        let create = bug.map { "try \(type)(spaces: \(spaces), seededBug: .\($0.rawValue))" } ?? "try \(type)(spaces: \(spaces))"
        return """
        // hvkit hunt --format \(format) --seed \(hex(seed)) finds this in case \(caseIndex); shrunk from \(originalLength) to \(ops.count) operations.
        @Test func counterexample() throws {
            let run = \(create)
            let ops: [SpecOp] = [
        \(ops.map { "        \($0)," }.joined(separator: "\n"))
            ]
            for op in ops {
                let failure = run.apply(op)
                #expect(failure == nil, "\\(op): \\(failure ?? "")")
                if failure != nil { return }
            }
            #expect(run.finish() == nil)
        }
        """
    }
}

/// The model-based campaign: random cases, lockstep runs, shrinking.
public enum Campaign {
    /// The seed of case `i` of a campaign seeded with `seed`.
    public static func caseSeed(_ seed: UInt64, _ i: Int) -> UInt64 {
        var r = CheckerRandom(seed: seed ^ (UInt64(i) &* 0xD6E8_FEB8_6659_FD93))
        return r.next()
    }

    /// The operations of case `i`: 1-3 spaces, `4...maxLength` operations.
    public static func generate(seed: UInt64, case i: Int, maxLength: Int) -> (spaces: Int, ops: [SpecOp]) {
        let s = caseSeed(seed, i)
        let spaces = 1 + Int(s % 3)
        let length = 4 + Int((s >> 8) % UInt64(max(1, maxLength - 3)))
        var generator = OpGenerator(spaces: spaces, seed: s)
        return (spaces, generator.sequence(length: length))
    }

    struct Runner: NestedFormatVisitor {
        let ops: [SpecOp], spaces: Int, bug: SeededBug?
        func visit<F: PageTableFormat>(_ format: F.Type) -> String? { Campaign.failure(of: ops, spaces: spaces, bug: bug, on: F.self) }
    }

    /// Runs one case; nil when implementation and model agree throughout.
    public static func failure(of ops: [SpecOp], spaces: Int, bug: SeededBug?, format: NestedFormat = .ept) -> String? {
        format.accept(Runner(ops: ops, spaces: spaces, bug: bug))
    }

    static func failure<F: PageTableFormat>(of ops: [SpecOp], spaces: Int, bug: SeededBug?, on _: F.Type) -> String? {
        do {
            let run = try FormatLockstep<F>(spaces: spaces, seededBug: bug)
            for (i, op) in ops.enumerated() {
                if let p = run.apply(op) { return "step \(i + 1) \(op):\n  \(p)" }
            }
            return run.finish().map { "at teardown: \($0)" }
        } catch {
            return "set-up failed: \(error)"
        }
    }

    /// Delta debugging over the operation list: drop chunks, halving their
    /// size, for as long as the case still fails.
    public static func shrink(_ ops: [SpecOp], spaces: Int, bug: SeededBug?, format: NestedFormat = .ept) -> (ops: [SpecOp], message: String) {
        var current = ops
        var message = failure(of: ops, spaces: spaces, bug: bug, format: format) ?? ""
        var chunk = max(1, current.count / 2)
        while chunk >= 1 {
            var progress = false
            var start = 0
            while start < current.count {
                var candidate = current
                candidate.removeSubrange(start..<min(current.count, start + chunk))
                if !candidate.isEmpty, let m = failure(of: candidate, spaces: spaces, bug: bug, format: format) {
                    current = candidate
                    message = m
                    progress = true
                } else {
                    start += chunk
                }
            }
            if !progress { chunk /= 2 }
        }
        return (current, message)
    }

    /// Runs cases `0..<cases` until one fails; returns its shrunk form.
    public static func hunt(cases: Int, seed: UInt64, bug: SeededBug? = nil, maxLength: Int = 24, format: NestedFormat = .ept,
                            progress: ((Int) -> Void)? = nil) -> (found: Counterexample?, casesRun: Int) {
        for i in 0..<cases {
            progress?(i)
            let (spaces, ops) = generate(seed: seed, case: i, maxLength: maxLength)
            guard failure(of: ops, spaces: spaces, bug: bug, format: format) != nil else { continue }
            var (shrunk, message) = shrink(ops, spaces: spaces, bug: bug, format: format)
            // Fewer address spaces when the shrunk case uses fewer.
            var used = (shrunk.compactMap(\.space).max() ?? 0) + 1
            if used < spaces, let m = failure(of: shrunk, spaces: used, bug: bug, format: format) { message = m } else { used = spaces }
            var found = Counterexample(seed: seed, caseIndex: i, spaces: used, bug: bug, originalLength: ops.count, ops: shrunk, message: message)
            found.format = format
            return (found, i + 1)
        }
        return (nil, cases)
    }
}
