#if canImport(Glibc)
import Glibc
#endif
/// A nested (second-stage) page table in real hardware layout, generic over
/// its entry format. It owns its table frames (and frees them when dropped or
/// when they become empty); the data frames its leaves point at belong to
/// whoever mapped them.
///
/// Not thread-safe by itself: an address space serialises access with its lock.
public final class NestedPageTable<Format: PageTableFormat> {
    public let allocator: any FrameAllocator
    @usableFromInline let directMap: DirectMap
    public let root: HostPhysAddr
    /// The root frame seen through the window.
    @usableFromInline let rootTable: UnsafeMutablePointer<UInt64>
    // The two mutable properties skip the runtime exclusivity check (about
    // 250 instructions per small unmap): the table is only ever used by one
    // thread at a time (its address space's lock) and never re-entered.
    /// The table frames this table owns, the root's first frame included:
    /// one bit per frame of the allocator's window (zero-filled memory the
    /// system hands out as it is touched), where a hash set cost a table's
    /// creation and its freeing about 250 instructions each (callgrind).
    @usableFromInline let tableBits: UnsafeMutablePointer<UInt64>
    let tableBitWords: Int
    /// Frames set in `tableBits`.
    @exclusivity(unchecked) public internal(set) var ownedTableCount = 0
    @exclusivity(unchecked) public internal(set) var pendingInvalidations: [Invalidation] = []
    /// When set, frames this table or its owner release wait in `quarantine`
    /// until the caller completes the invalidation (`InvalidationToken`).
    @exclusivity(unchecked) public internal(set) var defersRelease = false
    /// Released frames not yet returned to the allocator (deferred release).
    @exclusivity(unchecked) public internal(set) var quarantine: [FrameRun] = []
    let bugs: SeededBugSwitch
    /// Non-zero entries of each table, indexed by the table frame's number
    /// in the allocator's window (two bytes per frame of the window, in
    /// zero-filled memory the system hands out as it is touched).
    @usableFromInline let occupancy: UnsafeMutablePointer<UInt16>
    /// The level-0 table of each 2 MiB region of the indexed range.
    @usableFromInline let leafTables: TableIndex
    /// The level-1 table of each 1 GiB region of the indexed range.
    @usableFromInline let directoryTables: TableIndex

    /// - Parameter indexing: the guest range whose level-0 and level-1
    ///   tables are indexed for two-load lookups (an address space passes
    ///   its managed range; nil indexes nothing).
    public convenience init(allocator: any FrameAllocator, indexing: GuestPhysRange? = nil) throws(PageTableError) {
        try self.init(allocator: allocator, bugs: SeededBugSwitch(nil), indexing: indexing)
    }

    init(allocator: any FrameAllocator, bugs: SeededBugSwitch, indexing: GuestPhysRange? = nil) throws(PageTableError) {
        self.allocator = allocator
        self.bugs = bugs
        leafTables = TableIndex(range: indexing, regionShift: UInt64(12 + 9))
        directoryTables = TableIndex(range: indexing, regionShift: UInt64(12 + 2 * 9))
        directMap = allocator.directMap
        let windowFrames = Int(directMap.size / frameSize)
        guard let counts = calloc(max(windowFrames, 1), MemoryLayout<UInt16>.stride) else {
            preconditionFailure("no memory for the occupancy counts of a \(windowFrames)-frame window")
        }
        occupancy = counts.assumingMemoryBound(to: UInt16.self)
        tableBitWords = max((windowFrames + 63) / 64, 1)
        guard let bits = calloc(tableBitWords, MemoryLayout<UInt64>.stride) else {
            preconditionFailure("no memory for the table bitmap of a \(windowFrames)-frame window")
        }
        tableBits = bits.assumingMemoryBound(to: UInt64.self)
        let root: HostPhysAddr
        do { root = try Self.allocateRoot(allocator) } catch {
            free(occupancy)
            free(tableBits)
            throw .outOfFrames(error)
        }
        self.root = root
        rootTable = directMap.pointer(root.raw)!.assumingMemoryBound(to: UInt64.self)
        precondition(markTable(root.raw))
    }

