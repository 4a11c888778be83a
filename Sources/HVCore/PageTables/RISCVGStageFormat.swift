/// RISC-V G-stage translation (the H extension's Sv39x4 and Sv48x4): the
/// root is widened by two bits to 2048 entries, 16 KiB aligned to 16 KiB;
/// every table below it has 512 entries. Every bit operation is a proved
/// kernel in `Kernels`. DEVICE and UNCACHED use Svpbmt's PBMT field
/// (henvcfg.PBMTE must be set).
public protocol RISCVGStageLayout: PageTableFormat {
    /// hgatp.MODE: 8 for Sv39x4, 9 for Sv48x4.
    static var hgatpMode: UInt64 { get }
}

extension RISCVGStageLayout {
    public static var rootEntries: Int { 2048 }
    public static var hostAddressBits: Int { 56 }
    public static var invalidationName: String { "HFENCE.GVMA" }

    @inlinable public static func leafAllowed(level: Int) -> Bool { level <= 2 }

    @inlinable @inline(__always) public static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D {
        level == levels - 1 ? Kernels.rootIndex(gpa, level: level, rootBits: 11) : Kernels.tableIndex(gpa, level: level)
    }

    @inlinable @inline(__always) public static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64 {
        Kernels.riscvEncodeLeaf(hpa: hpa, flags: flags.rawValue, level: level)
    }
    @inlinable public static func encodeTable(_ tableHPA: UInt64) -> UInt64 { Kernels.riscvEncodeTable(tableHPA: tableHPA) }
    @inlinable @inline(__always) public static func isPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition { Kernels.riscvIsPresent(entry) }
    @inlinable @inline(__always) public static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition { Kernels.riscvIsLeaf(entry, level: level) }
    @inlinable @inline(__always) public static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D { Kernels.riscvLeafAddress(entry, level: level) }
    @inlinable @inline(__always) public static func leafFlagBits<D: BitVectorDomain>(_ entry: D) -> D { Kernels.riscvLeafFlags(entry) }
    @inlinable @inline(__always) public static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D { Kernels.riscvTableAddress(entry) }
    @inlinable public static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool { Kernels.riscvLeafWellFormed(entry, level: level) }
    @inlinable public static func tableWellFormed(_ entry: UInt64) -> Bool { Kernels.riscvTableWellFormed(entry) }
    public static func validate(_ flags: MappingFlags) throws(PageTableError) { try validateCommon(flags) }
}

/// Sv39x4: 41-bit guest-physical addresses, three levels, 2048-entry root.
public enum Sv39x4Format: RISCVGStageLayout {
    public static let name = "RISC-V Sv39x4 (G-stage, 41-bit GPA, 16 KiB root)"
    public static let levels = 3
    public static let guestAddressBits = 41
    public static let hgatpMode: UInt64 = 8
}

/// Sv48x4: 50-bit guest-physical addresses, four levels, 2048-entry root.
public enum Sv48x4Format: RISCVGStageLayout {
    public static let name = "RISC-V Sv48x4 (G-stage, 50-bit GPA, 16 KiB root)"
    public static let levels = 4
    public static let guestAddressBits = 50
    public static let hgatpMode: UInt64 = 9
}

extension NestedPageTable where Format: RISCVGStageLayout {
    /// hgatp: the mode, the VMID and the root's PPN.
    public func hgatp(vmid: UInt16) -> UInt64 { Kernels.hgatp(root: root.raw, vmid: UInt64(vmid), mode: Format.hgatpMode) }
}
