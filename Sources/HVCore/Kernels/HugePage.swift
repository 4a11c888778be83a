extension Kernels {
    /// A leaf of size `mask + 1` may map `gpa -> hpa` when both sides are
    /// aligned to it and at least that many bytes of the request remain.
    @inlinable
    public static func hugePageEligible<D: BitVectorDomain>(
        gpa: D, hpa: D, remaining: D, mask: D
    ) -> D.Condition {
        isAligned(gpa, mask: mask)
            .and(isAligned(hpa, mask: mask))
            .and(mask.unsignedLess(than: remaining))
    }
}