    /// The bit of `hpa` in `tableBits`: word and mask; traps outside the window.
    @inline(__always)
    private func tableBit(_ hpa: UInt64) -> (word: Int, mask: UInt64) {
        let offset = hpa &- directMap.physicalBase
        precondition(hpa >= directMap.physicalBase && offset < directMap.size && offset & (frameSize - 1) == 0,
                     "table frame \(hex(hpa)) is outside the allocator's window")
        let f = Int(truncatingIfNeeded: offset &>> 12)
        return (f &>> 6, UInt64(1) &<< UInt64(f & 63))
    }

    /// Records `hpa` as one of this table's frames; false if it already was.
    func markTable(_ hpa: UInt64) -> Bool {
        let (w, mask) = tableBit(hpa)
        // SAFETY: w < tableBitWords, since hpa lies inside the window.
        if tableBits[w] & mask != 0 { return false }
        tableBits[w] |= mask
        ownedTableCount &+= 1
        return true
    }

    /// Forgets `hpa` as one of this table's frames; false if it was not.
    func unmarkTable(_ hpa: UInt64) -> Bool {
        let (w, mask) = tableBit(hpa)
        // SAFETY: w < tableBitWords, since hpa lies inside the window.
        if tableBits[w] & mask == 0 { return false }
        tableBits[w] &= ~mask
        ownedTableCount &-= 1
        return true
    }

    /// True when `hpa` is one of this table's frames (the root's first frame included).
    public func ownsTable(_ hpa: UInt64) -> Bool {
        guard hpa >= directMap.physicalBase, hpa &- directMap.physicalBase < directMap.size, hpa & (frameSize - 1) == 0 else { return false }
        let (w, mask) = tableBit(hpa)
        // SAFETY: w < tableBitWords, since hpa lies inside the window.
        return tableBits[w] & mask != 0
    }

    /// Every table frame this table owns, the root's first frame included.
    public var tableFrames: Set<UInt64> {
        var frames = Set<UInt64>(minimumCapacity: ownedTableCount)
        for w in 0..<tableBitWords {
            // SAFETY: w < tableBitWords.
            var word = tableBits[w]
            while word != 0 {
                frames.insert(directMap.physicalBase &+ UInt64(w &* 64 &+ word.trailingZeroBitCount) &* frameSize)
                word &= word &- 1
            }
        }
        return frames
    }

    /// A zeroed root: one frame, or `rootFrames` contiguous frames aligned
    /// to the root's size (a 16 KiB Sv39x4 root on a 16 KiB boundary).
    static func allocateRoot(_ allocator: any FrameAllocator) throws(FrameError) -> HostPhysAddr {
        if Format.rootFrames == 1 { return try PhysFrame.zeroedTable(allocator: allocator).intoRaw() }
        let root = try allocator.allocateContiguous(count: Format.rootFrames, alignment: Format.rootBytes)
        // SAFETY: the allocator just handed out these rootFrames frames, inside its window.
        allocator.directMap.pointer(root.raw)!.initializeMemory(as: UInt8.self, repeating: 0, count: Int(Format.rootBytes))
        return root
    }

    deinit {
        // Dropping the table ends the guest's reach through it: whoever drops
        // it has torn down what ran on it.
        for run in quarantine { allocator.free(run.start, count: run.count) }
        for frame in tableFrames { allocator.free(HostPhysAddr(frame), count: frame == root.raw ? Format.rootFrames : 1) }
        free(occupancy)
        free(tableBits)
    }

    public var rootLevel: Int { Format.levels - 1 }
    /// Frames of table memory, the root's `rootFrames` included.
    public var tableFrameCount: Int { ownedTableCount + Format.rootFrames - 1 }

    /// Recorded invalidations beyond which they collapse into one for the
    /// whole space, so a caller that rarely takes them holds a bounded list.
    public static var maxPendingInvalidations: Int { 64 }

