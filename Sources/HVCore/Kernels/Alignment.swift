extension Kernels {
    /// Clears the bits of `mask` (a page size minus one).
    @inlinable
    public static func alignDown<D: BitVectorDomain>(_ x: D, mask: D) -> D {
        x & ~mask
    }

    /// Rounds `x` up to the next multiple of `mask + 1`. `fits` is false exactly
    /// when the true result is 2^64 or more; `value` is meaningless then.
    @inlinable
    public static func alignUp<D: BitVectorDomain>(_ x: D, mask: D) -> (value: D, fits: D.Condition) {
        let value = (x &+ mask) & ~mask
        let fits = x.unsignedLessOrEqual(to: ~mask)  // x <= 2^64 - 1 - mask
        return (value, fits)
    }

    @inlinable
    public static func isAligned<D: BitVectorDomain>(_ x: D, mask: D) -> D.Condition {
        (x & mask).isZero
    }
}
