/// Changing the flags of mapped leaves.
extension NestedPageTable {
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
            recordInvalidation(Invalidation(range: try! GuestPhysRange(start: gpa, size: size), reason: .protect))
        }
        return touched
    }

    /// Calls `body` with the table, slot and level of each present leaf entry in `[start, end)`.
    func forEachLeafEntry(
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
}
