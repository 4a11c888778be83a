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
    /// Every table frame this table owns, the root included.
    @exclusivity(unchecked) public private(set) var tableFrames: Set<UInt64>
    @exclusivity(unchecked) public private(set) var pendingInvalidations: [Invalidation] = []
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
        let root: HostPhysAddr
        do { root = try PhysFrame.zeroed(allocator: allocator).intoRaw() } catch {
            free(occupancy)
            throw .outOfFrames(error)
        }
        self.root = root
        rootTable = directMap.pointer(root.raw)!.assumingMemoryBound(to: UInt64.self)
        tableFrames = [root.raw]
    }

    deinit {
        for frame in tableFrames { allocator.free(HostPhysAddr(frame), count: 1) }
        free(occupancy)
    }

    public var rootLevel: Int { Format.levels - 1 }
    public var tableFrameCount: Int { tableFrames.count }

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
    private func table(at entries: UnsafeMutablePointer<UInt64>) -> EntryTable {
        EntryTable(entries, occupied: occupancy + directMap.frameIndex(of: entries))
    }

    /// A zeroed table frame for `level`, covering the guest addresses from
    /// `base` (a level-0 or level-1 table goes into its index at once).
    private func newTable(level: Int, base: UInt64) throws(PageTableError) -> UInt64 {
        let hpa: HostPhysAddr
        do { hpa = try PhysFrame.zeroed(allocator: allocator).intoRaw() } catch { throw .outOfFrames(error) }
        tableFrames.insert(hpa.raw)
        let t = table(hpa.raw)
        t.occupied.pointee = 0   // a zeroed frame: whatever an earlier table here counted is gone
        index(ofLevel: level)?.set(base, t.base)
        return hpa.raw
    }

    /// The index kept for tables of `level`, if there is one.
    @inline(__always)
    private func index(ofLevel level: Int) -> TableIndex? {
        level == 0 ? leafTables : level == 1 ? directoryTables : nil
    }

    private func freeTable(_ hpa: UInt64, level: Int, base: UInt64) {
        precondition(tableFrames.remove(hpa) != nil, "freeing table \(hex(hpa)) this table does not own")
        index(ofLevel: level)?.clear(base)
        _ = PhysFrame(unsafeAdopting: HostPhysAddr(hpa), allocator: allocator)  // dropped at once: frame returned
    }

    /// The leaf entry `e` at `level`, mapping `gpa`, as a `Leaf`.
    @inline(__always)
    static func leaf(_ e: UInt64, level: Int, gpa: UInt64) -> Leaf {
        Leaf(gpa: GuestPhysAddr(gpa), hpa: HostPhysAddr(Format.leafAddress(e, level: level)),
             pageSize: PageSize(level: level)!, flags: Format.leafFlags(e))
    }

    /// Frees a table and every table below it, reporting each leaf it held.
    /// Returns the bytes those leaves mapped.
    @discardableResult
    private func freeSubtree(_ hpa: UInt64, level: Int, base: UInt64, report: (Leaf) -> Void) -> UInt64 {
        let t = table(hpa)
        let span = Format.span(level: level)
        var bytes: UInt64 = 0
        for i in 0..<Format.entriesPerTable {
            let e = t[i]
            guard Format.isPresent(e) else { continue }
            let g = base + UInt64(i) * span
            if Format.isLeaf(e, level: level) {
                report(Self.leaf(e, level: level, gpa: g))
                bytes += span
            } else {
                bytes += freeSubtree(Format.tableAddress(e), level: level - 1, base: g, report: report)
            }
        }
        freeTable(hpa, level: level, base: base)
        return bytes
    }

    /// True when every entry is zero: the table's occupancy count.
    private func isEmpty(_ hpa: UInt64) -> Bool { table(hpa).isEmpty }

    /// Non-zero entries counted by reading all of them (the invariant check
    /// compares this with the occupancy count).
    private func nonZeroEntries(_ hpa: UInt64) -> Int {
        let t = table(hpa)
        return (0..<Format.entriesPerTable).reduce(0) { $0 + (t[$1] != 0 ? 1 : 0) }
    }

    /// The first and last slot of the table at `level` (covering guest
    /// addresses from `tableBase`) that `[lo, hi)` touches. Spans are powers
    /// of two, so this is shifts, not divisions.
    @inline(__always)
    private static func slots(_ tableBase: UInt64, _ level: Int, _ lo: UInt64, _ hi: UInt64) -> (Int, Int) {
        let shift = UInt64(12 + 9 * level)
        let tableEnd = tableBase + (UInt64(Format.entriesPerTable) << shift)
        return (Int((max(lo, tableBase) - tableBase) >> shift), Int((min(hi, tableEnd) - 1 - tableBase) >> shift))
    }

    // MARK: Validation

    private func validate(_ flags: MappingFlags) throws(PageTableError) {
        if bugs.on(.writeWithoutReadAccepted), flags.isWriteWithoutRead { return }
        try Format.validate(flags)
    }

    private func checkRange(_ gpa: GuestPhysAddr, _ size: UInt64) throws(PageTableError) {
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

    // MARK: Map

    /// Maps one page of `size` at `gpa` to `hpa`.
    public func map(_ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: PageSize, flags: MappingFlags) throws(PageTableError) {
        if !gpa.isAligned(to: size) { throw .unaligned(what: "guest address", address: gpa.raw, alignment: size.bytes) }
        if !hpa.isAligned(to: size) { throw .unaligned(what: "host address", address: hpa.raw, alignment: size.bytes) }
        try mapRegion(gpa, to: hpa, size: size.bytes, flags: flags, largest: size, smallest: size)
    }

    /// Maps `[gpa, gpa + size)` to `[hpa, hpa + size)`, each step with the
    /// largest leaf that both sides' alignment and the bytes left allow
    /// (4 KiB only when `allowHuge` is false). All or nothing: on any error
    /// the table is exactly as before and no frame is kept.
    public func mapRegion(
        _ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: UInt64, flags: MappingFlags, allowHuge: Bool = true
    ) throws(PageTableError) {
        try mapRegion(gpa, to: hpa, size: size, flags: flags, largest: allowHuge ? .size1G : .size4K, smallest: .size4K)
    }

    private func mapRegion(
        _ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: UInt64, flags: MappingFlags,
        largest: PageSize, smallest: PageSize
    ) throws(PageTableError) {
        try validate(flags)
        try checkRange(gpa, size)
        if !hpa.isAligned(to: .size4K) { throw .unaligned(what: "host address", address: hpa.raw, alignment: frameSize) }
        let hostLimit = UInt64(1) << UInt64(Format.hostAddressBits)
        if hpa.raw >= hostLimit || size > hostLimit - hpa.raw {
            throw .hostAddressOutOfRange(start: hpa, size: size, addressBits: Format.hostAddressBits)
        }

        var done: UInt64 = 0
        // The last table written into, reused while the next leaf falls in it.
        var cached: (table: EntryTable, level: Int, start: UInt64, end: UInt64)?
        do throws(PageTableError) {
            while done < size {
                let g = gpa.raw + done, h = hpa.raw + done, remaining = size - done
                var level = largest.level
                while level > smallest.level {
                    let mask = Format.span(level: level) - 1
                    if Format.leafAllowed(level: level),
                       Kernels.hugePageEligible(gpa: g, hpa: h, remaining: remaining, mask: mask) { break }
                    level -= 1
                }
                let t: EntryTable
                if let c = cached, c.level == level, g >= c.start, g < c.end {
                    t = c.table
                } else {
                    t = try walkCreating(g, to: level)
                    let tableSpan = Format.span(level: level + 1)
                    let start = g & ~(tableSpan - 1)
                    cached = (t, level, start, start + tableSpan)
                }
                let slot = Format.index(g, level: level)
                if t[slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(g)) }
                t[slot] = Format.encodeLeaf(hpa: h, flags: flags, level: level)
                done += Format.span(level: level)
            }
        } catch {
            // Everything in [gpa, gpa + done) was empty before and is whole
            // leaves now, so removing it cannot need a split (or a frame).
            if done > 0 { removeRange(gpa.raw, gpa.raw + done) }
            pruneEmptyTables(along: gpa.raw + done)
            throw error
        }
    }

    /// Maps consecutive 4 KiB pages from `gpa` to the given frames, one
    /// frame per page, in one pass that reuses the leaf table while it can.
    /// All or nothing, like `mapRegion`.
    public func mapFrames(_ gpa: GuestPhysAddr, frames: UnsafeBufferPointer<UInt64>, flags: MappingFlags) throws(PageTableError) {
        try validate(flags)
        try checkRange(gpa, UInt64(frames.count) * frameSize)
        let hostLimit = UInt64(1) << UInt64(Format.hostAddressBits)
        for f in frames where f & (frameSize - 1) != 0 || f >= hostLimit {
            throw f >= hostLimit ? .hostAddressOutOfRange(start: HostPhysAddr(f), size: frameSize, addressBits: Format.hostAddressBits)
                : .unaligned(what: "host address", address: f, alignment: frameSize)
        }
        var done = 0
        var leafTable: EntryTable?
        do throws(PageTableError) {
            while done < frames.count {
                let g = gpa.raw + UInt64(done) * frameSize
                let slot = Format.index(g, level: 0)
                if leafTable == nil || slot == 0 { leafTable = try walkCreating(g, to: 0) }
                if leafTable![slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(g)) }
                leafTable![slot] = Format.encodeLeaf(hpa: frames[done], flags: flags, level: 0)
                done += 1
            }
        } catch {
            if done > 0 { removeRange(gpa.raw, gpa.raw + UInt64(done) * frameSize) }
            pruneEmptyTables(along: gpa.raw + UInt64(done) * frameSize)
            throw error
        }
    }

    /// What placing one lazily filled 4 KiB page found.
    public enum PageFill {
        /// The page now maps this frame, the one `frame` returned.
        case filled(HostPhysAddr)
        /// Something already maps the page (a 4 KiB or a huge leaf); no
        /// frame was asked for.
        case present(Translation)
    }

    /// Maps the 4 KiB page holding `gpa` to a frame `frame` supplies, in one
    /// walk that creates the tables on the way: the fault path's map. If the
    /// page is already mapped, `frame` is not called and the answer is what
    /// `gpa` translates to. If `frame` (or a table) cannot be had, the tables
    /// this call created are freed again and the table is exactly as before.
    public func fillPage(_ gpa: GuestPhysAddr, flags: MappingFlags,
                         frame: () throws(FrameError) -> HostPhysAddr) throws(PageTableError) -> PageFill {
        precondition(gpa.raw >> UInt64(Format.guestAddressBits) == 0, "fillPage needs an address inside the format's range")
        let page = gpa.raw & ~(frameSize - 1)
        let t: EntryTable
        do { t = try walkCreating(page, to: 0) } catch {
            if case .alreadyMapped = error, let present = query(gpa) { return .present(present) }
            pruneEmptyTables(along: page)
            throw error
        }
        let slot = Format.index(page, level: 0)
        if t[slot] != 0, let present = query(gpa) { return .present(present) }
        let hpa: HostPhysAddr
        do { hpa = try frame() } catch {
            pruneEmptyTables(along: page)
            throw .outOfFrames(error)
        }
        t[slot] = Format.encodeLeaf(hpa: hpa.raw, flags: flags, level: 0)
        return .filled(hpa)
    }

    /// Removes mappings this caller just made and nobody has used, without
    /// recording an invalidation: the undo of a map inside one operation.
    /// `[gpa, gpa + size)` must consist of whole leaves.
    public func undoMap(_ gpa: GuestPhysAddr, size: UInt64) {
        removeRange(gpa.raw, gpa.raw + size)
    }

    /// The table at `level` on the path of `gpa`, creating missing tables.
    /// Throws `alreadyMapped` when a leaf above `level` covers `gpa`.
    private func walkCreating(_ gpa: UInt64, to level: Int) throws(PageTableError) -> EntryTable {
        if level == 0, let leaves = leafTables.view.table(gpa) { return table(at: leaves) }
        var hpa = root.raw
        var l = rootLevel
        while l > level {
            let t = table(hpa)
            let slot = Format.index(gpa, level: l)
            let e = t[slot]
            if !Format.isPresent(e) {
                let child = try newTable(level: l - 1, base: gpa & ~(Format.span(level: l) - 1))
                t[slot] = Format.encodeTable(child)
                hpa = child
            } else if Format.isLeaf(e, level: l) {
                throw .alreadyMapped(GuestPhysAddr(gpa & ~(Format.span(level: l) - 1)))
            } else {
                hpa = Format.tableAddress(e)
            }
            l -= 1
        }
        return table(hpa)
    }

    /// Frees the empty non-root tables on the path of `gpa`, bottom up.
    private func pruneEmptyTables(along gpa: UInt64) {
        guard gpa >> UInt64(Format.guestAddressBits) == 0 else { return }
        // Free the deepest table on the path while it is empty (no list of
        // the path: the walk is a few cache-hot loads, an array a malloc).
        while true {
            var parent = root.raw, hpa = root.raw, slot = 0, level = rootLevel
            while level > 0 {
                let s = Format.index(gpa, level: level)
                let e = table(hpa)[s]
                guard Format.isPresent(e), !Format.isLeaf(e, level: level) else { break }
                (parent, slot, hpa) = (hpa, s, Format.tableAddress(e))
                level -= 1
            }
            guard hpa != root.raw, isEmpty(hpa) else { return }
            table(parent)[slot] = 0
            freeTable(hpa, level: level, base: gpa & ~(Format.span(level: level + 1) - 1))
        }
    }

    // MARK: Unmap

    /// Removes every leaf in `[gpa, gpa + size)`; holes are skipped. Huge
    /// leaves that straddle an edge are split first so the part outside
    /// stays mapped exactly as before. Tables that become empty are freed.
    /// `removed` sees each removed leaf once the operation can no longer
    /// fail. Returns the number of bytes that were mapped and now are not.
    @discardableResult
    @_specialize(where Format == EPTFormat)
    public func unmap(_ gpa: GuestPhysAddr, size: UInt64, removed: (Leaf) -> Void = { _ in }) throws(PageTableError) -> UInt64 {
        try checkRange(gpa, size)
        let start = gpa.raw, end = gpa.raw + size
        let bytes: UInt64
        if let inOneTable = unmapInsideOneLeafTable(start, end, report: removed) {
            bytes = inOneTable
        } else {
            if !bugs.on(.partialUnmapDropsHugePage) { try splitEdges(start, end) }
            bytes = removeRange(start, end, report: removed)
        }
        if bytes > 0, !bugs.on(.noInvalidationAfterUnmap) {
            pendingInvalidations.append(Invalidation(range: try! GuestPhysRange(start: gpa, size: size), reason: .unmap))
        }
        return bytes
    }

    /// The common small unmap: `[start, end)` lies inside one region whose
    /// level-0 table the index knows, so no huge leaf can straddle it and
    /// the entries are cleared in that table directly, without a walk from
    /// the root; the table is freed (and its parents, if they empty too)
    /// when nothing is left in it. Nil when the range is not such a case.
    private func unmapInsideOneLeafTable(_ start: UInt64, _ end: UInt64, report: (Leaf) -> Void) -> UInt64? {
        let regionBase = start & ~(Format.span(level: 1) - 1)
        guard (end - 1) & ~(Format.span(level: 1) - 1) == regionBase, let entries = leafTables.view.table(start) else {
            return nil
        }
        let t = table(at: entries)
        var removed: UInt64 = 0
        for slot in Format.index(start, level: 0)...Format.index(end - 1, level: 0) {
            let e = t[slot]
            guard Format.isPresent(e) else { continue }
            t[slot] = 0
            report(Self.leaf(e, level: 0, gpa: regionBase + UInt64(slot) * frameSize))
            removed += frameSize
        }
        if t.isEmpty, !bugs.on(.emptyTablesNeverFreed) { pruneEmptyTables(along: start) }
        return removed
    }

    /// Splits the huge leaves that straddle `start` or `end`. All or nothing.
    private func splitEdges(_ start: UInt64, _ end: UInt64) throws(PageTableError) {
        var undo: [SplitRecord] = []
        do throws(PageTableError) {
            try splitAround(start, &undo)
            try splitAround(end, &undo)
        } catch {
            for record in undo.reversed() {
                table(record.parent)[record.slot] = record.oldEntry
                freeTable(record.newTable, level: record.level, base: record.base)
            }
            throw error
        }
    }

    private struct SplitRecord {
        let parent: UInt64
        let slot: Int
        let oldEntry: UInt64
        let newTable: UInt64
        let level: Int
        let base: UInt64
    }

    /// Makes `boundary` the start of a leaf (or of a hole) by splitting every
    /// huge leaf that contains it without starting at it.
    private func splitAround(_ boundary: UInt64, _ undo: inout [SplitRecord]) throws(PageTableError) {
        guard boundary >> UInt64(Format.guestAddressBits) == 0 else { return }
        var hpa = root.raw
        var l = rootLevel
        while l > 0 {
            let t = table(hpa)
            let slot = Format.index(boundary, level: l)
            let e = t[slot]
            if !Format.isPresent(e) { return }
            if Format.isLeaf(e, level: l) {
                let span = Format.span(level: l)
                if boundary & (span - 1) == 0 { return }
                let childBase = boundary & ~(span - 1)
                let child = try newTable(level: l - 1, base: childBase)
                let childTable = table(child)
                let base = Format.leafAddress(e, level: l)
                let flags = Format.leafFlags(e)
                let childSpan = Format.span(level: l - 1)
                for i in 0..<Format.entriesPerTable {
                    childTable[i] = Format.encodeLeaf(hpa: base + UInt64(i) * childSpan, flags: flags, level: l - 1)
                }
                undo.append(SplitRecord(parent: hpa, slot: slot, oldEntry: e, newTable: child, level: l - 1, base: childBase))
                t[slot] = Format.encodeTable(child)
                hpa = child
            } else {
                hpa = Format.tableAddress(e)
            }
            l -= 1
        }
    }

    /// Clears every leaf inside `[start, end)`, which must not cut a leaf,
    /// reports each removed leaf, and frees tables that become empty.
    /// Returns the bytes removed.
    @discardableResult
    private func removeRange(_ start: UInt64, _ end: UInt64, report: (Leaf) -> Void = { _ in }) -> UInt64 {
        removeRange(in: root.raw, level: rootLevel, tableBase: 0, start, end, report)
    }

    @_specialize(where Format == EPTFormat)
    private func removeRange(
        in hpa: UInt64, level: Int, tableBase: UInt64, _ start: UInt64, _ end: UInt64, _ report: (Leaf) -> Void
    ) -> UInt64 {
        let t = table(hpa)
        let span = Format.span(level: level)
        let (first, last) = Self.slots(tableBase, level, start, end)
        var removed: UInt64 = 0
        for slot in first...last {
            let e = t[slot]
            if !Format.isPresent(e) { continue }
            let entryStart = tableBase + UInt64(slot) * span
            if Format.isLeaf(e, level: level) {
                precondition(bugs.on(.partialUnmapDropsHugePage) || (entryStart >= start && entryStart + span <= end),
                             "removeRange would cut a leaf")
                t[slot] = 0
                report(Self.leaf(e, level: level, gpa: entryStart))
                removed += span
                continue
            }
            let child = Format.tableAddress(e)
            if entryStart >= start && entryStart + span <= end {
                t[slot] = 0
                removed += freeSubtree(child, level: level - 1, base: entryStart, report: report)
            } else {
                removed += removeRange(in: child, level: level - 1, tableBase: entryStart, start, end, report)
                if !bugs.on(.emptyTablesNeverFreed), isEmpty(child) {
                    t[slot] = 0
                    freeTable(child, level: level - 1, base: entryStart)
                }
            }
        }
        return removed
    }

    private func mappedBytes(in hpa: UInt64, level: Int) -> UInt64 {
        let t = table(hpa)
        var total: UInt64 = 0
        for i in 0..<Format.entriesPerTable {
            let e = t[i]
            guard Format.isPresent(e) else { continue }
            total += Format.isLeaf(e, level: level) ? Format.span(level: level) : mappedBytes(in: Format.tableAddress(e), level: level - 1)
        }
        return total
    }

    // MARK: Protect

    /// Gives every leaf in `[gpa, gpa + size)` the flags `flags`; holes are
    /// skipped. Huge leaves straddling an edge are split first. Records an
    /// invalidation when any access was removed or the memory type changed.
    /// Returns the bytes whose flags were rewritten.
    @discardableResult
    public func protect(_ gpa: GuestPhysAddr, size: UInt64, flags: MappingFlags) throws(PageTableError) -> UInt64 {
        try validate(flags)
        try checkRange(gpa, size)
        let start = gpa.raw, end = gpa.raw + size
        try splitEdges(start, end)
        var narrowed = false
        var touched: UInt64 = 0
        forEachLeafEntry(start, end) { t, slot, level in
            let old = Format.leafFlags(t[slot])
            let cacheBits: MappingFlags = [.device, .uncached]
            if !flags.isSuperset(of: old.intersection(.rwx))
                || old.intersection(cacheBits).isEmpty != flags.intersection(cacheBits).isEmpty {
                narrowed = true
            }
            t[slot] = Format.encodeLeaf(hpa: Format.leafAddress(t[slot], level: level), flags: flags, level: level)
            touched += Format.span(level: level)
        }
        if narrowed {
            pendingInvalidations.append(Invalidation(range: try! GuestPhysRange(start: gpa, size: size), reason: .protect))
        }
        return touched
    }

    /// Calls `body` with the table, slot and level of each present leaf entry in `[start, end)`.
    private func forEachLeafEntry(
        _ start: UInt64, _ end: UInt64, _ body: (EntryTable, Int, Int) -> Void
    ) {
        func visit(_ hpa: UInt64, _ level: Int, _ tableBase: UInt64) {
            let t = table(hpa)
            let span = Format.span(level: level)
            let (first, last) = Self.slots(tableBase, level, start, end)
            for slot in first...last {
                let e = t[slot]
                guard Format.isPresent(e) else { continue }
                let entryStart = tableBase + UInt64(slot) * span
                if Format.isLeaf(e, level: level) {
                    body(t, slot, level)
                } else {
                    visit(Format.tableAddress(e), level - 1, entryStart)
                }
            }
        }
        visit(root.raw, rootLevel, 0)
    }

    // MARK: Query

    /// What `gpa` maps to, or nil when it is unmapped or out of range.
    @inlinable
    public func query(_ gpa: GuestPhysAddr) -> Translation? {
        switch Self.walk(rootTable: rootTable, directMap: directMap, gpa.raw, observe: SilentWalk()) {
        case let .mapped(t): return t
        case .unmapped: return nil
        case .torn: preconditionFailure("table entry for \(gpa) points outside the allocator's window")
        }
    }

    /// Every leaf in guest-address order.
    public func forEachLeaf(_ body: (Leaf) -> Void) {
        forEachLeaf(overlapping: GuestPhysAddr(0), GuestPhysAddr(UInt64(1) << UInt64(Format.guestAddressBits)), body)
    }

    /// Every leaf that overlaps `[start, end)`, in order (huge leaves that
    /// straddle an edge are reported whole).
    public func forEachLeaf(overlapping start: GuestPhysAddr, _ end: GuestPhysAddr, _ body: (Leaf) -> Void) {
        let lo = start.raw, hi = min(end.raw, UInt64(1) << UInt64(Format.guestAddressBits))
        guard lo < hi else { return }
        func visit(_ hpa: UInt64, _ level: Int, _ tableBase: UInt64) {
            let t = table(hpa)
            let span = Format.span(level: level)
            let (first, last) = Self.slots(tableBase, level, lo, hi)
            for slot in first...last {
                let e = t[slot]
                guard Format.isPresent(e) else { continue }
                let g = tableBase + UInt64(slot) * span
                if Format.isLeaf(e, level: level) {
                    body(Self.leaf(e, level: level, gpa: g))
                } else {
                    visit(Format.tableAddress(e), level - 1, g)
                }
            }
        }
        visit(root.raw, rootLevel, 0)
    }

    public var leaves: [Leaf] {
        var result: [Leaf] = []
        forEachLeaf { result.append($0) }
        return result
    }

    /// Total bytes mapped.
    public var mappedBytes: UInt64 { mappedBytes(in: root.raw, level: rootLevel) }

    // MARK: Invariants

    /// Every broken structural invariant, in words; empty when the table is sound.
    public func invariantViolations() -> [String] {
        var problems: [String] = []
        var seen = Set<UInt64>()
        var indexedTables = [0, 0]   // tables of levels 0 and 1 inside the indexed range
        func visit(_ hpa: UInt64, _ level: Int, _ tableBase: UInt64) {
            if !seen.insert(hpa).inserted { problems.append("table \(hex(hpa)) is referenced twice"); return }
            if !tableFrames.contains(hpa) { problems.append("table \(hex(hpa)) is not owned by this table") }
            if hpa & (frameSize - 1) != 0 { problems.append("table \(hex(hpa)) is not 4 KiB aligned") }
            let counted = nonZeroEntries(hpa)
            if Int(table(hpa).occupied.pointee) != counted {
                problems.append("table \(hex(hpa)) counts \(table(hpa).occupied.pointee) entries but holds \(counted)")
            }
            if hpa != root.raw && counted == 0 { problems.append("table \(hex(hpa)) at level \(level) is empty but not freed") }
            if let index = index(ofLevel: level), let indexed = index.entry(tableBase) {
                indexedTables[level] += 1
                if indexed != UInt64(UInt(bitPattern: table(hpa).base)) {
                    problems.append("the level-\(level) table index has \(hex(indexed)) for \(hex(tableBase)), not the table \(hex(hpa))")
                }
            }
            let t = table(hpa)
            let span = Format.span(level: level)
            for slot in 0..<Format.entriesPerTable {
                let e = t[slot]
                if e == 0 { continue }
                let g = tableBase + UInt64(slot) * span
                if !Format.isPresent(e) {
                    problems.append("entry for \(hex(g)) at level \(level) is non-zero but not present: \(hex(e))")
                } else if Format.isLeaf(e, level: level) {
                    if !Format.leafAllowed(level: level) { problems.append("leaf at level \(level) for \(hex(g))") }
                    if !Format.leafWellFormed(e, level: level) {
                        problems.append("leaf for \(hex(g)) at level \(level) is malformed: \(hex(e))")
                    }
                    let h = Format.leafAddress(e, level: level)
                    if h & (span - 1) != 0 || g & (span - 1) != 0 {
                        problems.append("leaf \(hex(g)) -> \(hex(h)) is not aligned to \(hex(span))")
                    }
                } else {
                    if level == 0 { problems.append("table entry at level 0 for \(hex(g))") ; continue }
                    if !Format.tableWellFormed(e) { problems.append("table entry for \(hex(g)) is malformed: \(hex(e))") }
                    visit(Format.tableAddress(e), level - 1, g)
                }
            }
        }
        visit(root.raw, rootLevel, 0)
        for (level, index) in [leafTables, directoryTables].enumerated() where indexedTables[level] != index.liveCount {
            problems.append("the level-\(level) table index holds \(index.liveCount) tables, the table \(indexedTables[level]) in its range")
        }
        let leaked = tableFrames.subtracting(seen)
        if !leaked.isEmpty { problems.append("\(leaked.count) owned table frame(s) unreachable: \(leaked.sorted().prefix(4).map(hex))") }
        return problems
    }

    /// Traps when an invariant is broken (swift-collections style).
    public func _checkInvariants() {
        let problems = invariantViolations()
        precondition(problems.isEmpty, "page table invariants broken:\n" + problems.joined(separator: "\n"))
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
