/// EPT pointer (VMCS field 0x201A) layout: memory type 2:0, walk length - 1
/// in 5:3, accessed/dirty enable bit 6, reserved 11:7, root table 51:12.
extension Kernels {
    public static let eptpReservedLow: UInt64 = 0b11111 << 7

    @inlinable
    public static func eptPointer<D: BitVectorDomain>(
        root: D, memoryType: D, walkLength: D, accessedDirty: D.Condition
    ) -> D {
        (root & .constant(EPTBits.addressMask))
            | (memoryType & .constant(0b111))
            | ((walkLength &- .constant(1)) & .constant(0b111)).shiftedLeft(by: 3)
            | D.select(accessedDirty, .constant(1 << 6), .constant(0))
    }
}
