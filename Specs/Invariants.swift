import HVCore

/// DESIGN.md's invariants I1-I4 as declarative predicates over the model
/// state and what the implementation shows of itself. Each returns the
/// violations it finds, in words; empty means the invariant holds.
public enum Invariants {
    /// The host frame behind every present page of an owning area, from the
    /// implementation's leaves. Huge leaves count once per 4 KiB frame.
    static func ownedHostFrames(_ space: ObservedSpace) -> [(gpa: UInt64, host: UInt64)] {
        var result: [(UInt64, UInt64)] = []
        for leaf in space.leaves {
            guard let a = space.areas.first(where: { $0.contains(leaf.gpa.raw) }), a.backing.ownsFrames else { continue }
            for k in 0..<(leaf.pageSize.bytes / 0x1000) { result.append((leaf.gpa.raw + k * 0x1000, leaf.hpa.raw + k * 0x1000)) }
        }
        return result
    }

    /// The index of the first element of `sorted` (ascending) that is at
    /// least `value`, or nil when every element is below it. A binary
    /// search, so that checking every leaf against every table frame costs
    /// O((leaves + tables) log tables), not leaves x tables.
    static func firstIndex(notBelow value: UInt64, in sorted: [UInt64]) -> Int? {
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo < sorted.count ? lo : nil
    }

    /// The first element of `sorted` (ascending) inside `leaf`'s host range, or nil.
    static func firstFrame(under leaf: Leaf, in sorted: [UInt64]) -> UInt64? {
        let lo = leaf.hpa.raw, hi = lo + leaf.pageSize.bytes
        guard let i = firstIndex(notBelow: lo, in: sorted), sorted[i] < hi else { return nil }
        return sorted[i]
    }

