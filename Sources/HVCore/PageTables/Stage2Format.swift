/// AArch64 stage-2 translation with the 4 KiB granule (VMSAv8-64). The
/// IPA width and start level come from VTCR_EL2 (T0SZ, SL0); a start level
/// that would need fewer than nine root index bits concatenates root
/// tables instead. Every bit operation is a proved kernel in `Kernels`.
public protocol Stage2Layout: PageTableFormat {
    /// The start level in the Arm ARM's numbering (0 = the 512 GiB level).
    static var armStartLevel: Int { get }
}

extension Stage2Layout {
    public static var hostAddressBits: Int { 48 }
    public static var invalidationName: String { "TLBI IPAS2E1IS (then VMALLE1IS)" }

    @inlinable public static func leafAllowed(level: Int) -> Bool { level <= 2 }

    @inlinable @inline(__always) public static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D {
        level == levels - 1 ? Kernels.rootIndex(gpa, level: level, rootBits: rootEntries.trailingZeroBitCount) : Kernels.tableIndex(gpa, level: level)
    }

    @inlinable @inline(__always) public static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64 {
        Kernels.stage2EncodeLeaf(hpa: hpa, flags: flags.rawValue, level: level)
    }
    @inlinable public static func encodeTable(_ tableHPA: UInt64) -> UInt64 { Kernels.stage2EncodeTable(tableHPA: tableHPA) }
    @inlinable @inline(__always) public static func isPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition { Kernels.stage2IsPresent(entry) }
    @inlinable @inline(__always) public static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition { Kernels.stage2IsLeaf(entry, level: level) }
    @inlinable @inline(__always) public static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D { Kernels.stage2LeafAddress(entry, level: level) }
    @inlinable @inline(__always) public static func leafFlagBits<D: BitVectorDomain>(_ entry: D) -> D { Kernels.stage2LeafFlags(entry) }
    @inlinable @inline(__always) public static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D { entry & .constant(Stage2Bits.addressMask) }
    @inlinable public static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool { Kernels.stage2LeafWellFormed(entry, level: level) }
    @inlinable public static func tableWellFormed(_ entry: UInt64) -> Bool { Kernels.stage2TableWellFormed(entry) }
    public static func validate(_ flags: MappingFlags) throws(PageTableError) { try validateCommon(flags) }

    /// VTCR_EL2 for this layout: T0SZ, SL0, 4 KiB granule, write-back inner
    /// shareable walks, PS = 48 bits, 16-bit VMIDs.
    public static var vtcr: UInt64 { Kernels.vtcr(ipaBits: guestAddressBits, startLevel: armStartLevel, physicalSize: 0b101, vmid16: true) }
}

/// A 40-bit IPA (1 TiB, QEMU virt's default and common on boards): start
/// at level 1 with two concatenated level-1 tables, an 8 KiB root of 1024
/// entries; three levels. T0SZ = 24, SL0 = 1.
public enum Stage2IPA40Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 40-bit IPA, level-1 root of 2 concatenated tables)"
    public static let levels = 3
    public static let rootEntries = 1024
    public static let guestAddressBits = 40
    public static let armStartLevel = 1
}

/// A 32-bit IPA (4 GiB): start at level 1 with a 4-entry root; three levels.
/// T0SZ = 32, SL0 = 1.
public enum Stage2IPA32Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 32-bit IPA, 4-entry level-1 root)"
    public static let levels = 3
    public static let rootEntries = 4
    public static let guestAddressBits = 32
    public static let armStartLevel = 1
}

/// A 36-bit IPA: start at level 1 with a 64-entry root. T0SZ = 28, SL0 = 1.
public enum Stage2IPA36Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 36-bit IPA, 64-entry level-1 root)"
    public static let levels = 3
    public static let rootEntries = 64
    public static let guestAddressBits = 36
    public static let armStartLevel = 1
}

/// A 42-bit IPA: start at level 1 with eight concatenated tables, a 32 KiB
/// root of 4096 entries. T0SZ = 22, SL0 = 1.
public enum Stage2IPA42Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 42-bit IPA, level-1 root of 8 concatenated tables)"
    public static let levels = 3
    public static let rootEntries = 4096
    public static let guestAddressBits = 42
    public static let armStartLevel = 1
}

/// A 44-bit IPA: start at level 0 with a 32-entry root; four levels.
/// T0SZ = 20, SL0 = 2.
public enum Stage2IPA44Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 44-bit IPA, 32-entry level-0 root)"
    public static let levels = 4
    public static let rootEntries = 32
    public static let guestAddressBits = 44
    public static let armStartLevel = 0
}

/// A 48-bit IPA: start at level 0 with one 512-entry table; four levels.
/// T0SZ = 16, SL0 = 2.
public enum Stage2IPA48Format: Stage2Layout {
    public static let name = "AArch64 stage 2 (4 KiB granule, 48-bit IPA, level-0 root)"
    public static let levels = 4
    public static let rootEntries = 512
    public static let guestAddressBits = 48
    public static let armStartLevel = 0
}

extension NestedPageTable where Format: Stage2Layout {
    /// VTTBR_EL2: the root's address and the VMID.
    public func vttbr(vmid: UInt16) -> UInt64 { Kernels.vttbr(root: root.raw, vmid: UInt64(vmid)) }
}
