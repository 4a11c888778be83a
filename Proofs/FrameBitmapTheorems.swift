import HVCore
import SMT

/// The frame bitmap's word kernels (`Kernels.bitmap*`, which `FrameBitmap`
/// runs), for an arbitrary frame: `f` stands for every frame of the word,
/// so no query enumerates bits (Hyperkernel style). Together: a take never
/// hands out a used frame and changes no other frame; a release frees only
/// used frames and changes no other frame.
enum FrameBitmapTheorems {
    /// The wrong take: the lowest *set* bit (a used frame).
    static func take<D: BitVectorDomain>(_ word: D, _ variant: Variant) -> (taken: D, word: D) {
        if variant == .shipped { return Kernels.bitmapTakeLowest(word) }
        let taken = word & (D.constant(0) &- word)
        return (taken, word | taken)
    }

    /// The wrong mask: no whole-word case, so a 64-frame run masks nothing.
    static func runMask<D: BitVectorDomain>(bit: D, count: D, _ variant: Variant) -> D {
        variant == .shipped ? Kernels.bitmapRunMask(bit: bit, count: count)
            : (D.constant(1).shiftedLeft(byAmount: count) &- .constant(1)).shiftedLeft(byAmount: bit)
    }

    /// A run of `count` frames from `bit`, inside one word.
    static func validRun(_ c: SMTContext, bit: SymBV, count: SymBV) -> [SymBool] {
        [bit.unsignedLess(than: c.c(64)), c.c(1).unsignedLessOrEqual(to: count), count.unsignedLessOrEqual(to: c.c(64) &- bit)]
    }

    static func inRun(_ b: SymBV, bit: SymBV, count: SymBV) -> SymBool {
        bit.unsignedLessOrEqual(to: b).and(b.unsignedLess(than: bit &+ count))
    }

