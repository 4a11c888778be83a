/// A wrong variant's counterexample run on the concrete domain: the model's
/// inputs (and table words) fed to the shipped code and to the variant's,
/// both on `UInt64`. It confirms that the symbolic refutation is a real
/// input where the code misbehaves, not an artefact of the encoding.
public struct Replay: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The variant mutates the computation: the two answers must differ.
        case computation
        /// The variant weakens an assumption: the shipped assumptions must
        /// be false at the counterexample and the claim false there too.
        case assumption
        /// The variant mutates the claim: the shipped claim must hold there
        /// and the mutated one fail.
        case claim
    }

    public let kind: Kind
    /// The shipped code's answer (or, for `assumption`, whether the shipped
    /// assumptions hold; for `claim`, whether the shipped claim holds).
    public let shipped: String
    public let variant: String
    /// True when the replay shows what the kind requires.
    public let confirmed: Bool

    /// The shipped and mutated computations' answers, which must differ.
    public static func computation<T: Equatable>(shipped: T, wrong: T) -> Replay {
        Replay(kind: .computation, shipped: "\(shipped)", variant: "\(wrong)", confirmed: shipped != wrong)
    }

    /// The counterexample lies outside the shipped assumptions, and the
    /// claim fails there concretely.
    public static func assumption(shippedAssumptionsHold: Bool, claimHolds: Bool) -> Replay {
        Replay(kind: .assumption, shipped: "assumptions hold: \(shippedAssumptionsHold)", variant: "claim holds: \(claimHolds)",
               confirmed: !shippedAssumptionsHold && !claimHolds)
    }

    /// The shipped claim holds at the counterexample; the mutated one fails.
    public static func claim(shippedHolds: Bool, wrongHolds: Bool) -> Replay {
        Replay(kind: .claim, shipped: "shipped claim holds: \(shippedHolds)", variant: "mutated claim holds: \(wrongHolds)",
               confirmed: shippedHolds && !wrongHolds)
    }

    public var description: String { "\(kind.rawValue): shipped \(shipped), variant \(variant)\(confirmed ? "" : " (NOT confirmed)")" }
}
