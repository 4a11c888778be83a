/// The frame bitmap's word operations: one bit per frame, set while the
/// frame is allocated. `FrameBitmap` runs these on `UInt64`; the proofs run
/// them on symbolic words and show that a take never hands out a used
/// frame and a release never frees a free one, for every frame.
extension Kernels {
    /// The word holding `frame`'s bit, and the bit's position in it (< 64).
    @inlinable @inline(__always)
    public static func bitmapSlot<D: BitVectorDomain>(frame: D) -> (word: D, bit: D) {
        (frame.shiftedRight(by: 6), frame & .constant(63))
    }

    /// Whether bit `bit` (< 64) of `word` is set.
    @inlinable @inline(__always)
    public static func bitmapBitIsSet<D: BitVectorDomain>(_ word: D, bit: D) -> D.Condition {
        (word.shiftedRight(byAmount: bit) & .constant(1)).isNonZero
    }

    /// Takes the lowest clear bit of `word`: `taken` is that bit alone (0
    /// when every bit is set), `word` the word with it set.
    @inlinable @inline(__always)
    public static func bitmapTakeLowest<D: BitVectorDomain>(_ word: D) -> (taken: D, word: D) {
        let free = ~word
        let taken = free & (D.constant(0) &- free)
        return (taken, word | taken)
    }

    /// Bits `bit ..< bit + count` of a word, for `bit` < 64 and
    /// 1 <= `count` <= 64 - `bit` (a whole word when `count` is 64).
    @inlinable @inline(__always)
    public static func bitmapRunMask<D: BitVectorDomain>(bit: D, count: D) -> D {
        let ones = D.constant(1).shiftedLeft(byAmount: count) &- .constant(1)
        return D.select(count.equals(.constant(64)), ~D.constant(0), ones).shiftedLeft(byAmount: bit)
    }

    /// Every frame under `mask` is free: a run may be taken.
    @inlinable @inline(__always)
    public static func bitmapRunIsFree<D: BitVectorDomain>(_ word: D, mask: D) -> D.Condition {
        (word & mask).isZero
    }

    /// Every frame under `mask` is used: a run may be released.
    @inlinable @inline(__always)
    public static func bitmapRunIsUsed<D: BitVectorDomain>(_ word: D, mask: D) -> D.Condition {
        (word & mask).equals(mask)
    }

    /// The word with the run marked used (`used`) or free.
    @inlinable @inline(__always)
    public static func bitmapMark<D: BitVectorDomain>(_ word: D, mask: D, used: D.Condition) -> D {
        D.select(used, word | mask, word & ~mask)
    }
}
