import HVCore
import SMT

/// Half-open ranges are compared with a 65-bit reference, so a range may end
/// at exactly 2^64 without wrapping.
enum RangeTheorems {
    struct Range65 {
        let start: SymBV, size: SymBV
        var wideStart: SymBV { start.zeroExtended(by: 1) }
        var wideEnd: SymBV { start.zeroExtended(by: 1) &+ size.zeroExtended(by: 1) }
        /// The range ends at or before 2^64.
        /// The range ends at or before 2^64, in 65-bit arithmetic.
        func fitsWide(_ c: SMTContext) -> SymBool { wideEnd.unsignedLessOrEqual(to: wideEnd.number(1).shiftedLeft(by: 64)) }
        /// The same fact in 64 bits: size <= 2^64 - start (any size when
        /// start is 0). `range_fits_forms` proves the two equal.
        func fits(_ c: SMTContext) -> SymBool { narrowFits(start, size, .shipped) }
        /// Membership by the 65-bit reference (no wrap possible).
        func containsWide(_ x: SymBV) -> SymBool {
            let w = x.zeroExtended(by: 1)
            return wideStart.unsignedLessOrEqual(to: w).and(w.unsignedLess(than: wideEnd))
        }

        /// Membership as offset < size; `range_contains_address` proves it
        /// equal to the 65-bit reference for every range that fits, so the
        /// other range theorems may use it (a 64-bit query is far easier).
        func contains(_ x: SymBV) -> SymBool { (x &- start).unsignedLess(than: size) }
    }

