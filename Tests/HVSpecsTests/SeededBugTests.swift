import HVCore
import HVSpecs
import Testing

/// The checker has teeth: with each seeded bug switched on, the campaign
/// finds a counterexample and shrinks it to at most 10 operations.
@Suite("Seeded bugs are caught")
struct SeededBugTests {
    static let seed: UInt64 = 0x4856_4B49_5400_0001

    #if DEBUG
    /// Each bug on every format (the bugs live in the generic core, so each
    /// must show on each table layout).
    @Test(arguments: SeededBug.allCases, NestedFormat.campaign)
    func caught(_ bug: SeededBug, _ format: NestedFormat) {
        let (found, cases) = Campaign.hunt(cases: 3000, seed: Self.seed, bug: bug, format: format)
        guard let c = found else {
            Issue.record("\(bug.rawValue) (\(bug.summary)) was not caught on \(format) in \(cases) cases")
            return
        }
        print("seeded bug \(bug.rawValue) on \(format): caught in case \(c.caseIndex), counterexample of \(c.ops.count) operations (from \(c.originalLength))")
        #expect(c.ops.count <= 10, "\(bug.rawValue): counterexample of \(c.ops.count) operations:\n\(c.swiftTest)")
        // The shrunk case really fails with the bug and passes without it.
        #expect(Campaign.failure(of: c.ops, spaces: c.spaces, bug: bug, format: format) != nil)
        #expect(Campaign.failure(of: c.ops, spaces: c.spaces, bug: nil, format: format) == nil, "\(bug.rawValue) on \(format): the shrunk case fails without the bug too")
    }
    #else
    @Test func seededBugsNeedADebugBuild() {
        print("SKIPPED: seeded bugs exist only in debug builds; this release-build run cannot check the checker's teeth")
        #expect(!SeededBug.available)
    }
    #endif
}
