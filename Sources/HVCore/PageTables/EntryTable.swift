import CCoreIntrinsics

/// One table frame seen as its 512 (or however many) 64-bit entries, with
/// the count of its non-zero entries, which every store keeps up to date (so
/// "is this table empty" is one load, not a scan).
///
/// The address space's optimistic translate walks tables without its lock
/// while a writer holding the lock may be changing them, and a sequence
/// counter then tells the reader whether what it saw can be trusted (see
/// `AddrSpace.translate`). So every store, and every load made outside the
/// lock (`sharedLoad`), is a relaxed atomic access, never a data race; loads
/// under the lock race with no store and stay plain, so scans of a whole
/// table can be vectorised. On x86-64 and AArch64 each atomic access is one
/// plain load or store.
@usableFromInline
struct EntryTable {
    @usableFromInline let base: UnsafeMutablePointer<UInt64>
    /// Non-zero entries in this table (kept by the subscript's setter).
    @usableFromInline let occupied: UnsafeMutablePointer<UInt16>

    @inlinable init(_ base: UnsafeMutablePointer<UInt64>, occupied: UnsafeMutablePointer<UInt16>) {
        self.base = base
        self.occupied = occupied
    }

    /// A load that may run while a writer changes the entry.
    @inlinable
    static func sharedLoad(_ base: UnsafeMutablePointer<UInt64>, _ slot: Int) -> UInt64 { hv_word_load_relaxed(base + slot) }

    @inlinable
    subscript(slot: Int) -> UInt64 {
        get { base[slot] }
        nonmutating set {
            let was = base[slot] != 0, now = newValue != 0
            if was != now { occupied.pointee = now ? occupied.pointee &+ 1 : occupied.pointee &- 1 }
            hv_word_store_relaxed(base + slot, newValue)
        }
    }

    /// Zeroes an entry known to be non-zero (an unmap's removal): the
    /// setter without its compare.
    @inlinable
    func clearPresent(_ slot: Int) {
        occupied.pointee &-= 1
        hv_word_store_relaxed(base + slot, 0)
    }

    /// Zeroes the entries `first...last`, all known to be non-zero.
    @inlinable
    func clearPresent(_ first: Int, through last: Int) {
        for slot in first...last { hv_word_store_relaxed(base + slot, 0) }
        occupied.pointee &-= UInt16(truncatingIfNeeded: last &- first &+ 1)
    }

    /// Zeroes an entry of a table about to be emptied whole (`freeSubtree`),
    /// leaving the count to `markEmpty`.
    @inlinable
    func clearUncounted(_ slot: Int) { hv_word_store_relaxed(base + slot, 0) }

    /// Sets the count to zero once `clearUncounted` has zeroed every entry.
    @inlinable
    func markEmpty() { occupied.pointee = 0 }

    var isEmpty: Bool { occupied.pointee == 0 }
}

/// What one walk of a table found.
@usableFromInline
enum WalkResult {
    case mapped(Translation)
    case unmapped
    /// An entry pointed outside the allocator's window: only possible when
    /// the walk raced with a writer and read an entry being rewritten.
    case torn
}

extension NestedPageTable {
    /// The walk behind `query` and the address space's lock-free translate:
    /// reads only through `directMap`, never traps on what it reads.
    /// `rootTable` is the root frame's pointer (fixed for the table's life, so
    /// only the addresses read from entries need the window check).
    /// `observe` runs after each entry is read (debug builds use it to stop a
    /// walk half way through; release builds pass `SilentWalk`).
    @inlinable @inline(__always)
    static func walk<O: WalkObserver>(rootTable: UnsafeMutablePointer<UInt64>, directMap: DirectMap, _ g: UInt64,
                                      observe: O) -> WalkResult {
        var memory = WindowTableMemory(directMap: directMap, observe: observe)
        return result(Format.walkFromRoot(&memory, root: rootTable, g), g)
    }

    /// The shipped form of a walk's answer.
    @inlinable @inline(__always)
    static func result(_ answer: WalkAnswer<UInt64>, _ g: UInt64) -> WalkResult {
        if answer.torn { return .torn }
        guard answer.mapped else { return .unmapped }
        guard let size = PageSize(level: Int(truncatingIfNeeded: answer.level)) else { return .torn }
        return .mapped(Translation(hostAddress: HostPhysAddr(answer.hostAddress), flags: MappingFlags(rawValue: answer.flags),
                                   pageSize: size, leafStart: GuestPhysAddr(g & ~(size.bytes - 1))))
    }
}

extension NestedPageTable {
    /// The lock-free translate's short path: the entry for `g` in the table
    /// of `level` (0 or 1) a table index gave; the index read stands for the
    /// entries above and is reported to `observe` as level `level + 1`. A
    /// table entry where a leaf or nothing was expected (a region the
    /// level-0 index does not cover, or a writer at work) is `torn`: the
    /// caller walks from the root. The same walk as the full one, started
    /// at `level` and stopped there.
    @inlinable @inline(__always)
    static func shortWalk<O: WalkObserver>(table: UnsafeMutablePointer<UInt64>, level: Int, _ g: UInt64, observe: O) -> WalkResult {
        observe.entryRead(level: level + 1)
        // The walk stops at `level`, so it never asks the memory for a next
        // table: an empty window (which would refuse one) is all it needs.
        var memory = WindowTableMemory(directMap: DirectMap(physicalBase: 0, virtualBase: UnsafeMutableRawPointer(table), size: 0),
                                       observe: observe)
        return result(Format.walk(&memory, from: table, level: level, through: level, g, when: true), g)
    }
}

/// Sees each step of a walk.
@usableFromInline
protocol WalkObserver {
    func entryRead(level: Int)
}

/// The observer of every shipped walk: does nothing, costs nothing.
@usableFromInline
struct SilentWalk: WalkObserver {
    @inlinable init() {}
    @inlinable @inline(__always) func entryRead(level: Int) {}
}
