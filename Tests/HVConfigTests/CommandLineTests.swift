import Foundation
import HVConfig
import HVCore
import Testing
import TestSupport

/// The built `hvkit` binary, as a user runs it.
enum HVKit {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var binary: URL? {
        let candidates = [".build/debug/hvkit", ".build/x86_64-unknown-linux-gnu/debug/hvkit"].map { root.appendingPathComponent($0) }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    static func run(_ args: [String], in dir: URL = Fixtures.dir) throws -> (status: Int32, out: String, err: String) {
        try runProcess(binary!, args, in: dir)
    }

    static func available() -> Bool {
        if binary == nil { print("SKIPPED: hvkit command-line tests: no built hvkit under .build (swift build builds it)") }
        return binary != nil
    }
}

@Suite("hvkit check, generate and schema on the command line")
struct CommandLineTests {
    /// Every good fixture exits 0, alone and with its device tree found
    /// beside it through dtb_path.
    @Test func goodFixturesExitZero() throws {
        guard HVKit.available() else { return }
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.dir.appendingPathComponent("good").path).filter { $0.hasSuffix(".toml") }
        for f in files {
            let r = try HVKit.run(["check", "good/\(f)"])
            #expect(r.status == 0, "\(f): \(r.out)\(r.err)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (config, dts) in [("aarch64-qemu-virt", "aarch64-virt"), ("riscv64-qemu-virt", "riscv64-virt")] {
            try FileManager.default.copyItem(at: Fixtures.dir.appendingPathComponent("good/\(config).toml"), to: dir.appendingPathComponent("\(config).toml"))
            try Data(try Fixtures.deviceTreeBlob(dts)).write(to: dir.appendingPathComponent("\(dts).dtb"))
            let r = try HVKit.run(["check", "\(config).toml", "--format", "json"], in: dir)
            #expect(r.status == 0, "\(config) with its device tree: \(r.out)\(r.err)")
            #expect(!r.out.contains("HVC024"), "the tree beside the configuration was used: \(r.out)")
            let summary = try JSONSerialization.jsonObject(with: Data(r.out.split(separator: "\n").last!.utf8)) as! [String: Any]
            #expect((summary["summary"] as? [String: Any])?["overlapping_pairs"] as? Int == 0)
        }
    }

    /// Each bad twin exits as expected.txt says, naming its rule and file:line.
    @Test func badTwinsExitWithTheirRuleAndLine() throws {
        guard HVKit.available() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for entry in Fixtures.corpus {
            var args = ["check"] + entry.files + (entry.strict ? ["--strict"] : [])
            if let dts = entry.dts {
                let blob = dir.appendingPathComponent("\(dts).dtb")
                if !FileManager.default.fileExists(atPath: blob.path) { try Data(try Fixtures.deviceTreeBlob(dts)).write(to: blob) }
                args += ["--dtb", blob.path]
            }
            let r = try HVKit.run(args)
            #expect(Int(r.status) == entry.status, "\(entry.key): exit \(r.status)\n\(r.out)\(r.err)")
            switch entry.rule {
            case "unreadable":
                #expect(r.out.isEmpty && r.err.hasPrefix("hvkit check: bad/") && r.err.split(separator: "\n").count == 1, "\(entry.key): \(r.err)")
            case "none": break
            default: #expect(r.out.contains(entry.rule) && r.out.contains("\(entry.files.last!):"), "\(entry.key): \(r.out)")
            }
        }
    }

    /// A bad input file for `hvkit run` (a truncated ELF, an image past RAM,
    /// a missing file, a configuration that does not parse, a kernel that is
    /// no bzImage) is exit 2 with one line, not 64 with the usage text.
    @Test func badRunInputsAreExitTwoWithOneLine() throws {
        guard HVKit.available() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ bytes: [UInt8]) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let cases: [(String, [String])] = [
            ("truncated ELF", ["run", try file("short.elf", [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1])]),
            ("image past RAM", ["run", try file("big.bin", [0x90]), "--load-address", "0x7FFF000", "--memory", "2M"]),
            ("missing file", ["run", dir.appendingPathComponent("absent.bin").path]),
            ("unparsable configuration", ["run", try file("bad.toml", Array("[\u{1}".utf8))]),
            ("not a bzImage", ["run", "--kernel", try file("kernel", [UInt8](repeating: 0, count: 4096))]),
        ]
        for (what, args) in cases {
            let r = try HVKit.run(args, in: dir)
            #expect(r.status == 2, "\(what): exit \(r.status)\n\(r.out)\(r.err)")
            #expect(r.err.split(separator: "\n").count == 1 && r.err.hasPrefix("hvkit run: ") && !r.err.contains("Usage"), "\(what): \(r.err)")
        }
        // A wrong command line is still a usage error.
        #expect(try HVKit.run(["run", try file("ok.bin", [0xF4]), "--mode", "sideways"], in: dir).status == 64)
    }

    /// A malformed device tree is exit 2 with one line and nothing else.
    @Test func malformedDeviceTreesAreExitTwo() throws {
        guard HVKit.available() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let broken = BrokenBlobs.all(try Fixtures.deviceTreeBlob("aarch64-virt"))
        for (name, blob, expect) in broken {
            let path = dir.appendingPathComponent("\(name).dtb")
            try Data(blob).write(to: path)
            let r = try HVKit.run(["check", "good/aarch64-qemu-virt.toml", "--dtb", path.path])
            #expect(r.status == 2 && r.out.isEmpty && r.err.split(separator: "\n").count == 1 && r.err.contains(expect), "\(name): \(r.status) \(r.out) \(r.err)")
        }
    }

    @Test func generateWritesWhatCheckPassesAndSchemaIsJSON() throws {
        guard HVKit.available() else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for arch in Architecture.allCases {
            let file = dir.appendingPathComponent("\(arch.rawValue).toml").path
            let g = try HVKit.run(["generate", "--arch", arch.rawValue, "--cpus", "4", "--memory", "1G", "--name", "board \"one\"", "-o", file])
            #expect(g.status == 0, "\(g.err)")
            let c = try HVKit.run(["check", file, "--strict"])
            #expect(c.status == 0, "\(arch): \(c.out)")
        }
        #expect(try HVKit.run(["generate", "--arch", "mips"]).status != 0)
        #expect(try HVKit.run(["generate", "--arch", "aarch64", "--memory", "3K"]).status != 0)
        let s = try HVKit.run(["schema"])
        #expect(s.status == 0)
        _ = try JSONSerialization.jsonObject(with: Data(s.out.utf8))
    }
}
