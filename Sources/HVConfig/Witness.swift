import HVCore
import SMT

/// Concrete addresses for overlap findings: Z3's model of "some address
/// lies in both ranges", checked against both ranges before it is used.
public enum Witness {
    /// An address in `[a, a + aSize)` and in `[b, b + bSize)`, or nil if
    /// none exists (ends up to 2^64; 65-bit arithmetic, so nothing wraps).
    public static func common(_ a: UInt64, _ aSize: UInt64, _ b: UInt64, _ bSize: UInt64) -> UInt64? {
        let context = SMTContext()
        let found: UInt64? = context.with {
            let x = context.bitVector("address")
            func inside(_ start: UInt64, _ size: UInt64) -> SymBool {
                let w = x.zeroExtended(by: 1), s = context.number(start).zeroExtended(by: 1)
                let e = s &+ context.number(size).zeroExtended(by: 1)
                return s.unsignedLessOrEqual(to: w).and(w.unsignedLess(than: e))
            }
            let solver = SMTSolver(context, timeoutMilliseconds: 10_000, logic: "QF_BV")
            solver.assert(inside(a, aSize).and(inside(b, bSize)))
            if case let .counterexample(model) = solver.check() { return model.value(x) }
            return nil
        }
        // Never print an address that is not in both.
        guard let w = found, Kernels.rangeContainsAddress(start: a, size: aSize, address: w),
              Kernels.rangeContainsAddress(start: b, size: bSize, address: w) else { return nil }
        return w
    }
}
