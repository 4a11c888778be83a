import HVCore
import SMT

/// Which form of a theorem to check: the one about the shipped kernel, or
/// a deliberately wrong one beside it, which Z3 must refute. `wrong` is
/// every theorem's; `mutated`, where a theorem has one, changes the
/// kernel's computation and keeps the shipped assumptions (for theorems
/// whose `wrong` weakens an assumption instead), so its refutation shows
/// the shipped assumptions leave room for a counterexample.
public enum Variant: String, Sendable, CaseIterable {
    case shipped, wrong, mutated
}

/// One query: what is assumed, what is claimed, and the inputs a
/// counterexample is reported in.
public struct Query {
    public var inputs: [(name: String, value: SymBV)]
    public var assumptions: [SymBool]
    public var claim: SymBool
    /// Optional case split: the claim is checked once under each case (the
    /// cases must cover every input; each is a smaller query for Z3).
    public var cases: [SymBool]
    /// Lemmas proved on their own first, then assumed as instances over
    /// this query's terms (see `Lemma`).
    public var lemmas: [LemmaUse]
    /// Optional claim split: the claim is the conjunction of these parts,
    /// and each is checked on its own (under each case), a smaller query
    /// for Z3 than the whole conjunction.
    public var claimParts: [SymBool]
    /// Runs the counterexample concretely: given the model Z3 refuted the
    /// query with, evaluates the shipped code and the variant's on `UInt64`
    /// (see `Replay`).
    public var replay: ((SMTModel) -> Replay)?

    public init(inputs: [(name: String, value: SymBV)], assumptions: [SymBool] = [], claim: SymBool, cases: [SymBool] = [],
                lemmas: [LemmaUse] = [], replay: ((SMTModel) -> Replay)? = nil) {
        self.inputs = inputs
        self.assumptions = assumptions
        self.claim = claim
        claimParts = []
        self.cases = cases
        self.lemmas = lemmas
        self.replay = replay
    }

    /// A claim that is the conjunction of `claims`, each proved on its own.
    public init(inputs: [(name: String, value: SymBV)], assumptions: [SymBool] = [], claims: [SymBool], cases: [SymBool] = [],
                lemmas: [LemmaUse] = [], replay: ((SMTModel) -> Replay)? = nil) {
        precondition(!claims.isEmpty, "a split claim needs at least one part")
        self.init(inputs: inputs, assumptions: assumptions, claim: claims.dropFirst().reduce(claims[0]) { $0.and($1) }, cases: cases,
                  lemmas: lemmas, replay: replay)
        claimParts = claims
    }

    /// The assumptions with each lemma instance added.
    func allAssumptions(_ c: SMTContext) -> [SymBool] {
        assumptions + lemmas.map { $0.lemma.instance(c, $0.terms) }
    }

    /// What each proof query negates: the parts of the claim, or the whole.
    var goals: [SymBool] { claimParts.isEmpty ? [claim] : claimParts }

    /// Each lemma once, in first-use order.
    var distinctLemmas: [Lemma] {
        var seen = Set<String>()
        return lemmas.map(\.lemma).filter { seen.insert($0.name).inserted }
    }
}

/// A named property of a shipped kernel, stated as "no input violates it".
public struct Theorem: Sendable {
    public let name: String
    public let statement: String
    /// What the wrong variant changes.
    public let wrongVariant: String
    /// What the mutated variant changes in the computation, if there is one.
    public let mutatedVariant: String?
    /// The SMT-LIB logic the query lives in (QF_BV, or QF_ABV with arrays).
    public let logic: String
    let build: @Sendable (SMTContext, Variant) -> Query

    public init(_ name: String, _ statement: String, wrong: String, mutated: String? = nil, logic: String = "QF_BV",
                _ build: @escaping @Sendable (SMTContext, Variant) -> Query) {
        self.name = name
        self.statement = statement
        wrongVariant = wrong
        mutatedVariant = mutated
        self.logic = logic
        self.build = build
    }
}

public struct TheoremResult: Sendable {
    /// `vacuous`: the claim holds only because the assumptions cannot all
    /// hold together (or a lemma's cannot): a theorem that proves nothing.
    public enum Outcome: Equatable, Sendable { case proved, refuted, unknown(String), vacuous(String) }
    public let theorem: String
    public let variant: Variant
    public let outcome: Outcome
    /// The violating input, in the theorem's own terms, when refuted.
    public let counterexample: [(name: String, value: UInt64)]
    /// The counterexample run concretely on `UInt64`, when refuted.
    public let replay: Replay?
    public let seconds: Double

    /// Shipped theorems must be proved; wrong variants refuted, with a
    /// counterexample that replays concretely.
    public var asExpected: Bool {
        switch variant {
        case .shipped: outcome == .proved
        case .wrong, .mutated: outcome == .refuted && replay?.confirmed == true
        }
    }
}