    /// Records an invalidation; past the bound, one `everything` record
    /// replaces the list.
    func recordInvalidation(_ invalidation: Invalidation) {
        if let only = pendingInvalidations.first, only.reason == .everything { return }
        if pendingInvalidations.count < Self.maxPendingInvalidations {
            pendingInvalidations.append(invalidation)
            return
        }
        let all = try! GuestPhysRange(start: GuestPhysAddr(0), size: UInt64(1) << UInt64(Format.guestAddressBits))
        pendingInvalidations = [Invalidation(range: all, reason: .everything)]
    }

    /// Returns and clears the invalidations recorded since the last call.
    public func takePendingInvalidations() -> [Invalidation] {
        defer { pendingInvalidations.removeAll() }
        return pendingInvalidations
    }

    // MARK: Entry access

    @inlinable
    func table(_ hpa: UInt64) -> EntryTable {
        guard let p = directMap.pointer(hpa) else {
            preconditionFailure("table frame \(hex(hpa)) is outside the allocator's window")
        }
        return EntryTable(p.assumingMemoryBound(to: UInt64.self), occupied: occupancy + Int((hpa &- directMap.physicalBase) >> 12))
    }

    /// The table whose entries start at `entries` (a pointer an index gave).
    @inline(__always)
    func table(at entries: UnsafeMutablePointer<UInt64>) -> EntryTable {
        EntryTable(entries, occupied: occupancy + directMap.frameIndex(of: entries))
    }

    /// A zeroed table frame for `level`, covering the guest addresses from
    /// `base` (a level-0 or level-1 table goes into its index at once).
    func newTable(level: Int, base: UInt64) throws(PageTableError) -> UInt64 {
        let hpa: HostPhysAddr
        do { hpa = try PhysFrame.zeroedTable(allocator: allocator).intoRaw() } catch { throw .outOfFrames(error) }
        precondition(markTable(hpa.raw), "table \(hex(hpa.raw)) handed out twice")
        let t = table(hpa.raw)
        t.occupied.pointee = 0   // a zeroed frame: whatever an earlier table here counted is gone
        index(ofLevel: level)?.set(base, t.base)
        return hpa.raw
    }

    /// The index kept for tables of `level`, if there is one.
    @inline(__always)
    func index(ofLevel level: Int) -> TableIndex? {
        level == 0 ? leafTables : level == 1 ? directoryTables : nil
    }

    func freeTable(_ hpa: UInt64, level: Int, base: UInt64) {
        precondition(unmarkTable(hpa), "freeing table \(hex(hpa)) this table does not own")
        index(ofLevel: level)?.clear(base)
        // An empty table is all zero bytes (its count is of non-zero entries).
        release(HostPhysAddr(hpa), count: 1, zeroed: isEmpty(hpa))
    }

    /// Returns frames a change released: to the allocator at once, or,
    /// while releases are deferred, to the quarantine.
    ///
    /// - Parameter zeroed: the frames read as zero (an emptied table), so
    ///   the allocator may hand them out unzeroed. Frames that wait in the
    ///   quarantine lose that: they are released as any others.
    public func release(_ start: HostPhysAddr, count: Int, zeroed: Bool = false) {
        if defersRelease, !bugs.on(.releaseBeforeInvalidation) {
            if let last = quarantine.last, last.start.raw + UInt64(last.count) * 4096 == start.raw {
                quarantine[quarantine.count - 1] = FrameRun(start: last.start, count: last.count + count)
            } else {
                quarantine.append(FrameRun(start: start, count: count))
            }
        } else if zeroed {
            allocator.freeZeroed(start, count: count)
        } else {
            allocator.free(start, count: count)
        }
    }

    /// `release` for several runs: one allocator call when nothing defers.
    public func release(runs: UnsafeBufferPointer<FrameRun>) {
        if defersRelease, !bugs.on(.releaseBeforeInvalidation) {
            for run in runs { release(run.start, count: run.count) }
        } else if !runs.isEmpty {
            allocator.free(runs: runs)
        }
    }

    /// Frames waiting in the quarantine.
    public var quarantinedFrameCount: Int { quarantine.reduce(0) { $0 + $1.count } }

