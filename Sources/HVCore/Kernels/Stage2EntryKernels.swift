/// Bit layout of AArch64 stage-2 descriptors with the 4 KiB granule
/// (Arm ARM, VMSAv8-64 "Stage 2 translation table descriptors" and
/// "Stage 2 memory region attributes"; FEAT_S2FWB off).
public enum Stage2Bits {
    /// Bit 0: valid. Bit 1: table (above the last level) or page (at the
    /// last level); clear for a block.
    public static let valid: UInt64 = 1 << 0
    public static let tableOrPage: UInt64 = 1 << 1
    /// MemAttr[3:0], bits 5:2: 0b1111 normal write-back (outer and inner),
    /// 0b0001 Device-nGnRE.
    public static let memAttrMask: UInt64 = 0b1111 << 2
    public static let memAttrNormalWB: UInt64 = 0b1111 << 2
    public static let memAttrDeviceNGnRE: UInt64 = 0b0001 << 2
    /// S2AP, bits 7:6: bit 6 grants reads, bit 7 writes (upstream read the
    /// pair the other way round).
    public static let s2apRead: UInt64 = 1 << 6
    public static let s2apWrite: UInt64 = 1 << 7
    /// SH[1:0], bits 9:8: 0b11 inner shareable (normal memory).
    public static let innerShareable: UInt64 = 0b11 << 8
    /// AF, bit 10: set, so no access-flag fault is ever taken.
    public static let accessFlag: UInt64 = 1 << 10
    /// Output address, bits 47:12.
    public static let addressMask: UInt64 = 0x0000_FFFF_FFFF_F000
    /// XN, bit 54 (XN[1] with FEAT_XNX): execute never.
    public static let executeNever: UInt64 = 1 << 54
    /// Bits 58:55 are reserved for software. HVKit keeps USER, DEVICE and
    /// UNCACHED in 57:55 so a decoded leaf gives back its exact flags.
    public static let softwareFlagsShift = 52   // MappingFlags bit 3 -> descriptor bit 55
    public static let softwareFlagsMask: UInt64 = 0b111 << 55
    /// Every bit a leaf HVKit writes may have set.
    public static let leafBits: UInt64 = valid | tableOrPage | memAttrMask | s2apRead | s2apWrite | innerShareable | accessFlag
        | addressMask | executeNever | softwareFlagsMask
}

extension Kernels {
    /// The output-address bits of a stage-2 leaf at `level` (0 = 4 KiB page,
    /// 1 = 2 MiB block, 2 = 1 GiB block): bits 47:12, 47:21 or 47:30.
    @inlinable @inline(__always)
    public static func stage2LeafAddressMask(level: Int) -> UInt64 {
        Stage2Bits.addressMask & ~((UInt64(1) << UInt64(12 + 9 * level)) - 1)
    }

    /// Encodes a stage-2 leaf mapping `hpa` with MappingFlags `flags` (raw
    /// bits) at `level`. DEVICE or UNCACHED memory is Device-nGnRE and not
    /// shareable-attributed; normal memory is write-back, inner shareable.
    /// Callers validate flags and alignment first.
    @inlinable @inline(__always)
    public static func stage2EncodeLeaf<D: BitVectorDomain>(hpa: D, flags: D, level: Int) -> D {
        let device = (flags & .constant(MappingFlags.device.rawValue | MappingFlags.uncached.rawValue)).isNonZero
        let attributes = D.select(device, .constant(Stage2Bits.memAttrDeviceNGnRE),
                                  .constant(Stage2Bits.memAttrNormalWB | Stage2Bits.innerShareable))
        let read = (flags & .constant(MappingFlags.read.rawValue)).shiftedLeft(by: 6)
        let write = (flags & .constant(MappingFlags.write.rawValue)).shiftedLeft(by: 6)
        let noExecute = D.select((flags & .constant(MappingFlags.execute.rawValue)).isZero, .constant(Stage2Bits.executeNever), .constant(0))
        let software = (flags & .constant(0b111000)).shiftedLeft(by: Stage2Bits.softwareFlagsShift)
        let kind = D.constant(level == 0 ? Stage2Bits.valid | Stage2Bits.tableOrPage : Stage2Bits.valid)
        return (hpa & .constant(stage2LeafAddressMask(level: level))) | kind | attributes | read | write
            | .constant(Stage2Bits.accessFlag) | noExecute | software
    }

    @inlinable @inline(__always)
    public static func stage2LeafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D {
        entry & .constant(stage2LeafAddressMask(level: level))
    }

