/// Bit positions in the VMX I/O and MSR bitmaps, written once over
/// `BitVectorDomain` like every other kernel.
extension Kernels {
    /// I/O bitmap: which frame (0 = A for 0x0000-0x7FFF, 1 = B), and the
    /// bit index inside that 4 KiB frame, for a 16-bit port.
    @inlinable
    public static func ioBitmapFrame<D: BitVectorDomain>(port: D) -> D {
        port.shiftedRight(by: 15) & .constant(1)
    }

    @inlinable
    public static func ioBitmapBit<D: BitVectorDomain>(port: D) -> D {
        port & .constant(0x7FFF)
    }

    /// MSR bitmap: the bit index inside the 4 KiB frame for an access to
    /// `msr`, and whether the MSR is covered at all (outside both ranges
    /// every access exits). Quarters: read-low 0x000, read-high 0x400,
    /// write-low 0x800, write-high 0xC00 (byte offsets).
    @inlinable
    public static func msrBitmapBit<D: BitVectorDomain>(msr: D, write: D.Condition) -> (bit: D, covered: D.Condition) {
        let low = msr.unsignedLessOrEqual(to: .constant(0x1FFF))
        let high = (msr &- .constant(0xC000_0000)).unsignedLessOrEqual(to: .constant(0x1FFF))
        let quarter = D.select(low, .constant(0), .constant(0x400 * 8))
            | D.select(write, .constant(0x800 * 8), .constant(0))
        return (quarter | (msr & .constant(0x1FFF)), low.or(high))
    }
}
