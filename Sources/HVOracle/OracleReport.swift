import HVCore

/// What one oracle run compared, and where HVKit and the emulated CPU
/// disagreed.
public struct OracleReport: Sendable {
    public struct Disagreement: Sendable, CustomStringConvertible {
        public let probe: UInt64
        /// HVKit's answer, and the entries the walk reads in the image the
        /// emulated CPU got (root first).
        public let hvkit: String
        public let walk: [String]
        /// What the emulated CPU answered.
        public let qemu: String
        /// A Swift Testing test that replays the mapping and the probe.
        public let replay: String

        public var description: String {
            "probe \(hex(probe)): HVKit \(hvkit), QEMU \(qemu)\n  HVKit's walk: \(walk.joined(separator: " -> "))"
        }
    }

    public let name: String
    public var compared = 0
    /// Probes left out of the comparison by a named oracle defect, by name.
    public var excluded: [String: Int] = [:]
    /// The first disagreements (up to 20) and how many there were in all.
    public var disagreements: [Disagreement] = []
    public var disagreementCount = 0
    /// Of the probes left out by an oracle defect, how many the oracle
    /// answered differently (the defect's evidence, re-measured each run).
    public var excludedDisagreeing: [String: Int] = [:]
    public var mappings = 0
    public var seconds = 0.0

    public init(name: String) { self.name = name }

    /// The line scripts/test prints for each oracle run.
    public var summary: String {
        var line = "QEMU oracle \(name): \(compared) probes compared, \(disagreementCount) disagreements"
        for (defect, n) in excluded.sorted(by: { $0.key < $1.key }) {
            line += "; \(n) left out by oracle defect \(defect) (\(excludedDisagreeing[defect] ?? 0) of them answered differently)"
        }
        return line + String(format: " (%d mappings, %.1f s)", mappings, seconds)
    }
}

/// A known way the oracle itself is wrong, settled by the specification's
/// text; probes it covers are counted and printed, never compared.
public struct OracleDefect: Sendable {
    public let name: String
    /// The evidence and the clause.
    public let evidence: String
    public let applies: @Sendable (UInt64) -> Bool

    /// Debian's QEMU 7.2 raises a guest-page fault for a Sv39x4 GPA with bit
    /// 40 set (root entries 1024-2047), although the H extension makes all
    /// 41-bit GPAs valid ("bits 63:41 must all be zeros"); it checks the top
    /// bit as it would a virtual address's sign. The same for bit 49 under Sv48x4.
    public static func qemuGPATopBit(_ bit: Int) -> OracleDefect {
        OracleDefect(name: "qemu-gpa-bit-\(bit)",
                     evidence: "QEMU 7.2 faults G-stage accesses with GPA bit \(bit) set; the privileged spec's x4 modes make GPAs of \(bit + 1) bits valid (only bits 63:\(bit + 1) must be zero)",
                     applies: { $0 >> UInt64(bit) & 1 == 1 })
    }
}
