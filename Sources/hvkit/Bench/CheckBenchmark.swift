import HVConfig
import HVCore

/// `hvkit bench check`: a generated configuration of 10,000 regions (and
/// 1,000 pass-through devices, a few of them overlapping), parsed from TOML
/// and checked.
struct CheckBenchmark {
    static func generate(regions: Int, devices: Int) -> String {
        var rng = SplitMix64(seed: 0xA5A5_0007)
        var lines = ["[base]", "id = 1", "name = \"generated\"", "vm_type = 1", "cpu_num = 1", "", "[kernel]", "entry_point = 0x1000",
                     "kernel_path = \"kernel.bin\"", "kernel_load_addr = 0x1000", "memory_regions = ["]
        for i in 0..<regions {
            // Every region 64 KiB apart; every 1,000th overlaps its neighbour (nine pairs).
            let gpa = UInt64(i) * 0x1_0000
            let size: UInt64 = i % 1000 == 999 ? 0x2_0000 : 0x8000 + (rng.below(8) << 12)
            lines.append("    [\(hex(gpa)), \(hex(size)), 0x7, 0],")
        }
        lines += ["]", "", "[devices]", "emu_devices = []", "passthrough_devices = ["]
        for i in 0..<devices {
            let gpa = 0x10_0000_0000 + UInt64(i) * 0x2000
            lines.append("    [\"dev\(i)\", \(hex(gpa)), \(hex(gpa)), 0x1000, \(i % 64)],")
        }
        lines.append("]")
        return lines.joined(separator: "\n") + "\n"
    }

    func pass(into figures: inout Figures, record: Bool) throws {
        let text = Self.generate(regions: 10_000, devices: 1_000)
        var config: VMConfig?
        let parse = try measure { config = try ConfigParser.parse(file: "generated.toml", text: text) }
        var findings: [Finding] = []
        let check = measure { findings = Checker().check(config!) }
        precondition(findings.filter { $0.rule == .ramOverlap }.count == 9, "the nine generated overlaps are found")
        precondition(findings.allSatisfy { $0.rule != .ramOverlap || $0.witness != nil })
        if record {
            figures.record("check_parse_10k_regions_ms", "ms", parse / 1e6)
            figures.record("check_rules_10k_regions_ms", "ms", check / 1e6)
            figures.record("check_total_10k_regions_ms", "ms", (parse + check) / 1e6)
        }
    }
}