    /// The MappingFlags raw bits a stage-2 leaf was encoded with.
    @inlinable @inline(__always)
    public static func stage2LeafFlags<D: BitVectorDomain>(_ entry: D) -> D {
        let readWrite = entry.shiftedRight(by: 6) & .constant(0b11)
        let execute = D.select((entry & .constant(Stage2Bits.executeNever)).isZero, .constant(MappingFlags.execute.rawValue), .constant(0))
        return readWrite | execute | (entry.shiftedRight(by: Stage2Bits.softwareFlagsShift) & .constant(0b111000))
    }

    /// A table descriptor pointing at the next-level table at `tableHPA`.
    @inlinable
    public static func stage2EncodeTable<D: BitVectorDomain>(tableHPA: D) -> D {
        (tableHPA & .constant(Stage2Bits.addressMask)) | .constant(Stage2Bits.valid | Stage2Bits.tableOrPage)
    }

    @inlinable @inline(__always)
    public static func stage2IsPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & .constant(Stage2Bits.valid)).isNonZero
    }

    /// A valid entry is a leaf at level 0 (a page) and, at levels 1 and 2,
    /// when bit 1 is clear (a block); above level 2 there are no blocks.
    @inlinable @inline(__always)
    public static func stage2IsLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        switch level {
        case 0: return .constant(true)
        case 1, 2: return (entry & .constant(Stage2Bits.tableOrPage)).isZero
        default: return .constant(false)
        }
    }

    /// A leaf HVKit could have written: the descriptor type of its level,
    /// AF set, the attribute pair of normal or device memory agreeing with
    /// the software DEVICE/UNCACHED bits, write only with read, no address
    /// bits below the block size and nothing outside the known fields.
    @inlinable
    public static func stage2LeafWellFormed<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        let kind = entry & .constant(Stage2Bits.valid | Stage2Bits.tableOrPage)
        let expectedKind = D.constant(level == 0 ? Stage2Bits.valid | Stage2Bits.tableOrPage : Stage2Bits.valid)
        let attrs = entry & .constant(Stage2Bits.memAttrMask | Stage2Bits.innerShareable)
        let softDevice = (entry & .constant((MappingFlags.device.rawValue | MappingFlags.uncached.rawValue) << Stage2Bits.softwareFlagsShift)).isNonZero
        let expectedAttrs = D.select(softDevice, .constant(Stage2Bits.memAttrDeviceNGnRE), .constant(Stage2Bits.memAttrNormalWB | Stage2Bits.innerShareable))
        let writeWithoutRead = (entry & .constant(Stage2Bits.s2apRead | Stage2Bits.s2apWrite)).equals(.constant(Stage2Bits.s2apWrite))
        let belowBlock = Stage2Bits.addressMask & ~stage2LeafAddressMask(level: level)
        return kind.equals(expectedKind)
            .and(attrs.equals(expectedAttrs))
            .and((entry & .constant(Stage2Bits.accessFlag)).isNonZero)
            .and(writeWithoutRead.negated)
            .and((entry & .constant(belowBlock | ~Stage2Bits.leafBits)).isZero)
            .and(.constant(level <= 2))
    }

    /// A table descriptor is bits 1:0 = 0b11 and the table address, nothing else.
    @inlinable
    public static func stage2TableWellFormed<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & ~D.constant(Stage2Bits.addressMask)).equals(.constant(Stage2Bits.valid | Stage2Bits.tableOrPage))
    }

    /// VTTBR_EL2: the root's address in BADDR (bits 47:1; the root is
    /// aligned to its size, so bits below 12 are zero) and the VMID in
    /// bits 63:48.
    @inlinable
    public static func vttbr<D: BitVectorDomain>(root: D, vmid: D) -> D {
        (root & .constant(Stage2Bits.addressMask)) | (vmid & .constant(0xFFFF)).shiftedLeft(by: 48)
    }

    /// VTCR_EL2 for a 4 KiB granule: T0SZ = 64 - ipaBits (5:0), SL0 (7:6;
    /// 0 starts at level 2, 1 at level 1, 2 at level 0), inner and outer
    /// write-back write-allocate walks (IRGN0 9:8 and ORGN0 11:10 = 0b01),
    /// inner shareable (SH0 13:12 = 0b11), TG0 = 4 KiB (15:14 = 0b00), PS
    /// (18:16) the output size, VS (bit 19) for 16-bit VMIDs, bit 31 RES1.
    @inlinable
    public static func vtcr(ipaBits: Int, startLevel: Int, physicalSize: UInt64, vmid16: Bool) -> UInt64 {
        let sl0: UInt64 = startLevel == 0 ? 2 : startLevel == 1 ? 1 : 0
        return UInt64(64 - ipaBits) | sl0 << 6 | 0b01 << 8 | 0b01 << 10 | 0b11 << 12 | physicalSize << 16 | (vmid16 ? 1 << 19 : 0) | 1 << 31
    }
}