    static var all: [Theorem] {
        [
            Theorem("range_overlap_sound", "if some address lies in both half-open ranges, rangesOverlap says so (ranges may end at 2^64)",
                    wrong: "the naive a < b + b_size && b < a + a_size, which wraps for a range ending at 2^64") { c, variant in
                let a = Range65(start: c.bv("a_start"), size: c.bv("a_size")), b = Range65(start: c.bv("b_start"), size: c.bv("b_size"))
                let x = c.bv("address")
                let aFirst = a.start.unsignedLessOrEqual(to: b.start)
                return Query(inputs: [("a_start", a.start), ("a_size", a.size), ("b_start", b.start), ("b_size", b.size), ("address", x)],
                             assumptions: [a.fits(c), b.fits(c), a.contains(x), b.contains(x)], claim: naiveOrShipped(a.start, a.size, b.start, b.size, variant),
                             cases: [aFirst, aFirst.negated]) { model in
                    let v = [a.start, a.size, b.start, b.size].map { model.value($0) }
                    return .computation(shipped: naiveOrShipped(v[0], v[1], v[2], v[3], .shipped), wrong: naiveOrShipped(v[0], v[1], v[2], v[3], .wrong))
                }
            },
            Theorem("range_overlap_complete", "if rangesOverlap says two ranges overlap, overlapWitness (the larger start) lies in both",
                    wrong: "compares the gap with <= (adjacent ranges overlap)") { c, variant in
                let a = Range65(start: c.bv("a_start"), size: c.bv("a_size")), b = Range65(start: c.bv("b_start"), size: c.bv("b_size"))
                let overlap = gapOrShipped(a.start, a.size, b.start, b.size, variant)
                let witness = Kernels.overlapWitness(a.start, b.start)
                return Query(inputs: [("a_start", a.start), ("a_size", a.size), ("b_start", b.start), ("b_size", b.size)],
                             assumptions: [a.fits(c), b.fits(c), overlap], claim: a.contains(witness).and(b.contains(witness))) { model in
                    let v = [a.start, a.size, b.start, b.size].map { model.value($0) }
                    return .computation(shipped: gapOrShipped(v[0], v[1], v[2], v[3], .shipped), wrong: gapOrShipped(v[0], v[1], v[2], v[3], .wrong))
                }
            },
            Theorem("range_contains_sound", "if rangeContains says inner lies in outer, every address of inner lies in outer",
                    wrong: "compares the inner size with the outer size, forgetting the offset") { c, variant in
                let o = Range65(start: c.bv("outer_start"), size: c.bv("outer_size")), i = Range65(start: c.bv("inner_start"), size: c.bv("inner_size"))
                let x = c.bv("address")
                let contains = containsOrSizes(o.start, o.size, i.start, i.size, variant)
                // x - outer = (inner - outer) + (x - inner): both offsets in range.
                return Query(inputs: [("outer_start", o.start), ("outer_size", o.size), ("inner_start", i.start), ("inner_size", i.size), ("address", x)],
                             assumptions: [o.fits(c), i.fits(c), contains, i.contains(x)], claim: o.contains(x),
                             lemmas: [LemmaUse(offsetSumStaysBelow, [i.start &- o.start, x &- i.start, o.size, i.size])]) { model in
                    let v = [o.start, o.size, i.start, i.size].map { model.value($0) }
                    return .computation(shipped: containsOrSizes(v[0], v[1], v[2], v[3], .shipped), wrong: containsOrSizes(v[0], v[1], v[2], v[3], .wrong))
                }
            },
            Theorem("range_contains_complete", "if a non-empty inner range is not contained, its first or its last address lies outside outer",
                    wrong: "claims the first address alone always shows it") { c, variant in
                let o = Range65(start: c.bv("outer_start"), size: c.bv("outer_size")), i = Range65(start: c.bv("inner_start"), size: c.bv("inner_size"))
                let contains = Kernels.rangeContains(outerStart: o.start, outerSize: o.size, innerStart: i.start, innerSize: i.size)
                let last = i.start &+ i.size &- c.c(1)
                let shown = variant == .shipped ? o.contains(i.start).negated.or(o.contains(last).negated) : o.contains(i.start).negated
                // Inner starts below outer, or past its end (its first address
                // shows it), or runs past its end (its last address does).
                let startsInside = o.start.unsignedLessOrEqual(to: i.start)
                let offset = i.start &- o.start
                return Query(inputs: [("outer_start", o.start), ("outer_size", o.size), ("inner_start", i.start), ("inner_size", i.size)],
                             assumptions: [o.fits(c), i.fits(c), i.size.isNonZero, contains.negated], claim: shown,
                             cases: [startsInside.negated, startsInside.and(offset.unsignedLessOrEqual(to: o.size).negated),
                                     startsInside.and(offset.unsignedLessOrEqual(to: o.size))],
                             lemmas: [LemmaUse(earlierStartStillFits, [offset, i.size, i.start]), LemmaUse(lastOffsetReachesEnd, [offset, i.size, o.size])]) { model in
                    let (os, osz, st, sz) = (model.value(o.start), model.value(o.size), model.value(i.start), model.value(i.size))
                    func inOuter(_ x: UInt64) -> Bool { x &- os < osz }
                    return .claim(shippedHolds: !inOuter(st) || !inOuter(st &+ sz &- 1), wrongHolds: !inOuter(st))
                }
            },
            Theorem("range_fits_forms", "the 64-bit form of 'the range ends at or before 2^64' equals the 65-bit one",
                    wrong: "size < 2^64 - start (excludes ranges ending exactly at 2^64)") { c, variant in
                let r = Range65(start: c.bv("start"), size: c.bv("size"))
                return Query(inputs: [("start", r.start), ("size", r.size)], claim: narrowFits(r.start, r.size, variant).iff(r.fitsWide(c))) { model in
                    let (start, size) = (model.value(r.start), model.value(r.size))
                    let wide = UInt128(start) + UInt128(size) <= UInt128(1) << 64
                    return .claim(shippedHolds: narrowFits(start, size, .shipped) == wide, wrongHolds: narrowFits(start, size, .wrong) == wide)
                }
            },
            Theorem("range_contains_address", "rangeContainsAddress is exactly start <= x < start + size (end up to 2^64)",
                    wrong: "uses <= at the end") { c, variant in
                let r = Range65(start: c.bv("start"), size: c.bv("size")), x = c.bv("address")
                return Query(inputs: [("start", r.start), ("size", r.size), ("address", x)],
                             assumptions: [r.fitsWide(c)],
                             claim: containsAddress(r.start, r.size, x, variant).iff(r.containsWide(x)).and(r.contains(x).iff(r.containsWide(x)))) { model in
                    let v = [r.start, r.size, x].map { model.value($0) }
                    return .computation(shipped: containsAddress(v[0], v[1], v[2], .shipped), wrong: containsAddress(v[0], v[1], v[2], .wrong))
                }
            },
        ]
    }

