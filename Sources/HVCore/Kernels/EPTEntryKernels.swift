/// Bit layout of x86-64 EPT entries (Intel SDM Vol. 3C, "EPT Translation Mechanism").
public enum EPTBits {
    public static let read: UInt64 = 1 << 0
    public static let write: UInt64 = 1 << 1
    public static let execute: UInt64 = 1 << 2
    public static let permissions: UInt64 = 0b111
    /// Memory type, bits 5:3 of a leaf. Reserved (must be zero) in non-leaf entries.
    public static let memoryTypeShift = 3
    public static let memoryTypeMask: UInt64 = 0b111 << 3
    public static let ignorePAT: UInt64 = 1 << 6
    /// Bit 7: a leaf in a PDPTE (1 GiB) or PDE (2 MiB); reserved in a PML4E.
    public static let largePage: UInt64 = 1 << 7
    public static let accessed: UInt64 = 1 << 8
    public static let dirty: UInt64 = 1 << 9
    /// Bits 51:12, the physical address of a 4 KiB page or of the next table.
    public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
    /// Bits 56:52 are ignored by the processor. HVKit keeps the MappingFlags
    /// the hardware cannot express there (USER, DEVICE, UNCACHED), so that a
    /// decoded leaf gives back exactly the flags it was mapped with.
    public static let softwareFlagsShift = 49  // MappingFlags bit 3 -> entry bit 52
    public static let softwareFlagsMask: UInt64 = 0b111 << 52
    /// Bits that must be zero in any entry HVKit writes: 51:N is folded into
    /// the address mask (N = 52), bits 63:57 carry features HVKit does not use.
    public static let unusedHighBits: UInt64 = 0xFE00_0000_0000_0000

    public static let memoryTypeUC: UInt64 = 0
    public static let memoryTypeWB: UInt64 = 6
}

extension Kernels {
    /// The address bits of a leaf at `level`: bits 51:12, 51:21 or 51:30.
    @inlinable @inline(__always)
    public static func eptLeafAddressMask(level: Int) -> UInt64 {
        EPTBits.addressMask & ~((UInt64(1) << UInt64(12 + 9 * level)) - 1)
    }

    /// Encodes a leaf mapping `hpa` with MappingFlags `flags` (raw bits) at
    /// `level` (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB). Memory type is UC for DEVICE
    /// or UNCACHED and WB otherwise. Callers validate flags and alignment first.
    @inlinable @inline(__always)
    public static func eptEncodeLeaf<D: BitVectorDomain>(hpa: D, flags: D, level: Int) -> D {
        let cacheDisabled = (flags & .constant(MappingFlags.device.rawValue | MappingFlags.uncached.rawValue)).isNonZero
        let memoryType = D.select(cacheDisabled,
                                  .constant(EPTBits.memoryTypeUC << 3),
                                  .constant(EPTBits.memoryTypeWB << 3))
        let software = (flags & .constant(0b111000)).shiftedLeft(by: EPTBits.softwareFlagsShift)
        let large = D.constant(level > 0 ? EPTBits.largePage : 0)
        return (hpa & .constant(eptLeafAddressMask(level: level)))
            | (flags & .constant(EPTBits.permissions))
            | memoryType | large | software
    }

    /// The host address a leaf at `level` maps.
    @inlinable @inline(__always)
    public static func eptLeafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D {
        entry & .constant(eptLeafAddressMask(level: level))
    }

    /// The MappingFlags raw bits a leaf was encoded with.
    @inlinable @inline(__always)
    public static func eptLeafFlags<D: BitVectorDomain>(_ entry: D) -> D {
        (entry & .constant(EPTBits.permissions))
            | (entry.shiftedRight(by: EPTBits.softwareFlagsShift) & .constant(0b111000))
    }

    /// A non-leaf entry pointing at the table at `tableHPA`: full R|W|X so the
    /// leaves alone decide the access.
    @inlinable
    public static func eptEncodeTable<D: BitVectorDomain>(tableHPA: D) -> D {
        (tableHPA & .constant(EPTBits.addressMask)) | .constant(EPTBits.permissions)
    }

    /// An EPT entry is present when any of R, W, X is set.
    @inlinable @inline(__always)
    public static func eptIsPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & .constant(EPTBits.permissions)).isNonZero
    }

    /// True for a present entry that is a leaf at `level`: always at level 0,
    /// bit 7 at levels 1 and 2, never at level 3.
    @inlinable @inline(__always)
    public static func eptIsLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        switch level {
        case 0: return .constant(true)
        case 1, 2: return (entry & .constant(EPTBits.largePage)).isNonZero
        default: return .constant(false)
        }
    }

    /// The memory types the SDM allows in a leaf: UC(0), WC(1), WT(4), WP(5), WB(6).
    @inlinable
    public static func eptMemoryTypeValid<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        let type = entry.shiftedRight(by: EPTBits.memoryTypeShift) & .constant(0b111)
        return type.equals(.constant(2)).or(type.equals(.constant(3))).or(type.equals(.constant(7))).negated
    }

    /// Write permission without read permission is an EPT misconfiguration.
    @inlinable
    public static func eptWriteWithoutRead<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & .constant(EPTBits.read | EPTBits.write)).equals(.constant(EPTBits.write))
    }

    /// A present leaf at `level` is well formed: no write-without-read, a valid
    /// memory type, no reserved address bits below the page size, bit 7 set
    /// exactly for huge leaves, and no bits HVKit never writes.
    @inlinable
    public static func eptLeafWellFormed<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        let belowPage = EPTBits.addressMask & ~eptLeafAddressMask(level: level)
        let bit7Expected = D.constant(level > 0 ? EPTBits.largePage : 0)
        return eptIsPresent(entry)
            .and(eptWriteWithoutRead(entry).negated)
            .and(eptMemoryTypeValid(entry))
            .and((entry & .constant(belowPage | EPTBits.unusedHighBits)).isZero)
            .and((entry & .constant(EPTBits.largePage)).equals(bit7Expected))
            .and(.constant(level <= 2))
    }

    /// A non-leaf entry is well formed: R|W|X all set, memory type and bit 7
    /// (reserved there) clear, nothing but the table address otherwise.
    @inlinable
    public static func eptTableWellFormed<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & ~D.constant(EPTBits.addressMask)).equals(.constant(EPTBits.permissions))
    }
}