    /// I1 isolation. Protects against one VM reading or writing another's
    /// memory, or its own page tables: no frame owned by an address space
    /// is reachable from two spaces (or twice from one), and no page-table
    /// frame of any space is reachable as guest memory. Linear mappings are
    /// the caller's declared sharing and are exempt, except that they too
    /// must never expose a page-table frame. A frame waiting in a space's
    /// quarantine (deferred release) backs no page and no table anywhere.
    /// A frame of a lazy window belongs to its area alone: in no other
    /// window, no table, no quarantine, and backing no page but its own.
    public static func isolation(_ o: ObservedState) -> [String] {
        var problems: [String] = []
        var owner: [UInt64: (Int, UInt64)] = [:]
        let tables = o.spaces.reduce(into: Set<UInt64>()) { $0.formUnion($1.tableFrames) }
        let sortedTables = tables.sorted()
        for (s, space) in o.spaces.enumerated() {
            for (gpa, host) in ownedHostFrames(space) {
                if let (other, otherGPA) = owner[host] {
                    problems.append("host frame \(hex(host)) backs space \(other) page \(hex(otherGPA)) and space \(s) page \(hex(gpa))")
                }
                owner[host] = (s, gpa)
            }
            for leaf in space.leaves where firstFrame(under: leaf, in: sortedTables) != nil {
                problems.append("space \(s) leaf \(leaf.gpa) exposes a page-table frame")
            }
        }
        // A frame waiting for an invalidation is no one's page and no table:
        // handing it out is what the quarantine exists to prevent.
        let quarantined = o.spaces.enumerated().flatMap { s, space in space.quarantinedFrames.map { ($0, s) } }
        var waiting: [UInt64: Int] = [:]
        for (frame, s) in quarantined {
            if let other = waiting[frame] { problems.append("frame \(hex(frame)) waits in the quarantines of spaces \(other) and \(s)") }
            waiting[frame] = s
            if tables.contains(frame) { problems.append("space \(s)'s quarantined frame \(hex(frame)) is a page table") }
        }
        var windowOwner: [UInt64: (space: Int, page: UInt64)] = [:]
        for (s, space) in o.spaces.enumerated() {
            for (area, run) in zip(space.areas.filter(\.windowed), space.windows) {
                for k in 0..<run.count {
                    let frame = run.start.raw + UInt64(k) * 0x1000, page = area.start + UInt64(k) * 0x1000
                    if let other = windowOwner[frame] {
                        problems.append("frame \(hex(frame)) is in the windows of space \(other.space) page \(hex(other.page)) and space \(s) page \(hex(page))")
                    }
                    windowOwner[frame] = (s, page)
                    if tables.contains(frame) { problems.append("space \(s)'s window frame \(hex(frame)) is a page table") }
                    if let q = waiting[frame] { problems.append("space \(s)'s window frame \(hex(frame)) also waits in space \(q)'s quarantine") }
                }
            }
        }
        for (s, space) in o.spaces.enumerated() {
            for (gpa, host) in ownedHostFrames(space) {
                if let w = windowOwner[host], w.space != s || w.page != gpa {
                    problems.append("space \(s) page \(hex(gpa)) is backed by frame \(hex(host)) of space \(w.space)'s window for page \(hex(w.page))")
                }
            }
        }
        // A reserved frame is its space's alone and no one's page: in no other
        // reserve, no table, no quarantine, no window, behind no leaf.
        var reservedBy: [UInt64: Int] = [:]
        for (s, space) in o.spaces.enumerated() {
            for frame in space.reserved {
                if let other = reservedBy[frame] { problems.append("frame \(hex(frame)) is in the reserves of spaces \(other) and \(s)") }
                reservedBy[frame] = s
                if tables.contains(frame) { problems.append("space \(s)'s reserved frame \(hex(frame)) is a page table") }
                if let q = waiting[frame] { problems.append("space \(s)'s reserved frame \(hex(frame)) waits in space \(q)'s quarantine") }
                if let w = windowOwner[frame] { problems.append("space \(s)'s reserved frame \(hex(frame)) is in space \(w.space)'s window") }
            }
        }
        let sortedReserved = reservedBy.keys.sorted()
        for (s, space) in o.spaces.enumerated() {
            for leaf in space.leaves {
                if let frame = firstFrame(under: leaf, in: sortedReserved) {
                    problems.append("space \(s) leaf \(leaf.gpa) maps space \(reservedBy[frame]!)'s reserved frame \(hex(frame))")
                }
            }
        }
        for (s, space) in o.spaces.enumerated() {
            for leaf in space.leaves where leaf.hpa.raw >= CheckerSetup.poolBase && leaf.hpa.raw < CheckerSetup.poolEnd {
                for k in 0..<(leaf.pageSize.bytes / 0x1000) {
                    if let q = waiting[leaf.hpa.raw + k * 0x1000] {
                        problems.append("space \(s) page \(hex(leaf.gpa.raw + k * 0x1000)) is backed by a frame waiting in space \(q)'s quarantine")
                    }
                }
            }
        }
        return problems
    }

    /// I2 alignment. Protects against a leaf that maps more or other memory
    /// than intended (hardware ignores low bits): every leaf is aligned to
    /// its size on both sides, every table frame to 4 KiB.
    public static func alignment(_ o: ObservedState) -> [String] {
        var problems: [String] = []
        for (s, space) in o.spaces.enumerated() {
            for leaf in space.leaves where leaf.gpa.raw % leaf.pageSize.bytes != 0 || leaf.hpa.raw % leaf.pageSize.bytes != 0 {
                problems.append("space \(s) leaf \(leaf.gpa) -> \(leaf.hpa) is not aligned to \(leaf.pageSize)")
            }
            for t in space.tableFrames where t & 0xFFF != 0 { problems.append("space \(s) table \(hex(t)) is not 4 KiB aligned") }
        }
        return problems
    }

