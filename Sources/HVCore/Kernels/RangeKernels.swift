/// Half-open range predicates over (start, size) pairs. They are exact for
/// every range whose true end is at most 2^64, including ranges that end at
/// 2^64 exactly, because they only ever compare offsets, never ends.
extension Kernels {
    /// `start <= address < start + size`.
    @inlinable
    public static func rangeContainsAddress<D: BitVectorDomain>(start: D, size: D, address: D) -> D.Condition {
        // An address below start wraps to at least 2^64 - start >= size.
        (address &- start).unsignedLess(than: size)
    }

    /// Some address lies in both `[a, a + aSize)` and `[b, b + bSize)`.
    @inlinable
    public static func rangesOverlap<D: BitVectorDomain>(_ a: D, _ aSize: D, _ b: D, _ bSize: D) -> D.Condition {
        let aFirst = a.unsignedLessOrEqual(to: b)
        let gap = D.select(aFirst, b &- a, a &- b)
        let lowerSize = D.select(aFirst, aSize, bSize)
        let upperSize = D.select(aFirst, bSize, aSize)
        return gap.unsignedLess(than: lowerSize).and(upperSize.isNonZero)
    }

    /// The larger start: an address in both ranges whenever `rangesOverlap`
    /// holds (`range_overlap_complete` proves it), so an overlap finding
    /// names a witness without a solver call.
    @inlinable
    public static func overlapWitness<D: BitVectorDomain>(_ a: D, _ b: D) -> D {
        D.select(a.unsignedLessOrEqual(to: b), b, a)
    }

    /// Every address of `[inner, inner + innerSize)` lies in `[outer, outer + outerSize)`.
    /// An empty inner range is contained when its start lies in `[outer, outer + outerSize]`.
    @inlinable
    public static func rangeContains<D: BitVectorDomain>(
        outerStart: D, outerSize: D, innerStart: D, innerSize: D
    ) -> D.Condition {
        let offset = innerStart &- outerStart
        return outerStart.unsignedLessOrEqual(to: innerStart)
            .and(offset.unsignedLessOrEqual(to: outerSize))
            .and(innerSize.unsignedLessOrEqual(to: outerSize &- offset))
    }
}
