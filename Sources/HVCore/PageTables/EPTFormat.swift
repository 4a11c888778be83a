/// x86-64 extended page tables: 4 levels, 48-bit guest-physical addresses,
/// 4 KiB / 2 MiB / 1 GiB leaves. Every bit operation is one of the proved
/// kernels in `Kernels`, run on `UInt64`.
public enum EPTFormat: PageTableFormat {
    public static let name = "x86-64 EPT (4-level)"
    public static let levels = 4
    public static let rootEntries = 512
    public static let guestAddressBits = 48
    public static let hostAddressBits = 52
    public static let invalidationName = "INVEPT"

    @inlinable public static func leafAllowed(level: Int) -> Bool { level <= 2 }

    @inlinable @inline(__always) public static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D {
        Kernels.tableIndex(gpa, level: level)
    }

    @inlinable @inline(__always) public static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64 {
        Kernels.eptEncodeLeaf(hpa: hpa, flags: flags.rawValue, level: level)
    }

    @inlinable public static func encodeTable(_ tableHPA: UInt64) -> UInt64 {
        Kernels.eptEncodeTable(tableHPA: tableHPA)
    }

    @inlinable @inline(__always) public static func isPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition { Kernels.eptIsPresent(entry) }
    @inlinable @inline(__always) public static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        Kernels.eptIsLeaf(entry, level: level)
    }
    @inlinable @inline(__always) public static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D {
        Kernels.eptLeafAddress(entry, level: level)
    }
    @inlinable @inline(__always) public static func leafFlagBits<D: BitVectorDomain>(_ entry: D) -> D { Kernels.eptLeafFlags(entry) }
    @inlinable @inline(__always) public static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D {
        entry & .constant(EPTBits.addressMask)
    }
    @inlinable public static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool {
        Kernels.eptLeafWellFormed(entry, level: level)
    }
    @inlinable public static func tableWellFormed(_ entry: UInt64) -> Bool { Kernels.eptTableWellFormed(entry) }

    public static func validate(_ flags: MappingFlags) throws(PageTableError) { try validateCommon(flags) }
}
