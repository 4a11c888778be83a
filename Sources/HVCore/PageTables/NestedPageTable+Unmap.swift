/// Unmapping: splitting huge leaves at the edges, clearing leaves, freeing
/// tables that empty, recording the invalidation.
extension NestedPageTable {
    // MARK: Unmap

    /// Removes every leaf in `[gpa, gpa + size)`; holes are skipped. Huge
    /// leaves that straddle an edge are split first so the part outside
    /// stays mapped exactly as before. Tables that become empty are freed.
    /// `removed` sees each removed leaf once the operation can no longer
    /// fail. Returns the number of bytes that were mapped and now are not.
    @discardableResult
    @_specialize(where Format == EPTFormat)
    @_specialize(where Format == Stage2IPA40Format)
    @_specialize(where Format == Sv39x4Format)
    @_specialize(where Format == Sv48x4Format)
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
            recordInvalidation(Invalidation(range: try! GuestPhysRange(start: gpa, size: size), reason: .unmap))
        }
        return bytes
    }

    /// The common small unmap: `[start, end)` lies inside one region whose
    /// level-0 table the index knows, so no huge leaf can straddle it and
    /// the entries are cleared in that table directly, without a walk from
    /// the root; the table is freed (and its parents, if they empty too)
    /// when nothing is left in it. Nil when the range is not such a case.
    func unmapInsideOneLeafTable(_ start: UInt64, _ end: UInt64, report: (Leaf) -> Void) -> UInt64? {
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
    func splitEdges(_ start: UInt64, _ end: UInt64) throws(PageTableError) {
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

    struct SplitRecord {
        let parent: UInt64
        let slot: Int
        let oldEntry: UInt64
        let newTable: UInt64
        let level: Int
        let base: UInt64
    }

    /// Makes `boundary` the start of a leaf (or of a hole) by splitting every
    /// huge leaf that contains it without starting at it.
    func splitAround(_ boundary: UInt64, _ undo: inout [SplitRecord]) throws(PageTableError) {
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
    func removeRange(_ start: UInt64, _ end: UInt64, report: (Leaf) -> Void = { _ in }) -> UInt64 {
        removeRange(in: root.raw, level: rootLevel, tableBase: 0, start, end, report)
    }

    @_specialize(where Format == EPTFormat)
    @_specialize(where Format == Stage2IPA40Format)
    @_specialize(where Format == Sv39x4Format)
    @_specialize(where Format == Sv48x4Format)
    func removeRange(
        in hpa: UInt64, level: Int, tableBase: UInt64, _ start: UInt64, _ end: UInt64, _ report: (Leaf) -> Void
    ) -> UInt64 {
        let t = table(hpa)
        let span = Format.span(level: level)
        let (first, last) = Self.slots(tableBase, level, start, end)
        if let removed = removeWholeLeaves(t, level: level, tableBase: tableBase, first, last, start, end, report) { return removed }
        var removed: UInt64 = 0
        let mayCutLeaves = bugs.on(.partialUnmapDropsHugePage)
        for slot in first...last {
            let e = t[slot]
            if !Format.isPresent(e) { continue }
            // Inside the table's span, so no overflow: wrapping arithmetic.
            let entryStart = tableBase &+ UInt64(truncatingIfNeeded: slot) &* span
            if Format.isLeaf(e, level: level) {
                // Only the first and last slot can reach past the range.
                precondition(mayCutLeaves || (slot != first && slot != last) || (entryStart >= start && entryStart &+ span <= end),
                             "removeRange would cut a leaf")
                t.clearPresent(slot)
                report(Self.leaf(e, level: level, gpa: entryStart))
                removed &+= span
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

    /// The common case of a linear map's unmap: every entry of `first...last`
    /// is a leaf wholly inside `[start, end)`. One tight pass checks that,
    /// then the leaves are reported and the entries cleared together (a
    /// third of the per-leaf work of the general loop). Nil, with nothing
    /// changed, when the slots hold anything else.
    @inline(__always)
    private func removeWholeLeaves(_ t: EntryTable, level: Int, tableBase: UInt64, _ first: Int, _ last: Int,
                                   _ start: UInt64, _ end: UInt64, _ report: (Leaf) -> Void) -> UInt64? {
        guard level > 0, Format.leafAllowed(level: level), last > first else { return nil }
        let span = Format.span(level: level)
        let firstStart = tableBase &+ UInt64(truncatingIfNeeded: first) &* span
        let lastEnd = tableBase &+ UInt64(truncatingIfNeeded: last &+ 1) &* span
        guard firstStart >= start, lastEnd <= end else { return nil }
        for slot in first...last {
            let e = t[slot]
            guard Format.isPresent(e), Format.isLeaf(e, level: level) else { return nil }
        }
        var g = firstStart
        for slot in first...last {
            report(Self.leaf(t[slot], level: level, gpa: g))
            g &+= span
        }
        t.clearPresent(first, through: last)
        return lastEnd &- firstStart
    }

    func mappedBytes(in hpa: UInt64, level: Int) -> UInt64 {
        let t = table(hpa)
        var total: UInt64 = 0
        for i in 0..<Format.entries(level: level) {
            let e = t[i]
            guard Format.isPresent(e) else { continue }
            total += Format.isLeaf(e, level: level) ? Format.span(level: level) : mappedBytes(in: Format.tableAddress(e), level: level - 1)
        }
        return total
    }
}
