import HVCore

/// The reference model of a nested page table: a sorted list of disjoint
/// guest intervals, each mapped linearly to host memory with one set of
/// flags. It knows nothing of levels, entries or huge pages, so agreeing with
/// it checks the table's translations, not its structure.
public struct IntervalModel: Equatable, CustomStringConvertible {
    public struct Interval: Equatable, CustomStringConvertible {
        public var gpa: UInt64
        public var size: UInt64
        public var hpa: UInt64
        public var flags: MappingFlags
        public var end: UInt64 { gpa + size }
        public var description: String { "[\(hex(gpa)), \(hex(end))) -> \(hex(hpa)) \(flags)" }
    }

    public private(set) var intervals: [Interval] = []
    public init() {}

    public var mappedBytes: UInt64 { intervals.reduce(0) { $0 + $1.size } }

    public func overlaps(_ gpa: UInt64, _ size: UInt64) -> Bool {
        intervals.contains { $0.gpa < gpa + size && gpa < $0.end }
    }

    public func translate(_ gpa: UInt64) -> (hpa: UInt64, flags: MappingFlags)? {
        for i in intervals where gpa >= i.gpa && gpa < i.end { return (i.hpa + (gpa - i.gpa), i.flags) }
        return nil
    }

    public mutating func map(_ gpa: UInt64, _ size: UInt64, _ hpa: UInt64, _ flags: MappingFlags) {
        precondition(!overlaps(gpa, size))
        intervals.append(Interval(gpa: gpa, size: size, hpa: hpa, flags: flags))
        intervals.sort { $0.gpa < $1.gpa }
    }

    /// Applies `change` to the parts of intervals inside `[gpa, gpa + size)`:
    /// nil removes them. Returns the bytes affected.
    @discardableResult
    public mutating func update(_ gpa: UInt64, _ size: UInt64, _ change: (MappingFlags) -> MappingFlags?) -> UInt64 {
        let end = gpa + size
        var result: [Interval] = []
        var affected: UInt64 = 0
        for i in intervals {
            guard i.gpa < end && gpa < i.end else { result.append(i); continue }
            if i.gpa < gpa { result.append(Interval(gpa: i.gpa, size: gpa - i.gpa, hpa: i.hpa, flags: i.flags)) }
            let lo = max(i.gpa, gpa), hi = min(i.end, end)
            affected += hi - lo
            if let f = change(i.flags) {
                result.append(Interval(gpa: lo, size: hi - lo, hpa: i.hpa + (lo - i.gpa), flags: f))
            }
            if i.end > end { result.append(Interval(gpa: end, size: i.end - end, hpa: i.hpa + (end - i.gpa), flags: i.flags)) }
        }
        intervals = result
        return affected
    }

    /// Merges neighbours that are contiguous on both sides with equal flags,
    /// so that two models of the same mapping compare equal.
    public var normalized: [Interval] {
        var out: [Interval] = []
        for i in intervals {
            if var last = out.last, last.end == i.gpa, last.hpa + last.size == i.hpa, last.flags == i.flags {
                last.size += i.size
                out[out.count - 1] = last
            } else {
                out.append(i)
            }
        }
        return out
    }

    /// The model a table's leaves describe.
    public static func from(leaves: [Leaf]) -> IntervalModel {
        var m = IntervalModel()
        m.intervals = leaves.map { Interval(gpa: $0.gpa.raw, size: $0.pageSize.bytes, hpa: $0.hpa.raw, flags: $0.flags) }
        return m
    }

    public var description: String { normalized.map(\.description).joined(separator: "\n") }
}
