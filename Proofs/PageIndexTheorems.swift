import HVCore
import SMT

enum PageIndexTheorems {
    /// A wrong index: one bit too far right, so neighbouring levels overlap.
    static func offByOneIndex<D: BitVectorDomain>(_ x: D, level: Int) -> D {
        x.shiftedRight(by: 13 + 9 * level) & .constant(0x1FF)
    }

    static func index<D: BitVectorDomain>(_ x: D, level: Int, _ variant: Variant) -> D {
        variant == .shipped ? Kernels.tableIndex(x, level: level) : offByOneIndex(x, level: level)
    }

    /// The address rebuilt from its four indices and offset.
    static func recombined<D: BitVectorDomain>(_ x: D, _ variant: Variant) -> D {
        Kernels.recombine(index(x, level: 3, variant), index(x, level: 2, variant), index(x, level: 1, variant), index(x, level: 0, variant),
                          offset: Kernels.pageOffset4K(x))
    }

    static func accepted<D: BitVectorDomain>(_ x: D, _ variant: Variant) -> D.Condition {
        variant == .shipped ? Kernels.fitsIn48Bits(x) : x.shiftedRight(by: 49).isZero
    }

    static var all: [Theorem] {
        [
            Theorem("ept_index_recombine", "for every 48-bit address, recombining its four 9-bit indices and 12-bit offset gives it back",
                    wrong: "a 9-bit index taken one bit off") { c, variant in
                let x = c.bv("gpa")
                return Query(inputs: [("gpa", x)], assumptions: [Kernels.fitsIn48Bits(x)], claim: recombined(x, variant).equals(x)) { model in
                    let v = model.value(x)
                    return .computation(shipped: recombined(v, .shipped), wrong: recombined(v, .wrong))
                }
            },
            Theorem("ept_index_split", "splitting a recombined address gives back every 9-bit index and the 12-bit offset",
                    wrong: "a 9-bit index taken one bit off") { c, variant in
                let parts = (0..<4).map { c.bv("index\($0)") }
                let offset = c.bv("offset")
                let x = Kernels.recombine(parts[3], parts[2], parts[1], parts[0], offset: offset)
                var claims = [Kernels.pageOffset4K(x).equals(offset & c.c(0xFFF)), Kernels.fitsIn48Bits(x)]
                for l in 0..<4 { claims.append(index(x, level: l, variant).equals(parts[l] & c.c(0x1FF))) }
                return Query(inputs: [("index0", parts[0]), ("index1", parts[1]), ("index2", parts[2]), ("index3", parts[3]), ("offset", offset)],
                             claim: conjunction(claims)) { model in
                    let p = parts.map { model.value($0) }
                    let v = Kernels.recombine(p[3], p[2], p[1], p[0], offset: model.value(offset))
                    return .computation(shipped: (0..<4).map { index(v, level: $0, .shipped) }, wrong: (0..<4).map { index(v, level: $0, .wrong) })
                }
            },
            Theorem("ept_out_of_range_rejected", "an address is accepted exactly when it is below 2^48, and no larger address recombines to itself (none is folded)",
                    wrong: "accepts 49-bit addresses") { c, variant in
                let x = c.bv("gpa")
                let folded = recombined(x, .shipped)
                return Query(inputs: [("gpa", x)],
                             claim: accepted(x, variant).iff(x.unsignedLess(than: c.c(1 << 48))).and(accepted(x, variant).or(folded.equals(x).negated))) { model in
                    let v = model.value(x)
                    return .computation(shipped: accepted(v, .shipped), wrong: accepted(v, .wrong))
                }
            },
        ]
    }
}
