import HVCore
import SMT

enum BitmapTheorems {
    static func ioBit<D: BitVectorDomain>(_ port: D, _ variant: Variant) -> D {
        variant == .shipped ? Kernels.ioBitmapBit(port: port) : port & .constant(0x3FFF)
    }

    /// The MSR bitmap's bit and coverage; the wrong variant puts the high
    /// range's quarter at 0x200 bytes.
    static func msrPlace<D: BitVectorDomain>(_ msr: D, write: D.Condition, _ variant: Variant) -> (bit: D, covered: D.Condition) {
        if variant == .shipped { return Kernels.msrBitmapBit(msr: msr, write: write) }
        let low = msr.unsignedLessOrEqual(to: .constant(0x1FFF))
        let quarter = D.select(low, .constant(0), .constant(0x200 * 8)) | D.select(write, .constant(0x800 * 8), .constant(0))
        return (quarter | (msr & .constant(0x1FFF)), low.or((msr &- .constant(0xC000_0000)).unsignedLessOrEqual(to: .constant(0x1FFF))))
    }

    /// The wrong coverage: the high range twice as long.
    static func msrCovered<D: BitVectorDomain>(_ msr: D, write: D.Condition, _ variant: Variant) -> D.Condition {
        variant == .shipped
            ? Kernels.msrBitmapBit(msr: msr, write: write).covered
            : msr.unsignedLessOrEqual(to: .constant(0x1FFF)).or((msr &- .constant(0xC000_0000)).unsignedLessOrEqual(to: .constant(0x3FFF)))
    }

    static var all: [Theorem] {
        [
            Theorem("io_bitmap_positions", "every 16-bit port has its own bit: frame A for 0x0000-0x7FFF, frame B above, bit index below 0x8000",
                    wrong: "masks the bit index with 0x3FFF (ports 0x4000 apart share a bit)") { c, variant in
                let p = c.bv("port_a"), q = c.bv("port_b")
                let samePlace = Kernels.ioBitmapFrame(port: p).equals(Kernels.ioBitmapFrame(port: q)).and(ioBit(p, variant).equals(ioBit(q, variant)))
                let claim = allOf(samePlace.implies(p.equals(q)), ioBit(p, variant).unsignedLess(than: c.c(0x8000)),
                                  Kernels.ioBitmapFrame(port: p).equals(c.c(0)).iff(p.unsignedLess(than: c.c(0x8000))))
                return Query(inputs: [("port_a", p), ("port_b", q)],
                             assumptions: [p.unsignedLess(than: c.c(0x1_0000)), q.unsignedLess(than: c.c(0x1_0000))], claim: claim) { model in
                    let ports = [model.value(p), model.value(q)]
                    return .computation(shipped: ports.map { ioBit($0, .shipped) }, wrong: ports.map { ioBit($0, .wrong) })
                }
            },
            Theorem("msr_bitmap_positions", "covered MSRs (0x0-0x1FFF, 0xC0000000-0xC0001FFF) get distinct bits per direction, reads in the first 2 KiB and writes in the second, each range in its own quarter",
                    wrong: "puts the high range's quarter at 0x200 bytes instead of 0x400") { c, variant in
                let m = c.bv("msr_a"), n = c.bv("msr_b"), wm = c.boolean("write_a"), wn = c.boolean("write_b")
                let (bm, cm) = msrPlace(m, write: wm, variant), (bn, cn) = msrPlace(n, write: wn, variant)
                let claim = allOf(bm.equals(bn).implies(m.equals(n).and(wm.iff(wn))), bm.unsignedLess(than: c.c(0x8000)),
                                  wm.iff(c.c(0x4000).unsignedLessOrEqual(to: bm)))
                return Query(inputs: [("msr_a", m), ("msr_b", n)], assumptions: [cm, cn, m.unsignedLess(than: c.c(1 << 32)), n.unsignedLess(than: c.c(1 << 32))],
                             claim: claim) { model in
                    let accesses = [(model.value(m), model.value(wm)), (model.value(n), model.value(wn))]
                    return .computation(shipped: accesses.map { msrPlace($0.0, write: $0.1, .shipped).bit },
                                        wrong: accesses.map { msrPlace($0.0, write: $0.1, .wrong).bit })
                }
            },
            // msr_bitmap_positions assumes the kernel's own `covered`; this pins it.
            Theorem("msr_bitmap_covered", "an MSR is covered by the bitmap exactly when it lies in 0x0-0x1FFF or 0xC0000000-0xC0001FFF, for reads and writes alike",
                    wrong: "covers 0xC0000000-0xC0003FFF (twice the high range)") { c, variant in
                let m = c.bv("msr"), w = c.boolean("write")
                let inRanges = m.unsignedLessOrEqual(to: c.c(0x1FFF)).or(c.c(0xC000_0000).unsignedLessOrEqual(to: m).and(m.unsignedLessOrEqual(to: c.c(0xC000_1FFF))))
                return Query(inputs: [("msr", m)], claim: msrCovered(m, write: w, variant).iff(inRanges)) { model in
                    let v = model.value(m), write = model.value(w)
                    return .computation(shipped: msrCovered(v, write: write, .shipped), wrong: msrCovered(v, write: write, .wrong))
                }
            },
        ]
    }
}
