#if canImport(Glibc)
import Glibc
#endif
import CCoreIntrinsics

/// For each region one table of a given level covers (2 MiB for level-0
/// tables, 1 GiB for level-1 tables, with 512-entry tables) of an indexed
/// guest range, the host-virtual address of the table of that level that
/// maps it, or 0: the paging-structure caches a processor keeps, kept
/// exactly by the table's writers instead of guessed by its readers.
///
/// With the level-0 index a translate reads one slot and one leaf entry,
/// two dependent loads instead of four; with the level-1 index a 2 MiB leaf
/// is one slot and its entry. Only the page table writes the slots, under
/// the address space's lock and with its sequence counter odd, when it
/// creates or frees a table of the index's level (a region mapped by a
/// larger leaf, or not at all, has slot 0 and is answered by a longer
/// path). The table's invariant check compares every slot with the tables.
///
/// The slots are calloc'd (the system hands out zero pages as they are
/// touched), 8 bytes per region of the indexed range; the range is capped
/// at `maxIndexedBytes` from the start of the managed range, and addresses
/// past it take the full walk.
@usableFromInline
final class TableIndex {
    /// 1 TiB: 4 MiB of slots at most, only the touched pages of which cost memory.
    static let maxIndexedBytes: UInt64 = 1 << 40

    @usableFromInline let view: View
    /// Non-zero slots (the invariant check compares it with the tables of
    /// the index's level). Only written under the address space's lock.
    @exclusivity(unchecked) private(set) var liveCount = 0

    /// What a reader needs: where the slots are and which regions they cover.
    @usableFromInline
    struct View: @unchecked Sendable {
        @usableFromInline let slots: UnsafeMutablePointer<UInt64>?
        @usableFromInline let firstRegion: UInt64
        @usableFromInline let regionCount: UInt64
        @usableFromInline let shift: UInt64

        /// The slot for the region holding `gpa`, or nil outside the index.
        @inlinable @inline(__always)
        func slot(_ gpa: UInt64) -> UnsafeMutablePointer<UInt64>? {
            let region = (gpa &>> shift) &- firstRegion
            guard let slots, region < regionCount else { return nil }
            return slots + Int(truncatingIfNeeded: region)
        }

        /// The table mapping `gpa`'s region, read with a relaxed atomic
        /// load (a writer may be changing it); nil when there is none or
        /// `gpa` is outside the index.
        @inlinable @inline(__always)
        func table(_ gpa: UInt64) -> UnsafeMutablePointer<UInt64>? {
            guard let slot = slot(gpa) else { return nil }
            return UnsafeMutablePointer(bitPattern: UInt(truncatingIfNeeded: hv_word_load_relaxed(slot)))
        }
    }

    /// - Parameters:
    ///   - range: the guest range to index (nil: index nothing).
    ///   - regionShift: log2 of the bytes one table of the indexed level covers.
    init(range: GuestPhysRange?, regionShift: UInt64) {
        let regionBytes = UInt64(1) << regionShift
        guard let range, range.size > 0 else {
            view = View(slots: nil, firstRegion: 0, regionCount: 0, shift: regionShift)
            return
        }
        let first = range.start.raw >> regionShift
        let indexedEnd = range.start.raw + min(range.size, Self.maxIndexedBytes)
        let count = (indexedEnd + regionBytes - 1) / regionBytes - first
        guard let memory = calloc(Int(count), MemoryLayout<UInt64>.stride) else {
            preconditionFailure("no memory for a \(count)-slot table index")
        }
        view = View(slots: memory.assumingMemoryBound(to: UInt64.self), firstRegion: first, regionCount: count, shift: regionShift)
    }

    deinit { free(view.slots) }

    /// The table at `pointer` now maps the region holding `gpa`.
    func set(_ gpa: UInt64, _ pointer: UnsafeMutablePointer<UInt64>) {
        guard let slot = view.slot(gpa) else { return }
        if slot.pointee == 0 { liveCount += 1 }
        hv_word_store_relaxed(slot, UInt64(UInt(bitPattern: pointer)))
    }

    /// The region holding `gpa` has no table of this level any more.
    func clear(_ gpa: UInt64) {
        guard let slot = view.slot(gpa), slot.pointee != 0 else { return }
        liveCount -= 1
        hv_word_store_relaxed(slot, 0)
    }

    /// What the slot for `gpa` holds (0 when empty), or nil outside the index.
    func entry(_ gpa: UInt64) -> UInt64? { view.slot(gpa).map { $0.pointee } }
}
