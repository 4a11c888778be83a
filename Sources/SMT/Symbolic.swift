import CZ3
import HVCore

/// A symbolic boolean: the `Condition` of the symbolic kernel domain.
public struct SymBool: BitVectorCondition, CustomStringConvertible {
    let term: Term
    init(_ term: Term) { self.term = term }

    var context: SMTContext { term.context }
    var raw: Z3_ast { term.raw }

    public static func constant(_ value: Bool) -> SymBool {
        guard let c = SMTContext.current else { preconditionFailure("symbolic constant outside SMTContext.with") }
        return c.truth(value)
    }

    public func and(_ other: SymBool) -> SymBool {
        var args: [Z3_ast?] = [raw, other.raw]
        return SymBool(Term(context, Z3_mk_and(context.raw, 2, &args)))
    }

    public func or(_ other: SymBool) -> SymBool {
        var args: [Z3_ast?] = [raw, other.raw]
        return SymBool(Term(context, Z3_mk_or(context.raw, 2, &args)))
    }

    public var negated: SymBool { SymBool(Term(context, Z3_mk_not(context.raw, raw))) }

    /// Never: a symbolic walk carries on under every condition.
    public var isCertainlyFalse: Bool { false }

    /// `condition ? a : b` for booleans.
    public static func select(_ condition: SymBool, _ a: SymBool, _ b: SymBool) -> SymBool {
        SymBool(Term(a.context, Z3_mk_ite(a.context.raw, condition.raw, a.raw, b.raw)))
    }

    public func implies(_ other: SymBool) -> SymBool { SymBool(Term(context, Z3_mk_implies(context.raw, raw, other.raw))) }
    public func iff(_ other: SymBool) -> SymBool { SymBool(Term(context, Z3_mk_iff(context.raw, raw, other.raw))) }

    public var description: String { term.description }
}

/// A symbolic bit-vector of `bits` bits (64 for the kernels' domain).
public struct SymBV: BitVectorDomain, CustomStringConvertible {
    public typealias Condition = SymBool
    let term: Term
    public let bits: Int

    init(_ term: Term, bits: Int) {
        self.term = term
        self.bits = bits
    }

    var context: SMTContext { term.context }
    var raw: Z3_ast { term.raw }

    private func make(_ ast: Z3_ast?, bits: Int? = nil) -> SymBV { SymBV(Term(context, ast), bits: bits ?? self.bits) }

    /// A 64-bit numeral in the current context (`SMTContext.with`).
    public static func constant(_ value: UInt64) -> SymBV {
        guard let c = SMTContext.current else { preconditionFailure("symbolic constant outside SMTContext.with") }
        return c.number(value)
    }

    public static func & (lhs: SymBV, rhs: SymBV) -> SymBV { lhs.make(Z3_mk_bvand(lhs.context.raw, lhs.raw, rhs.raw)) }
    public static func | (lhs: SymBV, rhs: SymBV) -> SymBV { lhs.make(Z3_mk_bvor(lhs.context.raw, lhs.raw, rhs.raw)) }
    public static func ^ (lhs: SymBV, rhs: SymBV) -> SymBV { lhs.make(Z3_mk_bvxor(lhs.context.raw, lhs.raw, rhs.raw)) }
    public static prefix func ~ (operand: SymBV) -> SymBV { operand.make(Z3_mk_bvnot(operand.context.raw, operand.raw)) }
    public static func &+ (lhs: SymBV, rhs: SymBV) -> SymBV { lhs.make(Z3_mk_bvadd(lhs.context.raw, lhs.raw, rhs.raw)) }
    public static func &- (lhs: SymBV, rhs: SymBV) -> SymBV { lhs.make(Z3_mk_bvsub(lhs.context.raw, lhs.raw, rhs.raw)) }

    /// Amounts past the width would shift everything out here but be
    /// masked on UInt64: refused, so proved and shipped code cannot differ.
    public func shiftedLeft(by amount: Int) -> SymBV {
        precondition((0..<Int(bits)).contains(amount), "shift by \(amount) on a \(bits)-bit vector")
        return make(Z3_mk_bvshl(context.raw, raw, context.number(UInt64(amount), bits: bits).raw))
    }

    public func shiftedRight(by amount: Int) -> SymBV {
        precondition((0..<Int(bits)).contains(amount), "shift by \(amount) on a \(bits)-bit vector")
        return make(Z3_mk_bvlshr(context.raw, raw, context.number(UInt64(amount), bits: bits).raw))
    }

    /// The amount is taken modulo the width, as UInt64's `&<<` takes it
    /// modulo 64, so the two domains agree for every amount.
    public func shiftedLeft(byAmount amount: SymBV) -> SymBV {
        make(Z3_mk_bvshl(context.raw, raw, (amount & number(UInt64(bits - 1))).raw))
    }

    public func shiftedRight(byAmount amount: SymBV) -> SymBV {
        make(Z3_mk_bvlshr(context.raw, raw, (amount & number(UInt64(bits - 1))).raw))
    }

    public func equals(_ other: SymBV) -> SymBool { SymBool(Term(context, Z3_mk_eq(context.raw, raw, other.raw))) }
    public func unsignedLess(than other: SymBV) -> SymBool { SymBool(Term(context, Z3_mk_bvult(context.raw, raw, other.raw))) }
    public func unsignedLessOrEqual(to other: SymBV) -> SymBool { SymBool(Term(context, Z3_mk_bvule(context.raw, raw, other.raw))) }

    public static func select(_ condition: SymBool, _ a: SymBV, _ b: SymBV) -> SymBV {
        a.make(Z3_mk_ite(a.context.raw, condition.raw, a.raw, b.raw))
    }

    // Operations proofs use beyond the kernels' domain.

    /// Unsigned remainder.
    public func unsignedRemainder(_ other: SymBV) -> SymBV { make(Z3_mk_bvurem(context.raw, raw, other.raw)) }
    /// Widens by `extra` zero bits (for reference formulas that must not wrap).
    public func zeroExtended(by extra: Int) -> SymBV { make(Z3_mk_zero_ext(context.raw, UInt32(extra), raw), bits: bits + extra) }
    /// Bits `high...low`.
    public func extract(_ high: Int, _ low: Int) -> SymBV { make(Z3_mk_extract(context.raw, UInt32(high), UInt32(low), raw), bits: high - low + 1) }
    /// A numeral of this width.
    public func number(_ value: UInt64) -> SymBV { context.number(value, bits: bits) }

    public var description: String { term.description }
}
