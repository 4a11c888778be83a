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

    @inlinable @inline(__always) public static func index(_ gpa: UInt64, level: Int) -> Int {
        Int(truncatingIfNeeded: Kernels.tableIndex(gpa, level: level))
    }

    @inlinable public static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64 {
        Kernels.eptEncodeLeaf(hpa: hpa, flags: flags.rawValue, level: level)
    }

    @inlinable public static func encodeTable(_ tableHPA: UInt64) -> UInt64 {
        Kernels.eptEncodeTable(tableHPA: tableHPA)
    }

    @inlinable @inline(__always) public static func isPresent(_ entry: UInt64) -> Bool { Kernels.eptIsPresent(entry) }
    @inlinable @inline(__always) public static func isLeaf(_ entry: UInt64, level: Int) -> Bool { Kernels.eptIsLeaf(entry, level: level) }
    @inlinable @inline(__always) public static func leafAddress(_ entry: UInt64, level: Int) -> UInt64 {
        Kernels.eptLeafAddress(entry, level: level)
    }
    @inlinable @inline(__always) public static func leafFlags(_ entry: UInt64) -> MappingFlags {
        MappingFlags(rawValue: Kernels.eptLeafFlags(entry))
    }
    @inlinable @inline(__always) public static func tableAddress(_ entry: UInt64) -> UInt64 { entry & EPTBits.addressMask }
    @inlinable public static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool {
        Kernels.eptLeafWellFormed(entry, level: level)
    }
    @inlinable public static func tableWellFormed(_ entry: UInt64) -> Bool { Kernels.eptTableWellFormed(entry) }

    public static func validate(_ flags: MappingFlags) throws(PageTableError) { try validateCommon(flags) }
}
