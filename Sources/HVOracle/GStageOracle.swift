import Foundation
import HVCore

/// The RISC-V G-stage differential: HVKit builds a random Sv39x4 or Sv48x4
/// table, QEMU's riscv64 CPU translates every probe through it with
/// HLV.D / HSV.D and an instruction fetch in VS-mode, and both answers are compared (the protocol is
/// in docs/oracle-protocol.md).
public struct GStageOracle<Format: RISCVGStageLayout> {
    /// Guest (emulated machine) physical layout: program, parameters and
    /// probes, pattern-filled scratch the leaves point into, table pool.
    static var programBase: UInt64 { 0x8000_0000 }
    static var paramsBase: UInt64 { 0x8010_0000 }
    static var scratchBase: UInt64 { 0x9000_0000 }
    static var scratchSize: UInt64 { 64 << 20 }
    static var poolBase: UInt64 { 0xC000_0000 }
    static var gigapageHost: UInt64 { 0x1_0000_0000 }

    /// A seeded encoding bug the teeth check switches on: the image QEMU
    /// gets is changed after HVKit built it, as a wrong encoder would.
    public enum Mutation: String, Sendable, CaseIterable {
        /// U = 0 on every G-stage leaf (G-stage accesses are user accesses).
        case userBitClear = "u-clear"
        /// R and W swapped on every leaf.
        case readWriteSwapped = "rw-swapped"
    }

    public let seed: UInt64
    public let probes: Int
    public let mutation: Mutation?
    public let defect = OracleDefect.qemuGPATopBit(Format.guestAddressBits - 1)

    public init(seed: UInt64, probes: Int, mutation: Mutation? = nil) {
        self.seed = seed
        self.probes = probes
        self.mutation = mutation
    }

    /// Random leaves of every size: 4 KiB and 2 MiB ones into the
    /// pattern-filled scratch, 1 GiB ones onto the RAM at 4 GiB (zero, so
    /// their values are not compared, and nothing there can be damaged by
    /// a store a wrong table lets through); a quarter of the GPAs have the
    /// top bit set, a third bit 2 below it (root entries 512-1023, which
    /// only a 2048-entry root resolves exactly).
    func build(_ table: NestedPageTable<Format>, _ rng: inout SplitMix64) -> [OracleMapping] {
        let bits = UInt64(Format.guestAddressBits)
        return OracleTables.map(table, &rng, place: { gpa, rng in
            var g = gpa
            if rng.below(4) != 0 { g &= ~(1 << (bits - 1)) }
            if rng.below(3) == 0 { g |= 1 << (bits - 2) }
            return g
        }, host: { size, rng in
            size == .size1G ? Self.gigapageHost : Self.scratchBase + rng.below(Self.scratchSize / size.bytes) * size.bytes
        })
    }

    /// What a correct CPU answers for `gpa` through HVKit's table: the load
    /// cause and value (nil: not checked), the store cause, and whether the
    /// fetch ends in an instruction guest-page fault (cause 20; a fetch that
    /// translates runs into an illegal instruction, cause 2).
    static func expected(_ table: NestedPageTable<Format>, _ gpa: UInt64) -> (load: UInt64, value: UInt64?, store: UInt64, execute: UInt64) {
        guard let t = table.query(GuestPhysAddr(gpa)) else { return (21, gpa >> 2, 23, 20) }
        let h = t.hostAddress.raw
        let inScratch = h >= scratchBase && h < scratchBase + scratchSize
        return (t.flags.contains(.read) ? 0 : 21,
                t.flags.contains(.read) ? (inScratch ? h : nil) : gpa >> 2,
                t.flags.contains(.write) ? 0 : 23,
                t.flags.contains(.execute) ? 2 : 20)
    }

    /// Rewrites every leaf entry of the image as the seeded bug would.
    func mutate(_ table: NestedPageTable<Format>) {
        switch mutation {
        case nil: return
        case .userBitClear: OracleTables.rewriteLeaves(table) { $0 & ~RISCVBits.user }
        case .readWriteSwapped:
            OracleTables.rewriteLeaves(table) { e in e & ~(RISCVBits.read | RISCVBits.write) | (e & RISCVBits.read) << 1 | (e & RISCVBits.write) >> 1 }
        }
    }

