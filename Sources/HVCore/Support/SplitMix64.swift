/// SplitMix64: a small deterministic generator, the one
/// ../shared/BENCHMARKS.md fixes, so a seed replays the same workload,
/// test case or counterexample everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `next() % n`, as the benchmark definitions say (not unbiased, but fixed).
    /// A power of two takes a mask, the same value without a 64-bit divide
    /// (which costs a benchmark loop more than a page-table walk).
    @inlinable
    public mutating func below(_ n: UInt64) -> UInt64 {
        let value = next()
        return n & (n &- 1) == 0 && n != 0 ? value & (n &- 1) : value % n
    }

    /// The first k values of a partial Fisher-Yates shuffle of 0..<n.
    public mutating func distinct(_ n: Int, _ k: Int) -> [UInt64] {
        var values = (0..<n).map(UInt64.init)
        for i in 0..<k { values.swapAt(i, i + Int(below(UInt64(n - i)))) }
        return Array(values[0..<k])
    }

    /// Fisher-Yates from the back, as the benchmark definitions say.
    public mutating func shuffle<T>(_ v: inout [T]) {
        guard v.count > 1 else { return }
        for i in stride(from: v.count - 1, to: 0, by: -1) { v.swapAt(i, Int(below(UInt64(i + 1)))) }
    }
}
