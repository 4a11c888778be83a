import HVCore
import Testing

/// The generator fixes every benchmark workload and replayed counterexample,
/// so its values may never change.
@Suite("SplitMix64")
struct SplitMix64Tests {
    @Test func firstValuesAreTheReferenceOnes() {
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(rng.next() == 0x06C4_5D18_8009_454F)
    }

    /// `below` masks for a power of two instead of dividing; the value must
    /// be `next() % n` all the same, for every kind of `n`.
    @Test(arguments: [1, 2, 7, 4096, 1 << 30, (1 << 30) + 1, 262_144 - 99_999, UInt64.max, 1 << 63] as [UInt64])
    func belowIsNextModuloN(n: UInt64) {
        var a = SplitMix64(seed: 0xA5A5_0003), b = SplitMix64(seed: 0xA5A5_0003)
        for _ in 0..<1000 { #expect(a.below(n) == b.next() % n) }
    }
}
