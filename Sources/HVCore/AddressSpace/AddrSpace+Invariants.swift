/// The address space's structural invariants, checkable after any operation.
extension AddrSpace {
    /// Every broken invariant, in words; empty when the space is sound:
    /// areas sorted, disjoint and inside the managed range; every present
    /// leaf inside exactly one area and agreeing with its backend and flags;
    /// fixed-backend and eager areas fully present; no frame of an owning
    /// area used twice; no reserved frame mapped, a table or held twice; and
    /// the page table's own invariants.
    public func invariantViolations() -> [String] {
        state.withLock { s -> [String] in
            var problems = s.table.invariantViolations() + s.areas.invariantViolations()
            let areas = s.areas.all
            for (i, a) in areas.enumerated() {
                if a.size == 0 || a.start & (frameSize - 1) != 0 || a.size & (frameSize - 1) != 0 {
                    problems.append("area \(a) is empty or unaligned")
                }
                if !Kernels.rangeContains(outerStart: range.start.raw, outerSize: range.size, innerStart: a.start, innerSize: a.size) {
                    problems.append("area \(a) is outside \(range)")
                }
                if i > 0, areas[i - 1].end > a.start { problems.append("areas \(areas[i - 1]) and \(a) overlap or are unsorted") }
            }
            var owned = Set<UInt64>()
            var present = [UInt64](repeating: 0, count: areas.count)
            var areaIndex = 0
            s.table.forEachLeaf { leaf in
                let g = leaf.gpa.raw, size = leaf.pageSize.bytes
                while areaIndex < areas.count, areas[areaIndex].end <= g { areaIndex += 1 }
                guard areaIndex < areas.count, areas[areaIndex].start <= g else {
                    problems.append("leaf \(leaf.gpa) belongs to no area"); return
                }
                let a = areas[areaIndex]
                if g + size > a.end { problems.append("leaf \(leaf.gpa) +\(hex(size)) runs past area \(a)") }
                if leaf.flags != a.flags { problems.append("leaf \(leaf.gpa) has \(leaf.flags), area \(a.flags)") }
                if let host = a.fixedHost(g), host != leaf.hpa.raw {
                    problems.append("leaf \(leaf.gpa) -> \(leaf.hpa), backend says \(hex(host))")
                }
                if a.backend.ownsFrames {
                    for k in 0..<(size / frameSize) where !owned.insert(leaf.hpa.raw + k * frameSize).inserted {
                        problems.append("frame \(hex(leaf.hpa.raw + k * frameSize)) is mapped twice")
                    }
                }
                present[areaIndex] += size
            }
            for (i, a) in areas.enumerated() where present[i] != a.size {
                if case .alloc(.lazy) = a.backend { continue }
                problems.append("area \(a) has \(hex(present[i])) of \(hex(a.size)) bytes present")
            }
            // The reserve: distinct frames, none mapped, none a page table, at most one refill's worth.
            var reserved = Set<UInt64>()
            for f in s.reserve.frames {
                if !reserved.insert(f).inserted { problems.append("frame \(hex(f)) is in the reserve twice") }
                if owned.contains(f) { problems.append("reserved frame \(hex(f)) is mapped") }
                if s.table.ownsTable(f) { problems.append("reserved frame \(hex(f)) is a page table") }
                if f & (frameSize - 1) != 0 { problems.append("reserved frame \(hex(f)) is not 4 KiB aligned") }
            }
            if s.reserve.count > Self.maxReserveBatch { problems.append("the reserve holds \(s.reserve.count) frames, more than one refill gives") }
            return problems
        }
    }

    /// Traps when an invariant is broken.
    public func _checkInvariants() {
        let problems = invariantViolations()
        precondition(problems.isEmpty, "address space invariants broken:\n" + problems.joined(separator: "\n"))
    }

    /// Frames owned by Alloc and identity areas that are mapped now.
    public var ownedFrameCount: Int {
        state.withLock { s -> Int in
            var total: UInt64 = 0
            for a in s.areas.all where a.backend.ownsFrames {
                s.table.forEachLeaf(overlapping: GuestPhysAddr(a.start), GuestPhysAddr(a.end)) { total += $0.pageSize.bytes / frameSize }
            }
            return Int(total)
        }
    }
}
