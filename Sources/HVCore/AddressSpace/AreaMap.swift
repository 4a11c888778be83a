import CCoreIntrinsics

/// Areas ordered by start address, with O(log n) lookup. Stored as a short
/// list of sorted chunks of at most `chunkCapacity` areas (a two-level
/// B-tree): lookup is two binary searches, insertion and removal move at
/// most one chunk's worth of elements plus the chunk index.
struct AreaMap: Sendable {
    /// 32 areas (1.75 KiB): with 64, a small map among 10,000 areas spent
    /// 15% longer in the chunk's search and insertion (A/B).
    static let chunkCapacity = 32

    private var chunks: [[Area]] = []
    private var firstStarts: [UInt64] = []
    private(set) var count = 0
    /// The area the last fault found (`area(rememberingContaining:)`):
    /// faults come in runs over one area. Every change forgets it.
    private var recent = Area(start: 0, size: 0, flags: [], backend: .reserved)
    /// False once anything changed since `recent` was found (one store per
    /// change, where clearing `recent` would write the whole area).
    private var recentValid = false
    /// Counts changes, so a `Slot` found before one is refused after it.
    private var generation: UInt64 = 0

    init() {
        // What the searches' reading of the starts as words relies on.
        precondition(_isPOD(Area.self) && MemoryLayout<Area>.offset(of: \.start) == 0 && MemoryLayout<Area>.stride % 8 == 0)
    }

    var isEmpty: Bool { count == 0 }

    /// Index of the last chunk whose first start is <= key, or nil.
    private func chunkIndex(atOrBefore key: UInt64) -> Int? {
        let lo = firstStarts.withUnsafeBufferPointer { hv_count_at_or_below($0.baseAddress, 1, $0.count, key) }
        return lo == 0 ? nil : lo - 1
    }

    /// Index in chunk `c` of the first area whose start is > key.
    private func upperBound(_ c: Int, _ key: UInt64) -> Int {
        chunks[c].withUnsafeBufferPointer { Self.upperBound($0, key) }
    }

    /// The first area in `chunk` whose start is > key: a search without
    /// data-dependent branches (`hv_count_at_or_below`) over the areas'
    /// first words, their starts.
    @inline(__always)
    private static func upperBound(_ chunk: UnsafeBufferPointer<Area>, _ key: UInt64) -> Int {
        // SAFETY: Area is trivial and starts with its UInt64 start (init checks), so each element's first word is that start.
        return UnsafeRawPointer(chunk.baseAddress).map {
            hv_count_at_or_below($0.assumingMemoryBound(to: UInt64.self), MemoryLayout<Area>.stride / 8, chunk.count, key)
        } ?? 0
    }

    /// Position of the last area starting at or before `key`.
    private func position(atOrBefore key: UInt64) -> (chunk: Int, index: Int)? {
        guard let c = chunkIndex(atOrBefore: key) else { return nil }
        return (c, upperBound(c, key) - 1)
    }

    /// The area containing `gpa` (the fault path's lookup: one pass over
    /// each level, no second indexing of the chunk).
    func area(containing gpa: UInt64) -> Area? {
        guard let c = chunkIndex(atOrBefore: gpa) else { return nil }
        return chunks.withUnsafeBufferPointer { chunks in
            chunks[c].withUnsafeBufferPointer { chunk in
                // The chunk's first start is <= gpa, so the bound is >= 1.
                let a = chunk[Self.upperBound(chunk, gpa) - 1]
                return a.contains(gpa) ? a : nil
            }
        }
    }

    /// `area(containing:)`, checking the area the last call found first.
    @inline(__always)
    mutating func area(rememberingContaining gpa: UInt64) -> Area? {
        if recentValid, recent.contains(gpa) { return recent }
        guard let found = area(containing: gpa) else { return nil }
        recent = found
        recentValid = true
        return found
    }

    /// Areas that overlap `[lo, hi)`, in order.
    func areas(overlapping lo: UInt64, _ hi: UInt64) -> [Area] {
        var result: [Area] = []
        var c: Int, i: Int
        if let p = position(atOrBefore: lo) {
            (c, i) = p
            if chunks[c][i].end <= lo { i += 1 }
        } else {
            (c, i) = (0, 0)
        }
        while c < chunks.count {
            if i >= chunks[c].count { c += 1; i = 0; continue }
            let a = chunks[c][i]
            if a.start >= hi { break }
            result.append(a)
            i += 1
        }
        return result
    }

    /// The first area that overlaps `[lo, hi)`, without building a list:
    /// one search (a second one would cost its mispredicted branches again).
    func firstArea(overlapping lo: UInt64, _ hi: UInt64) -> Area? {
        var c = 0, i = 0
        if let p = position(atOrBefore: lo) {
            (c, i) = p
            if chunks[c][i].end > lo { return chunks[c][i] }
            i += 1
            if i == chunks[c].count { (c, i) = (c + 1, 0) }
        }
        guard c < chunks.count, chunks[c][i].start < hi else { return nil }
        return chunks[c][i]
    }

    func overlapsAny(_ lo: UInt64, _ hi: UInt64) -> Bool {
        if let p = position(atOrBefore: lo), chunks[p.chunk][p.index].end > lo { return true }
        // The first area starting after lo.
        guard let next = first(after: lo) else { return false }
        return next.start < hi
    }

    private func first(after key: UInt64) -> Area? {
        let c = chunkIndex(atOrBefore: key) ?? 0
        guard c < chunks.count else { return nil }
        let i = upperBound(c, key)
        if i < chunks[c].count { return chunks[c][i] }
        return c + 1 < chunks.count ? chunks[c + 1][0] : nil
    }

    /// Where an area starting at some address goes, as `placement` or
    /// `slot(forStart:)` found it; good until the map next changes.
    struct Slot {
        fileprivate let chunk: Int, index: Int, generation: UInt64
    }