    static var all: [Theorem] {
        [
            Theorem("bitmap_slot", "a frame's bit lies in word frame / 64 at a position below 64 (so every bit shift is below 64), and word and position give the frame back",
                    wrong: "takes the position modulo 128") { c, variant in
                let f = c.bv("frame")
                func slot<D: BitVectorDomain>(_ f: D, _ variant: Variant) -> (word: D, bit: D) {
                    variant == .shipped ? Kernels.bitmapSlot(frame: f) : (f.shiftedRight(by: 6), f & .constant(127))
                }
                let s = slot(f, variant)
                return Query(inputs: [("frame", f)], claim: s.bit.unsignedLess(than: c.c(64)).and(s.word.shiftedLeft(by: 6).equals(f & c.c(~63)))) { model in
                    let v = model.value(f)
                    return .computation(shipped: slot(v, .shipped).bit, wrong: slot(v, .wrong).bit)
                }
            },
            Theorem("bitmap_take_fresh", "taking from a word succeeds exactly when one of its frames is free, hands out exactly one frame, which was free, marks it used, and leaves every other frame of the word as it was",
                    wrong: "isolates the lowest used frame instead of the lowest free one") { c, variant in
                let w = c.bv("word"), f = c.bv("frame")
                let b = Kernels.bitmapSlot(frame: f).bit
                let (taken, after) = take(w, variant)
                let handedOut = Kernels.bitmapBitIsSet(taken, bit: b)
                let wasUsed = Kernels.bitmapBitIsSet(w, bit: b), isUsed = Kernels.bitmapBitIsSet(after, bit: b)
                return Query(inputs: [("word", w), ("frame", f)],
                             claims: [taken.isNonZero.iff((~w).isNonZero),
                                      (taken & (taken &- c.c(1))).isZero,
                                      handedOut.implies(wasUsed.negated.and(isUsed)),
                                      handedOut.negated.implies(isUsed.iff(wasUsed))]) { model in
                    let v = model.value(w)
                    return .computation(shipped: take(v, .shipped).taken, wrong: take(v, .wrong).taken)
                }
            },
            Theorem("bitmap_run_mask", "the mask of a run of 1 to 64 - bit frames from position bit holds exactly the run's positions",
                    wrong: "no whole-word case (a run of 64 frames masks nothing)") { c, variant in
                let bit = c.bv("bit"), count = c.bv("count"), f = c.bv("frame")
                let b = Kernels.bitmapSlot(frame: f).bit
                let mask = runMask(bit: bit, count: count, variant)
                return Query(inputs: [("bit", bit), ("count", count), ("frame", f)], assumptions: validRun(c, bit: bit, count: count),
                             claim: Kernels.bitmapBitIsSet(mask, bit: b).iff(inRun(b, bit: bit, count: count))) { model in
                    let (x, n) = (model.value(bit), model.value(count))
                    return .computation(shipped: runMask(bit: x, count: n, .shipped), wrong: runMask(bit: x, count: n, .wrong))
                }
            },
            Theorem("bitmap_release_used", "a run passes the release check only if every frame in it is used; releasing it frees exactly those frames and leaves every other frame of the word as it was",
                    wrong: "a release check that passes when any frame of the run is used") { c, variant in
                let w = c.bv("word"), bit = c.bv("bit"), count = c.bv("count"), f = c.bv("frame")
                let b = Kernels.bitmapSlot(frame: f).bit
                let mask = Kernels.bitmapRunMask(bit: bit, count: count)
                func check<D: BitVectorDomain>(_ w: D, _ mask: D, _ variant: Variant) -> D.Condition {
                    variant == .shipped ? Kernels.bitmapRunIsUsed(w, mask: mask) : (w & mask).isNonZero
                }
                let after = Kernels.bitmapMark(w, mask: mask, used: c.truth(false))
                let member = Kernels.bitmapBitIsSet(mask, bit: b)
                let wasUsed = Kernels.bitmapBitIsSet(w, bit: b), isUsed = Kernels.bitmapBitIsSet(after, bit: b)
                return Query(inputs: [("word", w), ("bit", bit), ("count", count), ("frame", f)],
                             assumptions: validRun(c, bit: bit, count: count) + [check(w, mask, variant)],
                             claims: [member.implies(wasUsed.and(isUsed.negated)), member.negated.implies(isUsed.iff(wasUsed))]) { model in
                    let v = model.value(w), m = Kernels.bitmapRunMask(bit: model.value(bit), count: model.value(count))
                    return .computation(shipped: check(v, m, .shipped), wrong: check(v, m, .wrong))
                }
            },
            Theorem("bitmap_take_run", "a run passes the take check only if every frame in it is free; taking it marks exactly those frames used and leaves every other frame of the word as it was",
                    wrong: "a take check that looks at the run's first frame only") { c, variant in
                let w = c.bv("word"), bit = c.bv("bit"), count = c.bv("count"), f = c.bv("frame")
                let b = Kernels.bitmapSlot(frame: f).bit
                let mask = Kernels.bitmapRunMask(bit: bit, count: count)
                func check<D: BitVectorDomain>(_ w: D, _ mask: D, _ first: D, _ variant: Variant) -> D.Condition {
                    variant == .shipped ? Kernels.bitmapRunIsFree(w, mask: mask) : Kernels.bitmapBitIsSet(w, bit: first).negated
                }
                let after = Kernels.bitmapMark(w, mask: mask, used: c.truth(true))
                let member = Kernels.bitmapBitIsSet(mask, bit: b)
                let wasUsed = Kernels.bitmapBitIsSet(w, bit: b), isUsed = Kernels.bitmapBitIsSet(after, bit: b)
                return Query(inputs: [("word", w), ("bit", bit), ("count", count), ("frame", f)],
                             assumptions: validRun(c, bit: bit, count: count) + [check(w, mask, bit, variant)],
                             claims: [member.implies(wasUsed.negated.and(isUsed)), member.negated.implies(isUsed.iff(wasUsed))]) { model in
                    let v = model.value(w), x = model.value(bit), m = Kernels.bitmapRunMask(bit: x, count: model.value(count))
                    return .computation(shipped: check(v, m, x, .shipped), wrong: check(v, m, x, .wrong))
                }
            },
        ]
    }
}
