import HVCore
import SMT

enum AlignmentTheorems {
    static let sizes: [(String, UInt64)] = [("4k", 0xFFF), ("2m", 0x1F_FFFF), ("1g", 0x3FFF_FFFF)]

    /// alignDown's result is aligned, at most x, and at most `mask` below
    /// it (`strict`: the off-by-one claim, less than `mask`).
    static func alignDownClaim<D: BitVectorDomain>(_ x: D, mask: UInt64, strict: Bool) -> D.Condition {
        let r = Kernels.alignDown(x, mask: .constant(mask))
        let distance = x &- r
        return allOf(Kernels.isAligned(r, mask: .constant(mask)), r.unsignedLessOrEqual(to: x),
                     strict ? distance.unsignedLess(than: .constant(mask)) : distance.unsignedLessOrEqual(to: .constant(mask)))
    }

    /// The mutated alignUp: one granule past the aligned-down value, even
    /// for an x that is already aligned (the shipped fits flag kept).
    static func alignUpPastAligned<D: BitVectorDomain>(_ x: D, mask: UInt64) -> (value: D, fits: D.Condition) {
        (Kernels.alignDown(x, mask: .constant(mask)) &+ .constant(mask + 1), Kernels.alignUp(x, mask: .constant(mask)).fits)
    }

    static func alignUpResult<D: BitVectorDomain>(_ x: D, mask: UInt64, _ variant: Variant) -> (value: D, fits: D.Condition) {
        variant == .mutated ? alignUpPastAligned(x, mask: mask) : Kernels.alignUp(x, mask: .constant(mask))
    }

    /// The rounded value is aligned, at least x, and at most `mask` above it.
    static func alignUpClaim<D: BitVectorDomain>(_ x: D, _ value: D, mask: UInt64) -> D.Condition {
        allOf(Kernels.isAligned(value, mask: .constant(mask)), x.unsignedLessOrEqual(to: value), (value &- x).unsignedLessOrEqual(to: .constant(mask)))
    }

    static var all: [Theorem] {
        sizes.flatMap { label, mask in
            [
                Theorem("align_down_\(label)", "alignDown(x) is aligned, <= x, and within \(hex(mask)) of x, for every 64-bit x",
                        wrong: "claims x - alignDown(x) < mask (off by one)") { c, variant in
                    let x = c.bv("x")
                    return Query(inputs: [("x", x)], claim: alignDownClaim(x, mask: mask, strict: variant != .shipped)) { model in
                        let v = model.value(x)
                        return .claim(shippedHolds: alignDownClaim(v, mask: mask, strict: false), wrongHolds: alignDownClaim(v, mask: mask, strict: true))
                    }
                },
                Theorem("align_up_\(label)", "when alignUp reports it fits, the result is aligned, >= x and within \(hex(mask)) of x",
                        wrong: "drops the no-overflow precondition (refuted by an x near 2^64)",
                        mutated: "rounds an aligned x up a whole granule (alignDown(x) + size), with the shipped fits precondition") { c, variant in
                    let x = c.bv("x")
                    let (value, fits) = alignUpResult(x, mask: mask, variant)
                    return Query(inputs: [("x", x)], assumptions: variant == .wrong ? [] : [fits], claim: alignUpClaim(x, value, mask: mask)) { model in
                        let v = model.value(x)
                        let shipped = Kernels.alignUp(v, mask: mask)
                        if variant == .wrong {
                            return .assumption(shippedAssumptionsHold: shipped.fits, claimHolds: alignUpClaim(v, shipped.value, mask: mask))
                        }
                        return .computation(shipped: shipped.value, wrong: alignUpPastAligned(v, mask: mask).value)
                    }
                },
                Theorem("align_up_fits_exactly_\(label)", "alignUp's fits flag is true exactly when the rounded value is below 2^64",
                        wrong: "claims it always fits") { c, variant in
                    let x = c.bv("x")
                    let (_, fits) = Kernels.alignUp(x, mask: c.c(mask))
                    // Reference in 65 bits: x + mask has no carry out of bit 63 after rounding.
                    let wide = (x.zeroExtended(by: 1) &+ c.c(mask).zeroExtended(by: 1)) & ~c.c(mask).zeroExtended(by: 1)
                    let below = wide.extract(64, 64).equals(wide.number(0).extract(0, 0))
                    return Query(inputs: [("x", x)], claim: variant == .shipped ? fits.iff(below) : fits) { model in
                        let v = model.value(x)
                        let fits = Kernels.alignUp(v, mask: mask).fits
                        // The concrete reference: rounding up does not carry past 2^64.
                        let wideBelow = (UInt128(v) + UInt128(mask)) & ~UInt128(mask) < UInt128(1) << 64
                        return .claim(shippedHolds: fits == wideBelow, wrongHolds: fits)
                    }
                },
                Theorem("is_aligned_\(label)", "isAligned(x) holds exactly when x mod \(hex(mask + 1)) == 0",
                        wrong: "uses the size itself as the mask") { c, variant in
                    let x = c.bv("x")
                    let m = variant == .shipped ? c.c(mask) : c.c(mask + 1)
                    return Query(inputs: [("x", x)],
                                 claim: Kernels.isAligned(x, mask: m).iff(x.unsignedRemainder(c.c(mask + 1)).equals(c.c(0)))) { model in
                        let v = model.value(x)
                        return .computation(shipped: Kernels.isAligned(v, mask: mask), wrong: Kernels.isAligned(v, mask: mask + 1))
                    }
                },
            ]
        }
    }
}