    /// d <= o, s <= o - d and e < s give d + e < o (no wrap anywhere).
    static let offsetSumStaysBelow = Lemma(
        "offset_sum_stays_below", "d <= o, s <= o - d, e < s imply d + e < o", variables: ["d", "e", "o", "s"]
    ) { _, v in
        let (d, e, o, s) = (v[0], v[1], v[2], v[3])
        return ([d.unsignedLessOrEqual(to: o), s.unsignedLessOrEqual(to: o &- d), e.unsignedLess(than: s)], (d &+ e).unsignedLess(than: o))
    }

    /// A range [i, i + s) that ends by 2^64 still does when it starts
    /// earlier, at d <= i.
    static let earlierStartStillFits = Lemma(
        "earlier_start_still_fits", "d <= i and [i, i + s) ends by 2^64 imply [d, d + s) ends by 2^64", variables: ["d", "s", "i"]
    ) { c, v in
        let (d, s, i) = (v[0], v[1], v[2])
        return ([d.unsignedLessOrEqual(to: i), i.isZero.or(s.unsignedLessOrEqual(to: c.c(0) &- i))],
                d.isZero.or(s.unsignedLessOrEqual(to: c.c(0) &- d)))
    }

    /// An inner range starting d into outer (d <= o), longer than the rest
    /// of outer (s > o - d) and ending by 2^64, has its last offset
    /// d + s - 1 at or past o.
    static let lastOffsetReachesEnd = Lemma(
        "last_offset_reaches_end", "d <= o, s > o - d, s != 0, [d, d + s) ends by 2^64 imply d + s - 1 >= o",
        variables: ["d", "s", "o"]
    ) { c, v in
        let (d, s, o) = (v[0], v[1], v[2])
        return ([d.unsignedLessOrEqual(to: o), (o &- d).unsignedLess(than: s), s.isNonZero, d.isZero.or(s.unsignedLessOrEqual(to: c.c(0) &- d))],
                o.unsignedLessOrEqual(to: d &+ s &- c.c(1)))
    }

    /// rangesOverlap; the wrong one is the naive test that wraps.
    static func naiveOrShipped<D: BitVectorDomain>(_ a: D, _ aSize: D, _ b: D, _ bSize: D, _ variant: Variant) -> D.Condition {
        variant == .shipped ? Kernels.rangesOverlap(a, aSize, b, bSize) : a.unsignedLess(than: b &+ bSize).and(b.unsignedLess(than: a &+ aSize))
    }

    /// rangesOverlap; the wrong one is the classic slip, `gap <= size`,
    /// which makes adjacent ranges overlap.
    static func gapOrShipped<D: BitVectorDomain>(_ a: D, _ aSize: D, _ b: D, _ bSize: D, _ variant: Variant) -> D.Condition {
        if variant == .shipped { return Kernels.rangesOverlap(a, aSize, b, bSize) }
        let aFirst = a.unsignedLessOrEqual(to: b)
        let gap = D.select(aFirst, b &- a, a &- b)
        let lower = D.select(aFirst, aSize, bSize)
        let upper = D.select(aFirst, bSize, aSize)
        return gap.unsignedLessOrEqual(to: lower).and(upper.isNonZero)
    }

    /// rangeContains; the wrong one compares the sizes and forgets the offset.
    static func containsOrSizes<D: BitVectorDomain>(_ o: D, _ oSize: D, _ i: D, _ iSize: D, _ variant: Variant) -> D.Condition {
        variant == .shipped
            ? Kernels.rangeContains(outerStart: o, outerSize: oSize, innerStart: i, innerSize: iSize)
            : o.unsignedLessOrEqual(to: i).and(iSize.unsignedLessOrEqual(to: oSize))
    }

    /// The 64-bit "ends by 2^64" form; the wrong one uses < (excludes ending exactly at 2^64).
    static func narrowFits<D: BitVectorDomain>(_ start: D, _ size: D, _ variant: Variant) -> D.Condition {
        variant == .shipped ? start.isZero.or(size.unsignedLessOrEqual(to: D.constant(0) &- start))
            : start.isZero.or(size.unsignedLess(than: D.constant(0) &- start))
    }

    /// rangeContainsAddress; the wrong one uses <= at the end.
    static func containsAddress<D: BitVectorDomain>(_ start: D, _ size: D, _ x: D, _ variant: Variant) -> D.Condition {
        variant == .shipped ? Kernels.rangeContainsAddress(start: start, size: size, address: x) : (x &- start).unsignedLessOrEqual(to: size)
    }
}
