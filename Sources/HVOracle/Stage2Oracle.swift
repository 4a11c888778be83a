import Foundation
import HVCore

/// The AArch64 stage-2 differential: HVKit builds a random stage-2 table,
/// QEMU's aarch64 CPU (at EL2) translates every probe IPA through it with
/// AT S12E1R and AT S12E1W, and PAR_EL1 (output address, memory type, or
/// the fault's status, stage and level) is compared with HVKit's walk
/// (docs/oracle-protocol.md). AT cannot ask about execute permission, so XN
/// is not compared here.
public struct Stage2Oracle<Format: Stage2Layout> {
    static var programBase: UInt64 { 0x4020_0000 }
    static var paramsBase: UInt64 { 0x4030_0000 }
    static var poolBase: UInt64 { 0x8000_0000 }

    /// Seeded encoding bugs for the teeth check, applied to the image.
    public enum Mutation: String, Sendable, CaseIterable {
        /// Upstream's bug: S2AP read and write swapped.
        case s2apSwapped = "s2ap-swapped"
        /// The access flag left clear.
        case accessFlagClear = "af-clear"
    }

    public let seed: UInt64
    public let probes: Int
    public let mutation: Mutation?

    public init(seed: UInt64, probes: Int, mutation: Mutation? = nil) {
        self.seed = seed
        self.probes = probes
        self.mutation = mutation
    }

    /// The name the report and the command line use.
    public static var name: String { "stage2-ipa\(Format.guestAddressBits)" }

    /// A third of the IPAs in the upper half (the second concatenated root
    /// table of a 40-bit IPA). AT never touches the output memory, so any
    /// 48-bit host address will do.
    func build(_ table: NestedPageTable<Format>, _ rng: inout SplitMix64) -> [OracleMapping] {
        let bits = UInt64(Format.guestAddressBits)
        return OracleTables.map(table, &rng, place: { gpa, rng in rng.below(3) == 0 ? gpa | 1 << (bits - 1) : gpa },
                                host: { size, rng in rng.next() & ((1 << 48) - 1) & ~(size.bytes - 1) })
    }

    /// What PAR_EL1 must say for one access: the output page, whether the
    /// memory is device memory, or the fault (permission or translation)
    /// and its level in the Arm ARM's numbering.
    enum Expected: Equatable {
        case ok(page: UInt64, device: Bool)
        case fault(permission: Bool, armLevel: Int)
    }

    static func expected(_ table: NestedPageTable<Format>, _ ipa: UInt64) -> (read: Expected, write: Expected) {
        // The level the walk ends at: the leaf's, or the missing entry's.
        var level = Format.levels - 1
        var base = table.root.raw
        while true {
            let e = table.allocator.directMap.pointer(base)!.assumingMemoryBound(to: UInt64.self)[Format.index(ipa, level: level)]
            if !Format.isPresent(e) || Format.isLeaf(e, level: level) || level == 0 { break }
            base = Format.tableAddress(e)
            level -= 1
        }
        let armLevel = 3 - level
        guard let t = table.query(GuestPhysAddr(ipa)) else { return (.fault(permission: false, armLevel: armLevel), .fault(permission: false, armLevel: armLevel)) }
        let device = !t.flags.isDisjoint(with: [.device, .uncached])
        let ok = Expected.ok(page: t.hostAddress.raw & ~0xFFF, device: device)
        return (t.flags.contains(.read) ? ok : .fault(permission: true, armLevel: armLevel),
                t.flags.contains(.write) ? ok : .fault(permission: true, armLevel: armLevel))
    }

    /// PAR_EL1 in the same terms: bit 0 F; on success PA in 47:12 and the
    /// memory attributes in 63:56 (device types have the high nibble 0); on
    /// a fault FST in 6:1 (0b0001LL translation, 0b0011LL permission) and
    /// S (bit 9) set for a stage-2 fault.
    static func decode(_ par: UInt64) -> Expected? {
        if par & 1 == 0 { return .ok(page: par & 0x0000_FFFF_FFFF_F000, device: (par >> 60) == 0) }
        let fst = (par >> 1) & 0x3F
        guard par >> 9 & 1 == 1 else { return nil }   // a stage-1 fault: stage 1 is off, so never expected
        switch fst >> 2 {
        case 0b0001: return .fault(permission: false, armLevel: Int(fst & 3))
        case 0b0011: return .fault(permission: true, armLevel: Int(fst & 3))
        default: return nil
        }
    }

