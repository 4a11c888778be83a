/// Page-index split and recombination for a 4-level table of 512-entry
/// tables over 48-bit addresses (x86-64 EPT and 4-level paging).
extension Kernels {
    public static let indexBits = 9
    public static let indexMask: UInt64 = 0x1FF
    public static let pageShift = 12
    public static let addressBits48 = 48

    /// The table index an address selects at `level` (0 = the 4 KiB level).
    @inlinable @inline(__always)
    public static func tableIndex<D: BitVectorDomain>(_ address: D, level: Int) -> D {
        address.shiftedRight(by: pageShift + indexBits * level) & .constant(indexMask)
    }

    @inlinable
    public static func pageOffset4K<D: BitVectorDomain>(_ address: D) -> D {
        address & .constant(0xFFF)
    }

    /// True when the address fits in 48 bits. Addresses that do not are
    /// rejected by the table, never folded into another entry.
    @inlinable
    public static func fitsIn48Bits<D: BitVectorDomain>(_ address: D) -> D.Condition {
        address.shiftedRight(by: addressBits48).isZero
    }

    /// The inverse of `tableIndex` and `pageOffset4K`: every index is masked to
    /// 9 bits and the offset to 12, so no field can spill into its neighbour.
    @inlinable
    public static func recombine<D: BitVectorDomain>(
        _ l3: D, _ l2: D, _ l1: D, _ l0: D, offset: D
    ) -> D {
        let m = D.constant(indexMask)
        return (l3 & m).shiftedLeft(by: pageShift + 3 * indexBits)
            | (l2 & m).shiftedLeft(by: pageShift + 2 * indexBits)
            | (l1 & m).shiftedLeft(by: pageShift + indexBits)
            | (l0 & m).shiftedLeft(by: pageShift)
            | (offset & .constant(0xFFF))
    }

    /// The index into a root table of `2^rootBits` entries at `level`: a
    /// concatenated AArch64 root (1024 entries for a 40-bit IPA from level
    /// 1) or a RISC-V x4 root (2048 entries) takes more address bits than
    /// a 512-entry table. Upstream indexed the Sv39x4 root with 9 bits and
    /// lost GPA bits 40:39.
    @inlinable @inline(__always)
    public static func rootIndex<D: BitVectorDomain>(_ address: D, level: Int, rootBits: Int) -> D {
        address.shiftedRight(by: pageShift + indexBits * level) & .constant((UInt64(1) << UInt64(rootBits)) - 1)
    }
}
