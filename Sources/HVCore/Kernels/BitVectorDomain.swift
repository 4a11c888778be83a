/// A truth value in some domain: a plain `Bool` when kernels run on concrete
/// numbers, a symbolic formula when the same kernels run inside a proof.
public protocol BitVectorCondition {
    static func constant(_ value: Bool) -> Self
    func and(_ other: Self) -> Self
    func or(_ other: Self) -> Self
    var negated: Self { get }
    /// True only when the condition is known to be false without solving:
    /// always exact for `Bool`; a symbolic condition may answer false for a
    /// condition that is in fact unsatisfiable. Lets a kernel's loop stop
    /// early in the concrete domain and carry on, guarded, in the symbolic.
    var isCertainlyFalse: Bool { get }
}

/// The 64-bit operations HVKit's bit-level kernels are written in.
///
/// Every kernel is written once, generic over this protocol. `UInt64` is the
/// concrete conformance the core ships with; a symbolic Z3 bit-vector is the
/// other one, so a proof evaluates the very function that runs in production.
/// Kernels never branch on a value: they use `select`, which both domains can
/// evaluate. Shift amounts are constants, so they are plain `Int`s.
public protocol BitVectorDomain {
    associatedtype Condition: BitVectorCondition

    static func constant(_ value: UInt64) -> Self

    static func & (lhs: Self, rhs: Self) -> Self
    static func | (lhs: Self, rhs: Self) -> Self
    static func ^ (lhs: Self, rhs: Self) -> Self
    static prefix func ~ (operand: Self) -> Self
    /// Wrapping addition and subtraction modulo 2^64.
    static func &+ (lhs: Self, rhs: Self) -> Self
    static func &- (lhs: Self, rhs: Self) -> Self

    /// Logical shifts by a constant amount in 0..<64.
    func shiftedLeft(by amount: Int) -> Self
    func shiftedRight(by amount: Int) -> Self
    /// Logical shifts by an amount that is data (a bit position), taken
    /// modulo 64 in both domains, as `UInt64`'s `&<<` does; the kernels
    /// that use them keep the amount below 64 (and the proofs say so).
    func shiftedLeft(byAmount amount: Self) -> Self
    func shiftedRight(byAmount amount: Self) -> Self

    func equals(_ other: Self) -> Condition
    /// Unsigned `<` and `<=`.
    func unsignedLess(than other: Self) -> Condition
    func unsignedLessOrEqual(to other: Self) -> Condition

    /// `condition ? a : b`, evaluated without branching in the symbolic domain.
    static func select(_ condition: Condition, _ a: Self, _ b: Self) -> Self
}

extension BitVectorDomain {
    @inlinable public var isZero: Condition { equals(.constant(0)) }
    @inlinable public var isNonZero: Condition { equals(.constant(0)).negated }
}

extension Bool: BitVectorCondition {
    @inlinable public static func constant(_ value: Bool) -> Bool { value }
    @inlinable public func and(_ other: Bool) -> Bool { self && other }
    @inlinable public func or(_ other: Bool) -> Bool { self || other }
    @inlinable public var negated: Bool { !self }
    @inlinable public var isCertainlyFalse: Bool { !self }
}

extension UInt64: BitVectorDomain {
    public typealias Condition = Bool

    @inlinable public static func constant(_ value: UInt64) -> UInt64 { value }
    // `&<<` masks the amount to 6 bits while Z3's bvshl shifts everything
    // out: the two domains agree only below 64, so a kernel asking for more
    // traps (in debug builds, which run the property tests; the symbolic
    // conformance checks it always, so every proof does too).
    @inlinable public func shiftedLeft(by amount: Int) -> UInt64 {
        assert((0..<64).contains(amount), "shift by \(amount): the domains agree only for 0..<64")
        return self &<< UInt64(amount)
    }
    @inlinable public func shiftedRight(by amount: Int) -> UInt64 {
        assert((0..<64).contains(amount), "shift by \(amount): the domains agree only for 0..<64")
        return self &>> UInt64(amount)
    }
    @inlinable public func shiftedLeft(byAmount amount: UInt64) -> UInt64 { self &<< amount }
    @inlinable public func shiftedRight(byAmount amount: UInt64) -> UInt64 { self &>> amount }
    @inlinable public func equals(_ other: UInt64) -> Bool { self == other }
    @inlinable public func unsignedLess(than other: UInt64) -> Bool { self < other }
    @inlinable public func unsignedLessOrEqual(to other: UInt64) -> Bool { self <= other }
    @inlinable public static func select(_ condition: Bool, _ a: UInt64, _ b: UInt64) -> UInt64 {
        condition ? a : b
    }
}

/// Namespace of the proved bit-level kernels.
public enum Kernels {}