    public func run(progress: (String) -> Void = { _ in }) throws(OracleError) -> OracleReport {
        let started = ContinuousClock.now
        var report = OracleReport(name: "\(Format.self == Sv39x4Format.self ? "sv39x4" : "sv48x4")\(mutation.map { " with seeded bug \($0.rawValue)" } ?? "")")
        let pool = HeapFramePool(capacity: 16 << 20, physicalBase: HostPhysAddr(Self.poolBase))
        let table: NestedPageTable<Format>
        do { table = try NestedPageTable<Format>(allocator: pool) } catch { throw .malformedAnswer("no table: \(error)") }
        var rng = SplitMix64(seed: seed)
        let mappings = build(table, &rng)
        report.mappings = mappings.count
        let probeGPAs = OracleTables.probes(mappings, count: probes, bits: Format.guestAddressBits, &rng)
        progress("\(report.name): \(mappings.count) leaves, \(probeGPAs.count) probes; assembling and starting qemu-system-riscv64")
        let program = try CrossAssembler.binary("riscv-gstage", prefix: "riscv64-linux-gnu-", march: ["-march=rv64ima_zicsr_h"], base: Self.programBase)

        let predictions = probeGPAs.map { Self.expected(table, $0) }
        let answers = probeGPAs.map { gpa in table.query(GuestPhysAddr(gpa)).map { "\($0)" } ?? "unmapped" }
        mutate(table)
        let params = [0x4C43_5241_4F4B_5648, table.hgatp(vmid: 1), UInt64(probeGPAs.count), Self.scratchBase, Self.scratchBase + Self.scratchSize] + probeGPAs
        let machine = QEMUMachine(binary: "qemu-system-riscv64", arguments: ["-M", "virt", "-cpu", "rv64,h=true,svpbmt=true,c=false", "-m", "3G", "-bios", "none"])
        let lines = try machine.run(program: program, at: Self.programBase,
                                    images: [(QEMUMachine.words(params), Self.paramsBase), (QEMUMachine.image(of: table, poolBase: Self.poolBase), Self.poolBase)],
                                    expectedLines: probeGPAs.count)
        for (i, gpa) in probeGPAs.enumerated() {
            let fields = lines[i].split(separator: " ").compactMap { UInt64($0, radix: 16) }
            guard fields.count == 4 else { throw .malformedAnswer("line \(i + 1): \(lines[i])") }
            let e = predictions[i]
            // A fetch that translated may also end in an access fault (cause 1)
            // where the memory type forbids execution; only cause 20 means "not translated".
            let fetchAgrees = (fields[3] == 20) == (e.execute == 20)
            let agrees = fields[0] == e.load && (e.value == nil || fields[1] == e.value!) && fields[2] == e.store && fetchAgrees
            if defect.applies(gpa) {
                report.excluded[defect.name, default: 0] += 1
                if !agrees { report.excludedDisagreeing[defect.name, default: 0] += 1 }
                continue
            }
            report.compared += 1
            if !agrees { report.disagreementCount += 1 }
            if !agrees && report.disagreements.count < 20 {
                let leaf = mappings.first { gpa >= $0.gpa && gpa - $0.gpa < $0.size.bytes }
                report.disagreements.append(.init(
                    probe: gpa,
                    hvkit: "load \(e.load) \(e.value.map(hex) ?? "-") store \(e.store) fetch \(e.execute) (\(answers[i]))",
                    walk: OracleTables.walk(table, gpa) { "L\($0)" },
                    qemu: "load \(fields[0]) \(hex(fields[1])) store \(fields[2]) fetch \(fields[3])",
                    replay: OracleTables.replayTest(Format.self, leaf, gpa, poolBase: Self.poolBase,
                                                    qemu: "load cause \(fields[0]), store cause \(fields[2]), fetch cause \(fields[3])")))
            }
        }
        report.seconds = OracleTables.seconds(since: started)
        return report
    }
}