    /// I3 non-overlap. Protects against two areas claiming one guest page
    /// (and so two backings for it): areas are sorted, disjoint, non-empty
    /// and inside the managed range, in the model and in the implementation.
    public static func nonOverlap(_ model: SpecState, _ o: ObservedState) -> [String] {
        var problems: [String] = []
        for s in model.spaces.indices {
            let managed = model.environment.managed[s]
            for (name, areas) in [("model", model.spaces[s].areas), ("implementation", o.spaces[s].areas)] {
                for (i, a) in areas.enumerated() {
                    if a.size == 0 { problems.append("\(name) space \(s): empty area at \(hex(a.start))") }
                    if a.start < managed.start.raw || a.end > managed.end.raw { problems.append("\(name) space \(s): \(a) outside \(managed)") }
                    if i > 0, areas[i - 1].end > a.start { problems.append("\(name) space \(s): \(areas[i - 1]) and \(a) overlap") }
                }
            }
        }
        return problems
    }

    /// I4 RAII. Protects against leaks and double ownership: every data
    /// frame has exactly one owner and one page; the allocator's live frames
    /// are exactly the ledger's frames plus the page tables; no free was ever
    /// refused (a double free or a free of memory nobody allocated).
    public static func raii(_ model: SpecState, _ o: ObservedState) -> [String] {
        var problems: [String] = []
        var seen: [FrameToken: UInt64] = [:]
        var waiting = Set<FrameToken>()
        for (s, space) in model.spaces.enumerated() {
            for (page, token) in space.frames {
                if model.ledger[token] != s { problems.append("token \(token) at space \(s) page \(hex(page)) is owned by \(String(describing: model.ledger[token]))") }
                if let other = seen[token] { problems.append("token \(token) is at \(hex(other)) and \(hex(page))") }
                seen[token] = page
            }
            for token in space.quarantine {
                if model.ledger[token] != s { problems.append("quarantined token \(token) of space \(s) is owned by \(String(describing: model.ledger[token]))") }
                if seen[token] != nil || !waiting.insert(token).inserted { problems.append("quarantined token \(token) is also elsewhere") }
            }
        }
        if seen.count + waiting.count != model.ledger.count {
            problems.append("ledger has \(model.ledger.count) tokens, pages hold \(seen.count) and quarantines \(waiting.count)")
        }
        // Live frames: the ledger's (quarantined data frames included), the
        // page tables, the frames of lazy windows no page uses yet, what
        // a space's quarantine holds beyond the model's data tokens (page
        // tables, and window frames never filled), and the spaces' reserves.
        let tables = o.spaces.reduce(0) { $0 + $1.tableFrames.count }
        var unfilledWindowFrames = 0
        for space in o.spaces {
            let window = Set(space.windowFrames)
            let used = ownedHostFrames(space).reduce(0) { $0 + (window.contains($1.host) ? 1 : 0) }
            unfilledWindowFrames += window.count - used
        }
        var waitingBeyondData = 0
        for (s, space) in o.spaces.enumerated() {
            let held = space.quarantinedFrames.count, data = model.spaces[s].quarantine.count
            if held < data { problems.append("space \(s) quarantines \(held) frames; the model has \(data) data frames waiting") }
            waitingBeyondData += max(0, held - data)
        }
        let reserved = o.spaces.reduce(0) { $0 + $1.reserved.count }
        if o.liveFrames != model.ledger.count + tables + waitingBeyondData + unfilledWindowFrames + reserved {
            problems.append("allocator has \(o.liveFrames) live frames; ledger \(model.ledger.count) + tables \(tables) + waiting beyond data \(waitingBeyondData) + unfilled window frames \(unfilledWindowFrames) + reserved \(reserved)")
        }
        problems += o.allocatorViolations.map { "allocator: \($0)" }
        return problems
    }

    public static func all(_ model: SpecState, _ o: ObservedState) -> [String] {
        isolation(o) + alignment(o) + nonOverlap(model, o) + raii(model, o)
    }
}