extension Theorem {
    /// The SMT-LIB 2 text of the shipped (or wrong) query, without solving
    /// it: what `Proofs/smt2/` holds.
    public func smtLib(_ variant: Variant = .shipped) -> String {
        let context = SMTContext()
        return context.with {
            let query = build(context, variant)
            let cases = query.cases.isEmpty ? [context.truth(true)] : query.cases
            var text = ""
            for lemma in query.distinctLemmas {
                let solver = SMTSolver(context, logic: logic)
                let (assertions, negated) = lemma.freshQuery(context)
                for a in assertions { solver.assert(a) }
                solver.assert(negated)
                text += "; lemma \(lemma.name): \(lemma.statement)\n" + solver.smtLib()
            }
            if !query.lemmas.isEmpty { text += "; the theorem, with the lemmas' instances assumed\n" }
            let goals = query.goals
            for (i, caseCondition) in cases.enumerated() {
                for (j, goal) in goals.enumerated() {
                    let solver = SMTSolver(context, logic: logic)
                    for a in query.allAssumptions(context) { solver.assert(a) }
                    solver.assert(caseCondition)
                    solver.assert(goal.negated)
                    text += (cases.count > 1 ? "; case \(i + 1) of \(cases.count)\n" : "")
                        + (goals.count > 1 ? "; part \(j + 1) of \(goals.count) of the claim\n" : "") + solver.smtLib()
                }
            }
            return "; \(name): \(statement)\n; unsat means proved. Generated by `hvkit prove --export-smt2`.\n" + text
        }
    }

    /// Asserts the assumptions and the negated claim; unsat means proved.
    public func check(_ variant: Variant, timeoutMilliseconds: UInt32 = 2000) -> TheoremResult {
        precondition(variant != .mutated || mutatedVariant != nil, "\(name) has no mutated variant")
        let clock = ContinuousClock()
        let start = clock.now
        let context = SMTContext()
        return context.with {
            let query = build(context, variant)
            let cases = query.cases.isEmpty ? [context.truth(true)] : query.cases
            // The cases must cover every input: their disjunction is itself checked.
            var coverage: SymBool?
            if !query.cases.isEmpty { coverage = query.cases.dropFirst().reduce(query.cases[0]) { $0.or($1) } }
            var outcome: TheoremResult.Outcome = .proved
            var counterexample: [(name: String, value: UInt64)] = []
            var replay: Replay?
            // A lemma that is not proved proves nothing: stop there.
            for lemma in query.distinctLemmas {
                let solver = SMTSolver(context, timeoutMilliseconds: timeoutMilliseconds, logic: logic)
                let (assertions, negated) = lemma.freshQuery(context)
                for a in assertions { solver.assert(a) }
                solver.assert(negated)
                switch solver.check() {
                case .proved: continue
                case .counterexample: outcome = .unknown("lemma \(lemma.name) is false")
                case let .unknown(reason): outcome = .unknown("lemma \(lemma.name): \(reason)")
                }
                break
            }
            let pairs = cases.flatMap { caseCondition in query.goals.map { (caseCondition, $0) } }
            for (caseCondition, goal) in pairs where outcome == .proved {
                let solver = SMTSolver(context, timeoutMilliseconds: timeoutMilliseconds, logic: logic)
                for a in query.allAssumptions(context) { solver.assert(a) }
                solver.assert(caseCondition)
                solver.assert(goal.negated)
                switch solver.check() {
                case .proved: continue
                case let .counterexample(model):
                    outcome = .refuted
                    counterexample = query.inputs.map { ($0.name, model.value($0.value)) }
                    replay = query.replay?(model)
                case let .unknown(reason):
                    outcome = .unknown(reason)
                }
                break
            }
            // A proof counts only where its assumptions can hold: each case's
            // assumptions (lemma instances included) and each lemma's own.
            if outcome == .proved {
                for (i, caseCondition) in cases.enumerated() {
                    let solver = SMTSolver(context, timeoutMilliseconds: timeoutMilliseconds, logic: logic)
                    for a in query.allAssumptions(context) { solver.assert(a) }
                    solver.assert(caseCondition)
                    switch solver.check() {
                    case .counterexample: continue   // satisfiable
                    case .proved: outcome = .vacuous(cases.count > 1 ? "the assumptions of case \(i + 1) cannot hold together" : "the assumptions cannot hold together")
                    case let .unknown(reason): outcome = .unknown("satisfiability of the assumptions: \(reason)")
                    }
                    break
                }
                for lemma in query.distinctLemmas where outcome == .proved {
                    let solver = SMTSolver(context, timeoutMilliseconds: timeoutMilliseconds, logic: logic)
                    for a in lemma.freshQuery(context).0 { solver.assert(a) }
                    if case .proved = solver.check() { outcome = .vacuous("the assumptions of lemma \(lemma.name) cannot hold together") }
                }
            }
            if outcome == .proved, let coverage {
                let solver = SMTSolver(context, timeoutMilliseconds: timeoutMilliseconds, logic: logic)
                solver.assert(coverage.negated)
                if case .counterexample = solver.check() { outcome = .unknown("the case split does not cover every input") }
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return TheoremResult(theorem: name, variant: variant, outcome: outcome, counterexample: counterexample, replay: replay,
                                 seconds: seconds)
        }
    }
}

// Small helpers the theorems share.
extension SMTContext {
    func bv(_ name: String) -> SymBV { bitVector(name) }
    func c(_ value: UInt64) -> SymBV { number(value) }
}