    func mutate(_ table: NestedPageTable<Format>) {
        switch mutation {
        case nil: return
        case .s2apSwapped:
            OracleTables.rewriteLeaves(table) { e in e & ~(Stage2Bits.s2apRead | Stage2Bits.s2apWrite) | (e & Stage2Bits.s2apRead) << 1 | (e & Stage2Bits.s2apWrite) >> 1 }
        case .accessFlagClear: OracleTables.rewriteLeaves(table) { $0 & ~Stage2Bits.accessFlag }
        }
    }

    public func run(progress: (String) -> Void = { _ in }) throws(OracleError) -> OracleReport {
        let started = ContinuousClock.now
        var report = OracleReport(name: Self.name + (mutation.map { " with seeded bug \($0.rawValue)" } ?? ""))
        let pool = HeapFramePool(capacity: 16 << 20, physicalBase: HostPhysAddr(Self.poolBase))
        let table: NestedPageTable<Format>
        do { table = try NestedPageTable<Format>(allocator: pool) } catch { throw .malformedAnswer("no table: \(error)") }
        var rng = SplitMix64(seed: seed)
        let mappings = build(table, &rng)
        report.mappings = mappings.count
        let ipas = OracleTables.probes(mappings, count: probes, bits: Format.guestAddressBits, &rng)
        progress("\(report.name): \(mappings.count) leaves, \(ipas.count) probes; assembling and starting qemu-system-aarch64")
        let program = try CrossAssembler.binary("aarch64-stage2", prefix: "aarch64-linux-gnu-", march: [], base: Self.programBase)
        let predictions = ipas.map { Self.expected(table, $0) }
        let answers = ipas.map { ipa in table.query(GuestPhysAddr(ipa)).map { "\($0)" } ?? "unmapped" }
        mutate(table)
        let params = [0x4C43_5241_4F4B_5648, table.vttbr(vmid: 1), Format.vtcr, UInt64(ipas.count)] + ipas
        let machine = QEMUMachine(binary: "qemu-system-aarch64", arguments: [
            "-M", "virt,virtualization=on", "-cpu", "max", "-m", "3G", "-semihosting-config", "enable=on,target=native",
        ])
        let lines = try machine.run(program: program, at: Self.programBase,
                                    images: [(QEMUMachine.words(params), Self.paramsBase), (QEMUMachine.image(of: table, poolBase: Self.poolBase), Self.poolBase)],
                                    expectedLines: ipas.count)
        for (i, ipa) in ipas.enumerated() {
            let fields = lines[i].split(separator: " ").compactMap { UInt64($0, radix: 16) }
            guard fields.count == 2 else { throw .malformedAnswer("line \(i + 1): \(lines[i])") }
            report.compared += 1
            let (read, write) = (Self.decode(fields[0]), Self.decode(fields[1]))
            guard read != predictions[i].read || write != predictions[i].write else { continue }
            report.disagreementCount += 1
            if report.disagreements.count < 20 {
                let leaf = mappings.first { ipa >= $0.gpa && ipa - $0.gpa < $0.size.bytes }
                report.disagreements.append(.init(
                    probe: ipa,
                    hvkit: "read \(predictions[i].read) write \(predictions[i].write) (\(answers[i]))",
                    walk: OracleTables.walk(table, ipa) { "level \(3 - $0) " },
                    qemu: "PAR_EL1 read \(hex(fields[0])) write \(hex(fields[1])) = read \(read.map { "\($0)" } ?? "?") write \(write.map { "\($0)" } ?? "?")",
                    replay: OracleTables.replayTest(Format.self, leaf, ipa, poolBase: Self.poolBase, qemu: "PAR_EL1 \(hex(fields[0])) / \(hex(fields[1]))")))
            }
        }
        report.seconds = OracleTables.seconds(since: started)
        return report
    }
}
