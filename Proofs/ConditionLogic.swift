import HVCore

/// Implication and equivalence in any kernel domain, so a theorem's claim
/// can be written once, generic over the domain, and evaluated both
/// symbolically (the query) and on `UInt64` (the counterexample's replay).
extension BitVectorCondition {
    func implies(_ other: Self) -> Self { negated.or(other) }
    func iff(_ other: Self) -> Self { and(other).or(negated.and(other.negated)) }
}

/// The conjunction of one or more conditions, in any domain.
func allOf<C: BitVectorCondition>(_ conditions: C...) -> C {
    conjunction(conditions)
}

func conjunction<C: BitVectorCondition>(_ conditions: [C]) -> C {
    guard let first = conditions.first else { return .constant(true) }
    return conditions.dropFirst().reduce(first) { $0.and($1) }
}
