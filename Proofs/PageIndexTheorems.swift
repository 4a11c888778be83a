import HVCore
import SMT

enum PageIndexTheorems {
    /// A wrong index: one bit too far right, so neighbouring levels overlap.
    static func offByOneIndex(_ x: SymBV, level: Int, _ c: SMTContext) -> SymBV {
        x.shiftedRight(by: 13 + 9 * level) & c.c(0x1FF)
    }

    static var all: [Theorem] {
        [
            Theorem("ept_index_recombine", "for every 48-bit address, recombining its four 9-bit indices and 12-bit offset gives it back",
                    wrong: "a 9-bit index taken one bit off") { c, variant in
                let x = c.bv("gpa")
                func index(_ l: Int) -> SymBV { variant == .shipped ? Kernels.tableIndex(x, level: l) : offByOneIndex(x, level: l, c) }
                let back = Kernels.recombine(index(3), index(2), index(1), index(0), offset: Kernels.pageOffset4K(x))
                return Query(inputs: [("gpa", x)], assumptions: [Kernels.fitsIn48Bits(x)], claim: back.equals(x))
            },
            Theorem("ept_index_split", "splitting a recombined address gives back every 9-bit index and the 12-bit offset",
                    wrong: "a 9-bit index taken one bit off") { c, variant in
                let parts = (0..<4).map { c.bv("index\($0)") }
                let offset = c.bv("offset")
                let x = Kernels.recombine(parts[3], parts[2], parts[1], parts[0], offset: offset)
                var claims = [Kernels.pageOffset4K(x).equals(offset & c.c(0xFFF)), Kernels.fitsIn48Bits(x)]
                for l in 0..<4 {
                    let i = variant == .shipped ? Kernels.tableIndex(x, level: l) : offByOneIndex(x, level: l, c)
                    claims.append(i.equals(parts[l] & c.c(0x1FF)))
                }
                return Query(inputs: [("index0", parts[0]), ("index1", parts[1]), ("index2", parts[2]), ("index3", parts[3]), ("offset", offset)],
                             claim: claims.dropFirst().reduce(claims[0]) { $0.and($1) })
            },
            Theorem("ept_out_of_range_rejected", "an address is accepted exactly when it is below 2^48, and no larger address recombines to itself (none is folded)",
                    wrong: "accepts 49-bit addresses") { c, variant in
                let x = c.bv("gpa")
                let accepted = variant == .shipped ? Kernels.fitsIn48Bits(x) : x.shiftedRight(by: 49).isZero
                let folded = Kernels.recombine(Kernels.tableIndex(x, level: 3), Kernels.tableIndex(x, level: 2),
                                               Kernels.tableIndex(x, level: 1), Kernels.tableIndex(x, level: 0),
                                               offset: Kernels.pageOffset4K(x))
                return Query(inputs: [("gpa", x)],
                             claim: accepted.iff(x.unsignedLess(than: c.c(1 << 48))).and(accepted.or(folded.equals(x).negated)))
            },
        ]
    }
}
