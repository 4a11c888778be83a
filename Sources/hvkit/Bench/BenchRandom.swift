/// The SplitMix64 generator and helpers that ../shared/BENCHMARKS.md fixes,
/// so that other implementations can replay the same inputs.
struct BenchRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: UInt64) -> UInt64 { next() % n }

    /// The first k values of a partial Fisher-Yates shuffle of 0..<n.
    mutating func distinct(_ n: Int, _ k: Int) -> [UInt64] {
        var values = (0..<n).map(UInt64.init)
        for i in 0..<k {
            let j = i + Int(below(UInt64(n - i)))
            values.swapAt(i, j)
        }
        return Array(values[0..<k])
    }

    mutating func shuffle<T>(_ v: inout [T]) {
        guard v.count > 1 else { return }
        for i in stride(from: v.count - 1, to: 0, by: -1) {
            let j = Int(below(UInt64(i + 1)))
            v.swapAt(i, j)
        }
    }
}
