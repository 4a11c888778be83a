import SMT

/// A bit-vector fact proved once over fresh variables and then used, as an
/// instance over a theorem's own terms, as an assumption of that theorem.
///
/// Sound because a formula valid for all inputs stays valid when its
/// variables are replaced by any terms. It helps because Z3 proves a small
/// fact over plain variables in well under a second, but can take tens of
/// seconds to find the same fact inside a query where each variable is a
/// chain of subtractions.
public struct Lemma: Sendable {
    public let name: String
    public let statement: String
    /// Names of the lemma's variables (all 64-bit).
    public let variables: [String]
    let body: @Sendable (SMTContext, [SymBV]) -> (premises: [SymBool], conclusion: SymBool)

    public init(_ name: String, _ statement: String, variables: [String],
                _ body: @escaping @Sendable (SMTContext, [SymBV]) -> (premises: [SymBool], conclusion: SymBool)) {
        self.name = name
        self.statement = statement
        self.variables = variables
        self.body = body
    }

    /// The lemma over fresh variables: premises asserted, conclusion negated
    /// (unsat means proved).
    func freshQuery(_ c: SMTContext) -> (assertions: [SymBool], negatedConclusion: SymBool) {
        let (premises, conclusion) = body(c, variables.map { c.bitVector("\(name).\($0)") })
        return (premises, conclusion.negated)
    }

    /// premises(terms) implies conclusion(terms).
    func instance(_ c: SMTContext, _ terms: [SymBV]) -> SymBool {
        precondition(terms.count == variables.count, "lemma \(name) takes \(variables.count) terms")
        let (premises, conclusion) = body(c, terms)
        return premises.reduce(c.truth(true)) { $0.and($1) }.negated.or(conclusion)
    }
}

/// A lemma used by a query, with the terms that replace its variables.
public struct LemmaUse {
    public let lemma: Lemma
    public let terms: [SymBV]
    public init(_ lemma: Lemma, _ terms: [SymBV]) {
        self.lemma = lemma
        self.terms = terms
    }
}
