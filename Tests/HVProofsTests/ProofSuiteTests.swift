import Foundation
import HVCore
import HVProofs
import SMT
import Testing

@Suite("Theorems over the shipped kernels")
struct ProofSuiteTests {
    static let fast = ProofSuite.theorems(matching: nil).map(\.name)
    static func theorem(_ name: String) -> Theorem { ProofSuite.theorems(matching: nil).first { $0.name == name }! }

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
        // Every counterexample is replayed on UInt64 and must be real there.
        #expect(wrong.replay?.confirmed == true, "\(name): \(wrong.replay.map(String.init(describing:)) ?? "not replayed")")
        if t.mutatedVariant != nil {
            let mutated = t.check(.mutated, timeoutMilliseconds: Self.timeout)
            #expect(mutated.outcome == .refuted, "\(name) mutated variant (\(t.mutatedVariant!)): \(mutated.outcome)")
            #expect(mutated.replay?.kind == .computation && mutated.replay?.confirmed == true, "\(name): \(String(describing: mutated.replay))")
        }
    }

    /// Where the wrong variant weakens an assumption, a mutated computation
    /// under the shipped assumptions is refuted too.
    @Test(arguments: ["align_up_4k", "align_up_2m", "align_up_1g", "ept_leaf_roundtrip_l0", "ept_leaf_roundtrip_l1", "ept_leaf_roundtrip_l2"])
    func assumptionVariantsHaveAComputationMutant(_ name: String) {
        let t = Self.theorem(name)
        #expect(t.mutatedVariant != nil)
        #expect(t.check(.wrong, timeoutMilliseconds: Self.timeout).replay?.kind == .assumption)
    }

    /// A replay that does not show the variant misbehaving is not confirmed,
    /// and a refutation without a confirmed replay is not what a wrong
    /// variant must give.
    @Test func anUnconfirmedReplayFailsTheVariant() {
        let t = Theorem("flat", "x & 1 is at most 1", wrong: "claims x & 1 is 0, replayed against itself") { c, variant in
            let x = c.bitVector("x")
            let claim = variant == .shipped ? (x & c.number(1)).unsignedLessOrEqual(to: c.number(1)) : (x & c.number(1)).equals(c.number(0))
            return Query(inputs: [("x", x)], claim: claim) { model in .computation(shipped: model.value(x) & 1, wrong: model.value(x) & 1) }
        }
        let r = t.check(.wrong, timeoutMilliseconds: Self.timeout)
        #expect(r.outcome == .refuted)
        #expect(r.replay?.confirmed == false)
        #expect(!r.asExpected)
    }

    /// The frame bitmap's kernels are what FrameBitmap runs: the replay of
    /// the wrong take hands out a used frame on UInt64.
    @Test func wrongTakeHandsOutAUsedFrame() {
        let r = Self.theorem("bitmap_take_fresh").check(.wrong, timeoutMilliseconds: Self.timeout)
        let word = r.counterexample.first { $0.name == "word" }!.value
        let shipped = Kernels.bitmapTakeLowest(word)
        #expect(shipped.taken == 0 || word & shipped.taken == 0, "the shipped take hands out a free frame of \(hex(word))")
        #expect(word & (0 &- word) != 0 ? word & (word & (0 &- word)) != 0 : ~word != 0, "the wrong one a used frame, or nothing while one is free")
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

    /// The two upstream bugs, as wrong variants, give counterexamples that
    /// break the shipped kernels' answers when replayed concretely.
    @Test func upstreamStage2AndSv39x4BugsAreRealCounterexamples() {
        let s2 = Self.theorem("stage2_leaf_roundtrip_l0").check(.wrong, timeoutMilliseconds: Self.timeout)
        let flags = s2.counterexample.first { $0.name == "flags" }!.value, hpa = s2.counterexample.first { $0.name == "hpa" }!.value
        let swapped = Kernels.stage2EncodeLeaf(hpa: hpa, flags: flags, level: 0) & ~(Stage2Bits.s2apRead | Stage2Bits.s2apWrite)
            | (flags & 1) << 7 | (flags & 2) << 5
        #expect(Kernels.stage2LeafFlags(swapped) != flags, "flags \(hex(flags)) read back differently through swapped S2AP")
        #expect(Kernels.stage2LeafFlags(Kernels.stage2EncodeLeaf(hpa: hpa, flags: flags, level: 0)) == flags)

        let sv = Self.theorem("sv39x4_root_index").check(.wrong, timeoutMilliseconds: Self.timeout)
        let gpa = sv.counterexample.first { $0.name == "gpa" }!.value
        #expect(gpa < 1 << 41 && gpa >= 1 << 39, "the lost bits are 40:39: \(hex(gpa))")
        #expect(Kernels.tableIndex(gpa, level: 2) != Kernels.rootIndex(gpa, level: 2, rootBits: 11))
        #expect(Sv39x4Format.index(gpa, level: 2) == Int(gpa >> 30))
    }

    /// A lemma is assumed only after it is proved: a false one leaves the
    /// theorem unproved, even though assuming it would "prove" the claim.
    @Test func aFalseLemmaProvesNothing() {
        let bogus = Lemma("bogus", "every a is below every b", variables: ["a", "b"]) { _, v in ([], v[0].unsignedLess(than: v[1])) }
        let t = Theorem("uses_bogus", "a < b", wrong: "none") { c, _ in
            let a = c.bitVector("a"), b = c.bitVector("b")
            return Query(inputs: [("a", a), ("b", b)], claim: a.unsignedLess(than: b), lemmas: [LemmaUse(bogus, [a, b])])
        }
        let r = t.check(.shipped, timeoutMilliseconds: Self.timeout)
        #expect(r.outcome == .unknown("lemma bogus is false"))
        #expect(t.smtLib().contains("; lemma bogus: every a is below every b"))
    }

    /// A theorem whose assumptions contradict each other "proves" anything:
    /// it is reported vacuous, not proved, and a lemma likewise.
    @Test func contradictoryAssumptionsAreVacuousNotProved() {
        let t = Theorem("contradiction", "x < 1 and x > 5 imply anything", wrong: "none") { c, _ in
            let x = c.bitVector("x")
            return Query(inputs: [("x", x)], assumptions: [x.unsignedLess(than: c.number(1)), c.number(5).unsignedLess(than: x)], claim: x.equals(c.number(42)))
        }
        #expect(t.check(.shipped, timeoutMilliseconds: Self.timeout).outcome == .vacuous("the assumptions cannot hold together"))
        let impossible = Lemma("impossible", "from a contradiction", variables: ["a"]) { c, v in
            ([v[0].unsignedLess(than: c.number(0))], v[0].equals(c.number(7)))
        }
        let u = Theorem("uses_impossible", "a = a", wrong: "none") { c, _ in
            let a = c.bitVector("a")
            return Query(inputs: [("a", a)], claim: a.equals(a), lemmas: [LemmaUse(impossible, [a])])
        }
        #expect(u.check(.shipped, timeoutMilliseconds: Self.timeout).outcome == .vacuous("the assumptions of lemma impossible cannot hold together"))
    }

    @Test func aTinyTimeoutGivesUnknown() {
        let r = Self.theorem("range_contains_sound").check(.shipped, timeoutMilliseconds: 1)
        guard case .unknown = r.outcome else { Issue.record("expected unknown, got \(r.outcome)"); return }
    }

    /// Proofs/smt2 holds exactly the queries the code generates.
    @Test func exportedQueriesMatchTheCode() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Proofs/smt2")
        let all = ProofSuite.theorems(matching: nil)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".smt2") }
        #expect(Set(files) == Set(all.map { "\($0.name).smt2" }), "run: swift run hvkit prove --slow --skip-wrong --export-smt2 Proofs/smt2")
        for t in all {
            let committed = try String(contentsOf: dir.appendingPathComponent("\(t.name).smt2"), encoding: .utf8)
            #expect(committed == t.smtLib(.shipped), "\(t.name).smt2 is stale")
        }
    }
}
