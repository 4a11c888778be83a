/// The layout of one nested page-table format: how many levels, how big the
/// root is, which levels hold leaves, how entries are encoded, and what a
/// processor must be told after a change. `NestedPageTable`, `TableIndex`,
/// `AddrSpace` and the lock-free translate are generic over it; every bit
/// operation behind a format's requirements is a proved kernel in `Kernels`.
///
/// Levels count from the leaves: level 0 holds 4 KiB pages, level 1 2 MiB
/// blocks, level 2 1 GiB blocks, level `levels - 1` is the root. Every
/// table below the root has 512 entries; the root has `rootEntries`
/// (512, or more where the architecture concatenates root tables, as
/// AArch64 stage 2 does, or widens the root, as RISC-V's x4 modes do), in
/// `rootEntries / 512` contiguous frames aligned to the root's size.
public protocol PageTableFormat: Sendable {
    static var name: String { get }
    /// Number of levels; level 0 holds 4 KiB leaves, level `levels - 1` is the root.
    static var levels: Int { get }
    /// Entries of the root table: a power of two.
    static var rootEntries: Int { get }
    /// Guest-physical addresses must be below 2^guestAddressBits.
    static var guestAddressBits: Int { get }
    /// Host-physical addresses must be below 2^hostAddressBits.
    static var hostAddressBits: Int { get }
    /// What a processor must be told after access is removed or narrowed.
    static var invalidationName: String { get }

    /// True when a leaf may sit at `level` (0 always).
    static func leafAllowed(level: Int) -> Bool

    // The walk's view of an entry, generic over the bit-vector domain so
    // that the walk every translate runs is also the one the proofs run
    // (see `TableWalk`).

    /// The entry `gpa` selects in a table of `level` (the root's index is
    /// as wide as `rootEntries` needs).
    static func entryIndex<D: BitVectorDomain>(_ gpa: D, level: Int) -> D
    static func isPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition
    static func isLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition
    static func leafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D
    /// The MappingFlags raw bits of a leaf.
    static func leafFlagBits<D: BitVectorDomain>(_ entry: D) -> D
    static func tableAddress<D: BitVectorDomain>(_ entry: D) -> D

    static func encodeLeaf(hpa: UInt64, flags: MappingFlags, level: Int) -> UInt64
    static func encodeTable(_ tableHPA: UInt64) -> UInt64
    static func leafWellFormed(_ entry: UInt64, level: Int) -> Bool
    static func tableWellFormed(_ entry: UInt64) -> Bool

    /// Rejects flags the format cannot map (write-without-read, no access
    /// at all, bits with no meaning); a flag is never silently dropped.
    static func validate(_ flags: MappingFlags) throws(PageTableError)
}

extension PageTableFormat {
    /// Bytes one entry at `level` spans: 4 KiB, 2 MiB, 1 GiB, 512 GiB.
    @inlinable public static func span(level: Int) -> UInt64 { UInt64(1) << UInt64(12 + 9 * level) }
    /// Entries of every table below the root.
    @inlinable public static var entriesPerTable: Int { 512 }
    /// Entries of a table at `level`.
    @inlinable @inline(__always) public static func entries(level: Int) -> Int { level == levels - 1 ? rootEntries : 512 }
    /// Frames of the root table (contiguous, aligned to `rootBytes`).
    @inlinable public static var rootFrames: Int { max(1, rootEntries / 512) }
    @inlinable public static var rootBytes: UInt64 { UInt64(rootFrames) * 4096 }

    /// The entry `gpa` selects in a table of `level`, as a slot number.
    @inlinable @inline(__always) public static func index(_ gpa: UInt64, level: Int) -> Int {
        Int(truncatingIfNeeded: entryIndex(gpa, level: level))
    }
    @inlinable @inline(__always) public static func leafFlags(_ entry: UInt64) -> MappingFlags {
        MappingFlags(rawValue: leafFlagBits(entry))
    }

    /// The flag checks every format shares.
    public static func validateCommon(_ flags: MappingFlags) throws(PageTableError) {
        let unknown = flags.subtracting(.all)
        if !unknown.isEmpty { throw .unknownFlags(flags) }
        if flags.isWriteWithoutRead { throw .writeWithoutRead(flags) }
        if flags.grantsNoAccess { throw .noAccess(flags) }
    }
}
