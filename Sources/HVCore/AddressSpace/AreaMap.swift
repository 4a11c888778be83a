/// Areas ordered by start address, with O(log n) lookup. Stored as a short
/// list of sorted chunks of at most `chunkCapacity` areas (a two-level
/// B-tree): lookup is two binary searches, insertion and removal move at
/// most one chunk's worth of elements plus the chunk index.
struct AreaMap: Sendable {
    static let chunkCapacity = 64

    private var chunks: [[Area]] = []
    private var firstStarts: [UInt64] = []
    private(set) var count = 0
    /// The area the last fault found (`area(rememberingContaining:)`):
    /// faults come in runs over one area. Every change forgets it.
    private var recent = Area(start: 0, size: 0, flags: [], backend: .reserved)
    /// False once anything changed since `recent` was found (one store per
    /// change, where clearing `recent` would write the whole area).
    private var recentValid = false

    var isEmpty: Bool { count == 0 }

    /// Index of the last chunk whose first start is <= key, or nil.
    private func chunkIndex(atOrBefore key: UInt64) -> Int? {
        let lo = firstStarts.withUnsafeBufferPointer { starts in
            var lo = 0, hi = starts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if starts[mid] <= key { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        return lo == 0 ? nil : lo - 1
    }

    /// Index in chunk `c` of the first area whose start is > key.
    private func upperBound(_ c: Int, _ key: UInt64) -> Int {
        chunks[c].withUnsafeBufferPointer { Self.upperBound($0, key) }
    }

    @inline(__always)
    private static func upperBound(_ chunk: UnsafeBufferPointer<Area>, _ key: UInt64) -> Int {
        var lo = 0, hi = chunk.count
        while lo < hi {
            let mid = (lo &+ hi) >> 1
            if chunk[mid].start <= key { lo = mid &+ 1 } else { hi = mid }
        }
        return lo
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

    mutating func insert(_ area: Area) {
        recentValid = false
        count += 1
        if chunks.isEmpty {
            chunks = [[area]]
            firstStarts = [area.start]
            return
        }
        let c = chunkIndex(atOrBefore: area.start) ?? 0
        let i = upperBound(c, area.start)
        chunks[c].insert(area, at: i)
        if i == 0 { firstStarts[c] = area.start }
        if chunks[c].count > Self.chunkCapacity {
            let upper = Array(chunks[c][(Self.chunkCapacity / 2)...])
            chunks[c].removeSubrange((Self.chunkCapacity / 2)...)
            chunks.insert(upper, at: c + 1)
            firstStarts.insert(upper[0].start, at: c + 1)
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
        if all.count != count { problems.append("count \(count) != \(all.count)") }
        if recentValid, area(containing: recent.start) != recent { problems.append("the remembered area \(recent) is not an area of the map") }
        return problems
    }
}
