import HVCore

/// Concrete addresses for overlap findings.
public enum Witness {
    /// An address in `[a, a + aSize)` and in `[b, b + bSize)`, or nil if
    /// none exists: the proved `Kernels.overlapWitness` (the larger start)
    /// whenever the proved `Kernels.rangesOverlap` holds
    /// (`range_overlap_complete` shows it lies in both).
    public static func common(_ a: UInt64, _ aSize: UInt64, _ b: UInt64, _ bSize: UInt64) -> UInt64? {
        Kernels.rangesOverlap(a, aSize, b, bSize) ? Kernels.overlapWitness(a, b) : nil
    }
}
