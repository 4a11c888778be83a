import HVCore
import SMT

enum BitmapTheorems {
    static var all: [Theorem] {
        [
            Theorem("io_bitmap_positions", "every 16-bit port has its own bit: frame A for 0x0000-0x7FFF, frame B above, bit index below 0x8000",
                    wrong: "masks the bit index with 0x3FFF (ports 0x4000 apart share a bit)") { c, variant in
                let p = c.bv("port_a"), q = c.bv("port_b")
                func bit(_ x: SymBV) -> SymBV { variant == .shipped ? Kernels.ioBitmapBit(port: x) : x & c.c(0x3FFF) }
                let samePlace = Kernels.ioBitmapFrame(port: p).equals(Kernels.ioBitmapFrame(port: q)).and(bit(p).equals(bit(q)))
                let claim = allOf(samePlace.implies(p.equals(q)), bit(p).unsignedLess(than: c.c(0x8000)),
                                  Kernels.ioBitmapFrame(port: p).equals(c.c(0)).iff(p.unsignedLess(than: c.c(0x8000))))
                return Query(inputs: [("port_a", p), ("port_b", q)],
                             assumptions: [p.unsignedLess(than: c.c(0x1_0000)), q.unsignedLess(than: c.c(0x1_0000))], claim: claim)
            },
            Theorem("msr_bitmap_positions", "covered MSRs (0x0-0x1FFF, 0xC0000000-0xC0001FFF) get distinct bits per direction, reads in the first 2 KiB and writes in the second, each range in its own quarter",
                    wrong: "puts the high range's quarter at 0x200 bytes instead of 0x400") { c, variant in
                let m = c.bv("msr_a"), n = c.bv("msr_b"), wm = c.boolean("write_a"), wn = c.boolean("write_b")
                func place(_ x: SymBV, _ w: SymBool) -> (SymBV, SymBool) {
                    if variant == .shipped { return Kernels.msrBitmapBit(msr: x, write: w) }
                    let low = x.unsignedLessOrEqual(to: c.c(0x1FFF))
                    let quarter = SymBV.select(low, c.c(0), c.c(0x200 * 8)) | SymBV.select(w, c.c(0x800 * 8), c.c(0))
                    return (quarter | (x & c.c(0x1FFF)), low.or((x &- c.c(0xC000_0000)).unsignedLessOrEqual(to: c.c(0x1FFF))))
                }
                let (bm, cm) = place(m, wm), (bn, cn) = place(n, wn)
                let claim = allOf(bm.equals(bn).implies(m.equals(n).and(wm.iff(wn))), bm.unsignedLess(than: c.c(0x8000)),
                                  wm.iff(c.c(0x4000).unsignedLessOrEqual(to: bm)))
                return Query(inputs: [("msr_a", m), ("msr_b", n)], assumptions: [cm, cn, m.unsignedLess(than: c.c(1 << 32)), n.unsignedLess(than: c.c(1 << 32))], claim: claim)
            },
            // msr_bitmap_positions assumes the kernel's own `covered`; this pins it.
            Theorem("msr_bitmap_covered", "an MSR is covered by the bitmap exactly when it lies in 0x0-0x1FFF or 0xC0000000-0xC0001FFF, for reads and writes alike",
                    wrong: "covers 0xC0000000-0xC0003FFF (twice the high range)") { c, variant in
                let m = c.bv("msr"), w = c.boolean("write")
                let covered = variant == .shipped
                    ? Kernels.msrBitmapBit(msr: m, write: w).covered
                    : m.unsignedLessOrEqual(to: c.c(0x1FFF)).or((m &- c.c(0xC000_0000)).unsignedLessOrEqual(to: c.c(0x3FFF)))
                let inRanges = m.unsignedLessOrEqual(to: c.c(0x1FFF)).or(c.c(0xC000_0000).unsignedLessOrEqual(to: m).and(m.unsignedLessOrEqual(to: c.c(0xC000_1FFF))))
                return Query(inputs: [("msr", m)], claim: covered.iff(inRanges))
            },
        ]
    }
}