    /// The leaf entry `e` at `level`, mapping `gpa`, as a `Leaf`.
    @inline(__always)
    static func leaf(_ e: UInt64, level: Int, gpa: UInt64) -> Leaf {
        Leaf(gpa: GuestPhysAddr(gpa), hpa: HostPhysAddr(Format.leafAddress(e, level: level)),
             pageSize: PageSize(level: level)!, flags: Format.leafFlags(e))
    }

    /// Frees a table and every table below it, reporting each leaf it held;
    /// each entry is cleared as it is read, so the freed frames are zero.
    /// Returns the bytes those leaves mapped.
    @discardableResult
    func freeSubtree(_ hpa: UInt64, level: Int, base: UInt64, report: (Leaf) -> Void) -> UInt64 {
        let t = table(hpa)
        let span = Format.span(level: level)
        var bytes: UInt64 = 0
        // Every entry is zeroed here, so the count is set once at the end.
        // The addresses stay inside the table's span: wrapping arithmetic.
        for i in 0..<Format.entries(level: level) {
            let e = t[i]
            guard e != 0 else { continue }
            t.clearUncounted(i)
            guard Format.isPresent(e) else { continue }
            let g = base &+ UInt64(truncatingIfNeeded: i) &* span
            if Format.isLeaf(e, level: level) {
                report(Self.leaf(e, level: level, gpa: g))
                bytes &+= span
            } else {
                bytes &+= freeSubtree(Format.tableAddress(e), level: level - 1, base: g, report: report)
            }
        }
        t.markEmpty()
        freeTable(hpa, level: level, base: base)
        return bytes
    }

    /// True when every entry is zero: the table's occupancy count.
    func isEmpty(_ hpa: UInt64) -> Bool { table(hpa).isEmpty }

    /// Non-zero entries counted by reading all of them (the invariant check
    /// compares this with the occupancy count).
    func nonZeroEntries(_ hpa: UInt64, level: Int) -> Int {
        let t = table(hpa)
        return (0..<Format.entries(level: level)).reduce(0) { $0 + (t[$1] != 0 ? 1 : 0) }
    }

    /// The first and last slot of the table at `level` (covering guest
    /// addresses from `tableBase`) that `[lo, hi)` touches. Spans are powers
    /// of two, so this is shifts, not divisions.
    @inline(__always)
    static func slots(_ tableBase: UInt64, _ level: Int, _ lo: UInt64, _ hi: UInt64) -> (Int, Int) {
        let shift = UInt64(12 + 9 * level)
        let tableEnd = tableBase + (UInt64(Format.entries(level: level)) << shift)
        return (Int((max(lo, tableBase) - tableBase) >> shift), Int((min(hi, tableEnd) - 1 - tableBase) >> shift))
    }

    // MARK: Validation

    func validate(_ flags: MappingFlags) throws(PageTableError) {
        if bugs.on(.writeWithoutReadAccepted), flags.isWriteWithoutRead { return }
        try Format.validate(flags)
    }

    func checkRange(_ gpa: GuestPhysAddr, _ size: UInt64) throws(PageTableError) {
        if size == 0 { throw .emptyRange(gpa) }
        if !gpa.isAligned(to: .size4K) { throw .unaligned(what: "guest address", address: gpa.raw, alignment: frameSize) }
        if !Kernels.isAligned(size, mask: PageSize.size4K.mask) {
            throw .unaligned(what: "size", address: size, alignment: frameSize)
        }
        let limit = UInt64(1) << UInt64(Format.guestAddressBits)
        if gpa.raw >= limit || size > limit - gpa.raw {
            throw .guestAddressOutOfRange(start: gpa, size: size, addressBits: Format.guestAddressBits)
        }
    }

}

extension NestedPageTable where Format == EPTFormat {
    /// The EPT pointer for this table: memory type WB, 4-level walk, optional
    /// accessed/dirty flags.
    public func eptPointer(accessedDirty: Bool = false) -> UInt64 {
        Kernels.eptPointer(root: root.raw, memoryType: EPTBits.memoryTypeWB, walkLength: 4, accessedDirty: accessedDirty)
    }
}

public typealias EPTPageTable = NestedPageTable<EPTFormat>
