import HVCore
import SMT

enum AlignmentTheorems {
    static let sizes: [(String, UInt64)] = [("4k", 0xFFF), ("2m", 0x1F_FFFF), ("1g", 0x3FFF_FFFF)]

    static var all: [Theorem] {
        sizes.flatMap { label, mask in
            [
                Theorem("align_down_\(label)", "alignDown(x) is aligned, <= x, and within \(hex(mask)) of x, for every 64-bit x",
                        wrong: "claims x - alignDown(x) < mask (off by one)") { c, variant in
                    let x = c.bv("x")
                    let r = Kernels.alignDown(x, mask: c.c(mask))
                    let distance = x &- r
                    let bound = variant == .shipped ? distance.unsignedLessOrEqual(to: c.c(mask)) : distance.unsignedLess(than: c.c(mask))
                    return Query(inputs: [("x", x)],
                                 claim: allOf(Kernels.isAligned(r, mask: c.c(mask)), r.unsignedLessOrEqual(to: x), bound))
                },
                Theorem("align_up_\(label)", "when alignUp reports it fits, the result is aligned, >= x and within \(hex(mask)) of x",
                        wrong: "drops the no-overflow precondition (refuted by an x near 2^64)") { c, variant in
                    let x = c.bv("x")
                    let (value, fits) = Kernels.alignUp(x, mask: c.c(mask))
                    let claim = allOf(Kernels.isAligned(value, mask: c.c(mask)), x.unsignedLessOrEqual(to: value),
                                    (value &- x).unsignedLessOrEqual(to: c.c(mask)))
                    return Query(inputs: [("x", x)], assumptions: variant == .shipped ? [fits] : [], claim: claim)
                },
                Theorem("align_up_fits_exactly_\(label)", "alignUp's fits flag is true exactly when the rounded value is below 2^64",
                        wrong: "claims it always fits") { c, variant in
                    let x = c.bv("x")
                    let (_, fits) = Kernels.alignUp(x, mask: c.c(mask))
                    // Reference in 65 bits: x + mask has no carry out of bit 63 after rounding.
                    let wide = (x.zeroExtended(by: 1) &+ c.c(mask).zeroExtended(by: 1)) & ~c.c(mask).zeroExtended(by: 1)
                    let below = wide.extract(64, 64).equals(wide.number(0).extract(0, 0))
                    return Query(inputs: [("x", x)], claim: variant == .shipped ? fits.iff(below) : fits)
                },
                Theorem("is_aligned_\(label)", "isAligned(x) holds exactly when x mod \(hex(mask + 1)) == 0",
                        wrong: "uses the size itself as the mask") { c, variant in
                    let x = c.bv("x")
                    let m = variant == .shipped ? c.c(mask) : c.c(mask + 1)
                    return Query(inputs: [("x", x)],
                                 claim: Kernels.isAligned(x, mask: m).iff(x.unsignedRemainder(c.c(mask + 1)).equals(c.c(0))))
                },
            ]
        }
    }
}
