import HVCore

/// A format identical to `Base` except where a mutant overrides one
/// requirement: the walks' wrong variants run the shipped walk over one.
protocol FormatMutant: PageTableFormat {
    associatedtype Base: PageTableFormat
}

extension FormatMutant {
    static var name: String { Base.name }
    static var levels: Int { Base.levels }
    static var rootEntries: Int { Base.rootEntries }
    static var guestAddressBits: Int { Base.guestAddressBits }
    static var hostAddressBits: Int { Base.hostAddressBits }
    static var invalidationName: String { Base.invalidationName }
    static func leafAllowed(level: Int) -> Bool { Base.leafAllowed(level: level) }
    static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D { Base.entryIndex(gpa, level: level) }
    static func isPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition { Base.isPresent(entry) }
    static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition { Base.isLeaf(entry, level: level) }
    static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D { Base.leafAddress(entry, level: level) }
    static func leafFlagBits<D: BitVectorDomain>(_ entry: D) -> D { Base.leafFlagBits(entry) }
    static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D { Base.tableAddress(entry) }
    static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64 { Base.encodeLeaf(hpa: hpa, flags: flags, level: level) }
    static func encodeTable(_ tableHPA: UInt64) -> UInt64 { Base.encodeTable(tableHPA) }
    static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool { Base.leafWellFormed(entry, level: level) }
    static func tableWellFormed(_ entry: UInt64) -> Bool { Base.tableWellFormed(entry) }
    static func validate(_ flags: MappingFlags) throws(PageTableError) { try Base.validate(flags) }
}

/// Upstream's Sv39x4 bug, for any format: the root indexed with 9 bits.
enum NineBitRoot<Base: PageTableFormat>: FormatMutant {
    static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D { Kernels.tableIndex(gpa, level: level) }
}

/// Reads a 2 MiB block as a table pointer.
enum BlockAsTable<Base: PageTableFormat>: FormatMutant {
    static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        level == 1 ? .constant(false) : Base.isLeaf(entry, level: level)
    }
}

/// Keeps entry bits 11:3 in a table address (a misaligned next table).
enum UnalignedTable<Base: PageTableFormat>: FormatMutant {
    static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D { Base.tableAddress(entry) | (entry & .constant(0xFF8)) }
}

/// Accepts one guest-address bit more than the format has.
enum OneBitWider<Base: PageTableFormat>: FormatMutant {
    static var guestAddressBits: Int { Base.guestAddressBits + 1 }
}

/// Sets bit 11 of every leaf's output address (a page-offset bit).
enum LeafAddressBit11<Base: PageTableFormat>: FormatMutant {
    static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D { Base.leafAddress(entry, level: level) | .constant(0x800) }
}
