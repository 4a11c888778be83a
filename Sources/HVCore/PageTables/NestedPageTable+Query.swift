/// Reading the table: query, the leaf visitors, mapped bytes.
extension NestedPageTable {
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
}
