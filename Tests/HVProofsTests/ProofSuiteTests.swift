import Foundation
import HVCore
import HVProofs
import SMT
import Testing

@Suite("Theorems over the shipped kernels")
struct ProofSuiteTests {
    static let fast = ProofSuite.theorems(matching: nil).map(\.name)
    static let slow = ProofSuite.theorems(matching: nil, includeSlow: true).filter(\.slow).map(\.name)
    static func theorem(_ name: String) -> Theorem { ProofSuite.theorems(matching: nil, includeSlow: true).first { $0.name == name }! }

    /// Speed is `hvkit prove`'s business (it prints every time); here a
    /// generous time-out keeps a busy CI machine from turning a proof into
    /// "unknown".
    static let timeout: UInt32 = 60_000

    @Test(arguments: fast)
    func shippedIsProvedAndWrongIsRefuted(_ name: String) {
        let t = Self.theorem(name)
        let shipped = t.check(.shipped, timeoutMilliseconds: Self.timeout)
        #expect(shipped.outcome == .proved, "\(name): \(shipped.outcome) \(shipped.counterexample)")
        let wrong = t.check(.wrong, timeoutMilliseconds: Self.timeout)
        #expect(wrong.outcome == .refuted, "\(name) wrong variant (\(t.wrongVariant)): \(wrong.outcome)")
        #expect(!wrong.counterexample.isEmpty)
    }

    /// Range containment needs tens of seconds per query; it runs here all
    /// the same, since a skipped proof proves nothing.
    @Test(arguments: slow)
    func slowTheoremIsProved(_ name: String) {
        let t = Self.theorem(name)
        let shipped = t.check(.shipped, timeoutMilliseconds: 300_000)
        print("slow theorem \(name): \(shipped.outcome) in \(String(format: "%.1f", shipped.seconds)) s")
        #expect(shipped.outcome == .proved, "\(name): \(shipped.outcome)")
        #expect(t.check(.wrong, timeoutMilliseconds: 300_000).outcome == .refuted)
    }

    @Test func alignUpWithoutPreconditionIsRefutedByOverflow() {
        let r = Self.theorem("align_up_4k").check(.wrong, timeoutMilliseconds: Self.timeout)
        let x = r.counterexample.first { $0.name == "x" }!.value
        #expect(x > UInt64.max - 0xFFF, "counterexample x = \(hex(x)) is an overflow input")
        #expect(!Kernels.alignUp(x, mask: UInt64(0xFFF)).fits, "and the shipped kernel reports it")
    }

    @Test func offByOneIndexCounterexampleIsReal() {
        let r = Self.theorem("ept_index_recombine").check(.wrong, timeoutMilliseconds: Self.timeout)
        let gpa = r.counterexample.first { $0.name == "gpa" }!.value
        #expect(gpa < 1 << 48)
        let wrong = (0..<4).map { (gpa >> UInt64(13 + 9 * $0)) & 0x1FF }
        #expect(Kernels.recombine(wrong[3], wrong[2], wrong[1], wrong[0], offset: gpa & 0xFFF) != gpa)
    }

    @Test func aTinyTimeoutGivesUnknown() {
        let r = Self.theorem("range_contains_sound").check(.shipped, timeoutMilliseconds: 20)
        guard case .unknown = r.outcome else { Issue.record("expected unknown, got \(r.outcome)"); return }
    }

    /// Proofs/smt2 holds exactly the queries the code generates.
    @Test func exportedQueriesMatchTheCode() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Proofs/smt2")
        let all = ProofSuite.theorems(matching: nil, includeSlow: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".smt2") }
        #expect(Set(files) == Set(all.map { "\($0.name).smt2" }), "run: swift run hvkit prove --slow --skip-wrong --export-smt2 Proofs/smt2")
        for t in all {
            let committed = try String(contentsOf: dir.appendingPathComponent("\(t.name).smt2"), encoding: .utf8)
            #expect(committed == t.smtLib(.shipped), "\(t.name).smt2 is stale")
        }
    }
}