    /// What is at `[lo, hi)`: the slot a new area there would take, or the
    /// first area in the way.
    enum Placement {
        case free(Slot)
        case taken(Area)
    }

    /// One search for both questions a map operation asks: is `[lo, hi)`
    /// free, and where would its area go (`insert(_:at:)`).
    func placement(_ lo: UInt64, _ hi: UInt64) -> Placement {
        guard let c = chunkIndex(atOrBefore: lo) else {
            // Before every area (or none at all).
            if let first = chunks.first?.first, first.start < hi { return .taken(first) }
            return .free(Slot(chunk: 0, index: 0, generation: generation))
        }
        return chunks.withUnsafeBufferPointer { chunks in
            chunks[c].withUnsafeBufferPointer { chunk in
                // The chunk's first start is <= lo, so the bound is >= 1.
                let i = Self.upperBound(chunk, lo)
                if chunk[i &- 1].end > lo { return .taken(chunk[i &- 1]) }
                let next = i < chunk.count ? chunk[i] : c + 1 < chunks.count ? chunks[c + 1].first : nil
                if let next, next.start < hi { return .taken(next) }
                return .free(Slot(chunk: c, index: i, generation: generation))
            }
        }
    }

    /// The slot an area starting at `start` takes, whatever it overlaps.
    func slot(forStart start: UInt64) -> Slot {
        let c = chunkIndex(atOrBefore: start) ?? 0
        return Slot(chunk: c, index: chunks.isEmpty ? 0 : upperBound(c, start), generation: generation)
    }

    mutating func insert(_ area: Area) {
        insert(area, at: slot(forStart: area.start))
    }

    /// Inserts `area` at the slot found for its start since the last change.
    mutating func insert(_ area: Area, at slot: Slot) {
        precondition(slot.generation == generation, "an AreaMap slot used after the map changed")
        recentValid = false
        generation &+= 1
        count += 1
        if chunks.isEmpty {
            chunks = [[area]]
            firstStarts = [area.start]
            return
        }
        let (c, i) = (slot.chunk, slot.index)
        Self.insert(area, at: i, into: &chunks[c])
        if i == 0 { firstStarts[c] = area.start }
        if chunks[c].count > Self.chunkCapacity {
            let upper = Array(chunks[c][(Self.chunkCapacity / 2)...])
            chunks[c].removeSubrange((Self.chunkCapacity / 2)...)
            chunks.insert(upper, at: c + 1)
            firstStarts.insert(upper[0].start, at: c + 1)
        }
    }

    /// `chunk.insert(area, at: i)` as one append and one memmove: Array's
    /// generic `replaceSubrange` cost a small map about 240 instructions.
    private static func insert(_ area: Area, at i: Int, into chunk: inout [Area]) {
        let n = chunk.count
        precondition(i >= 0 && i <= n)
        chunk.append(area)
        guard i < n else { return }
        chunk.withUnsafeMutableBufferPointer { b in
            // SAFETY: Area is trivial (init checks), both ranges lie in the n + 1 initialized elements, and copyMemory allows overlap.
            UnsafeMutableRawPointer(b.baseAddress! + i + 1).copyMemory(from: b.baseAddress! + i, byteCount: (n - i) * MemoryLayout<Area>.stride)
            b[i] = area
        }
    }

    /// Removes and returns the area that contains all of `[lo, hi)`, or
    /// returns nil and changes nothing: one search where looking the area
    /// up and then removing it would take two.
    mutating func removeArea(covering lo: UInt64, _ hi: UInt64) -> Area? {
        guard let p = position(atOrBefore: lo) else { return nil }
        let a = chunks[p.chunk][p.index]
        guard a.contains(lo), a.end >= hi else { return nil }
        remove(at: p)
        return a
    }

    private mutating func remove(at p: (chunk: Int, index: Int)) {
        recentValid = false
        generation &+= 1
        chunks[p.chunk].remove(at: p.index)
        count -= 1
        if chunks[p.chunk].isEmpty {
            chunks.remove(at: p.chunk)
            firstStarts.remove(at: p.chunk)
        } else if p.index == 0 {
            firstStarts[p.chunk] = chunks[p.chunk][0].start
        }
    }

    /// Removes the area starting exactly at `start`.
    @discardableResult
    mutating func remove(startingAt start: UInt64) -> Area? {
        guard let p = position(atOrBefore: start), chunks[p.chunk][p.index].start == start else { return nil }
        let removed = chunks[p.chunk][p.index]
        remove(at: p)
        return removed
    }

    mutating func removeAll() {
        recentValid = false
        generation &+= 1
        chunks = []
        firstStarts = []
        count = 0
    }

    var all: [Area] { chunks.flatMap { $0 } }

    /// Structural problems, in words.
    func invariantViolations() -> [String] {
        var problems: [String] = []
        if chunks.count != firstStarts.count { problems.append("chunk index out of step") }
        for (c, chunk) in chunks.enumerated() {
            if chunk.isEmpty { problems.append("empty chunk \(c)") }
            if chunk.count > Self.chunkCapacity { problems.append("chunk \(c) over capacity") }
            if c < firstStarts.count, let first = chunk.first, first.start != firstStarts[c] {
                problems.append("chunk \(c) first start out of date")
            }
        }
        let all = self.all
        if all.count != count { problems.append("count \(count) != \(all.count)") }
        // The searches rely on this order.
        for (a, b) in zip(all, all.dropFirst()) where a.start >= b.start {
            problems.append("area at \(hex(a.start)) before the one at \(hex(b.start))")
            break
        }
        if recentValid, area(containing: recent.start) != recent { problems.append("the remembered area \(recent) is not an area of the map") }
        return problems
    }
}
