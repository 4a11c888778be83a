/// The structural invariants, checked by reading every table.
extension NestedPageTable {
    // MARK: Invariants

    /// Every broken structural invariant, in words; empty when the table is sound.
    public func invariantViolations() -> [String] {
        var problems: [String] = []
        var seen = Set<UInt64>()
        var indexedTables = [0, 0]   // tables of levels 0 and 1 inside the indexed range
        func visit(_ hpa: UInt64, _ level: Int, _ tableBase: UInt64) {
            if !seen.insert(hpa).inserted { problems.append("table \(hex(hpa)) is referenced twice"); return }
            if !ownsTable(hpa) { problems.append("table \(hex(hpa)) is not owned by this table") }
            let alignment = hpa == root.raw ? Format.rootBytes : frameSize
            if hpa & (alignment - 1) != 0 { problems.append("table \(hex(hpa)) is not aligned to \(hex(alignment))") }
            let counted = nonZeroEntries(hpa, level: level)
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
            for slot in 0..<Format.entries(level: level) {
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
