/// One nested page-table format (x86-64 EPT now; AArch64 stage 2 and RISC-V
/// Sv39x4/Sv48x4 later). The generic table does the walking, splitting and
/// book-keeping; a format only says how an entry is laid out.
public protocol PageTableFormat: Sendable {
    static var name: String { get }
    /// Number of levels; level 0 holds 4 KiB leaves, level `levels - 1` is the root.
    static var levels: Int { get }
    /// Guest-physical addresses must be below 2^guestAddressBits.
    static var guestAddressBits: Int { get }
    /// Host-physical addresses must be below 2^hostAddressBits.
    static var hostAddressBits: Int { get }
    /// What a processor must be told after access is removed or narrowed.
    static var invalidationName: String { get }

    /// True when a leaf may sit at `level` (0 always).
    static func leafAllowed(level: Int) -> Bool
    static func index(_ gpa: UInt64, level: Int) -> Int

    static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64
    static func encodeTable(_ tableHPA: UInt64) -> UInt64
    static func isPresent(_ entry: UInt64) -> Bool
    static func isLeaf(_ entry: UInt64, level: Int) -> Bool
    static func leafAddress(_ entry: UInt64, level: Int) -> UInt64
    static func leafFlags(_ entry: UInt64) -> MappingFlags
    static func tableAddress(_ entry: UInt64) -> UInt64
    static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool
    static func tableWellFormed(_ entry: UInt64) -> Bool

    /// Rejects flags the format cannot map (write-without-read, no access at all).
    static func validate(_ flags: MappingFlags) throws(PageTableError)
}

extension PageTableFormat {
    /// Bytes one entry at `level` spans: 4 KiB, 2 MiB, 1 GiB, 512 GiB.
    @inlinable public static func span(level: Int) -> UInt64 { UInt64(1) << UInt64(12 + 9 * level) }
    @inlinable public static var entriesPerTable: Int { 512 }
}
