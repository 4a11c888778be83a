import HVCore

/// Every pair of overlapping ranges, by sort and sweep: ranges are taken in
/// start order, each is paired with every earlier range still open (whose
/// end lies past its start), and ranges that ended are dropped. n ranges
/// cost O(n log n) plus the pairs; no pair is lost behind a range that
/// happened to reach further.
public enum OverlapSweep {
    public struct Span: Sendable {
        public enum Kind: Sendable, Equatable { case ram, passthrough, deviceTree, emulated }
        public let start: UInt64, size: UInt64
        public let kind: Kind
        public let name: String
        public let line: Int?

        public init(start: UInt64, size: UInt64, kind: Kind, name: String, line: Int?) {
            self.start = start
            self.size = size
            self.kind = kind
            self.name = name
            self.line = line
        }

        var end: UInt128 { UInt128(start) + UInt128(size) }
    }

    /// The pairs, each with a witness address inside both: the proved
    /// `Kernels.overlapWitness` (the larger start), checked by the
    /// proved overlap predicate.
    public static func pairs(_ spans: [Span]) -> [(Span, Span, witness: UInt64)] {
        let sorted = spans.enumerated().filter { $0.element.size > 0 }.sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map(\.element)
        var open: [Span] = []
        var out: [(Span, Span, witness: UInt64)] = []
        for s in sorted {
            open.removeAll { $0.end <= UInt128(s.start) }
            for o in open where Kernels.rangesOverlap(o.start, o.size, s.start, s.size) {
                out.append((o, s, Kernels.overlapWitness(o.start, s.start)))
            }
            open.append(s)
        }
        return out
    }
}
