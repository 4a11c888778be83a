import Foundation
import HVConfig
import HVCore
import Testing

enum Fixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func text(_ path: String) throws -> String { try String(contentsOf: dir.appendingPathComponent(path), encoding: .utf8) }
    static func config(_ path: String) throws -> VMConfig { try ConfigParser.parse(file: dir.appendingPathComponent(path).path, text: try text(path)) }

    /// (files, expected rule or "unreadable"/"none", exit status) from bad/expected.txt.
    static var corpus: [(files: [String], rule: String, status: Int)] {
        let lines = (try? text("bad/expected.txt"))?.split(separator: "\n").filter { !$0.hasPrefix("#") } ?? []
        return lines.map { line in
            let parts = line.split(separator: " ").map(String.init)
            return (parts[0].split(separator: "+").map { "bad/" + $0 }, parts[1], Int(parts[2])!)
        }
    }
}

/// What `hvkit check` would do with these files: the findings and the exit status.
func checkFiles(_ files: [String]) -> (findings: [Finding], status: Int, error: ConfigError?) {
    do {
        let configs = try files.map { (f: String) throws -> VMConfig in try Fixtures.config(f) }
        let findings = Checker().check(configs)
        return (findings, findings.contains { $0.severity == .error } ? 1 : 0, nil)
    } catch let e as ConfigError {
        return ([], 2, e)
    } catch {
        return ([], 2, nil)
    }
}

@Suite("VM configurations")
struct ConfigCheckTests {
    @Test(arguments: ["good/x86_64-linux.toml", "good/aarch64-linux.toml", "good/riscv64-rtos.toml"])
    func goodConfigurationsPlanIntoAnAddressSpace(_ file: String) throws {
        let config = try Fixtures.config(file)
        #expect(Checker().check(config).isEmpty, "\(Checker().check(config))")
        let plan = VMPlanner.plan(config)
        #expect(!plan.isEmpty)
        // Identity regions need their host memory: a pool that covers them,
        // with room below for page tables (the pool hands out low frames first).
        let pool = HeapFramePool(capacity: 0x8000_0000 + (64 << 20), physicalBase: HostPhysAddr(0x4000_0000))
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: pool)
        try VMPlanner.build(plan, into: space, lazy: true)
        for m in plan {
            for probe in [m.gpa, m.gpa + m.size / 2 & ~0xFFF, m.end - 1] {
                let t = space.translate(GuestPhysAddr(probe))
                switch m.backing {
                case .alloc: #expect(t == nil || t?.flags == m.flags, "lazy RAM is absent until touched")
                default:
                    #expect(t?.hostAddress.raw == m.hostStart! + (probe - m.gpa), "\(file) \(m) at \(hex(probe))")
                    #expect(t?.flags == m.flags)
                }
            }
        }
        space.clear()
    }

    @Test func passthroughIsAlignedOutwardAndMergedOnlyWhenHostContiguous() {
        let devices: [VMConfig.PassthroughDevice] = [
            .init(name: "uart", gpa: 0x1000_0010, hpa: 0x2000_0010, length: 0x100, irq: 0, index: 0),
            .init(name: "uart2", gpa: 0x1000_1000, hpa: 0x2000_1000, length: 0x1000, irq: 0, index: 1),  // touches, host contiguous
            .init(name: "gpio", gpa: 0x1000_2000, hpa: 0x3000_0000, length: 0x1000, irq: 0, index: 2),   // touches, host elsewhere
        ]
        let plan = VMPlanner.passthrough(devices)
        #expect(plan.count == 2)
        #expect(plan[0].gpa == 0x1000_0000 && plan[0].size == 0x2000 && plan[0].hostStart == 0x2000_0000 && plan[0].sources == ["uart", "uart2"])
        #expect(plan[1].gpa == 0x1000_2000 && plan[1].hostStart == 0x3000_0000)
        #expect(plan.allSatisfy { $0.flags == [.device, .read, .write, .user] })
    }

    @Test(arguments: Fixtures.corpus.map { $0.files.joined(separator: "+") })
    func badInputsAreReportedWithTheirRule(_ key: String) {
        let entry = Fixtures.corpus.first { $0.files.joined(separator: "+") == key }!
        let (findings, status, error) = checkFiles(entry.files)
        #expect(status == entry.status, "\(key): status \(status), findings \(findings.map(\.rule.rawValue)), error \(String(describing: error))")
        switch entry.rule {
        case "unreadable": #expect(error != nil && !(error!.description.isEmpty))
        case "none": #expect(findings.isEmpty, "\(findings)")
        default: #expect(findings.contains { $0.rule.rawValue == entry.rule }, "\(key): \(findings.map(\.rule.rawValue))")
        }
        // Overlap and sharing findings carry a witness inside both ranges.
        for f in findings where [.ramOverlap, .ramDeviceOverlap, .deviceOverlap, .sharedHostRange].contains(f.rule) {
            #expect(f.witness != nil, "\(f)")
        }
    }

    @Test func corpusIsLargeEnough() { #expect(Fixtures.corpus.count >= 30) }

    @Test func errorsNameFileKeyAndLine() throws {
        let (_, _, e1) = checkFiles(["bad/wrong-type-size.toml"])
        #expect(e1?.keyPath == "kernel.memory_regions[1][1]" && e1?.line == 13, "\(String(describing: e1))")
        let (_, _, e2) = checkFiles(["bad/toml-syntax.toml"])
        #expect(e2?.line != nil)
        let (_, _, e3) = checkFiles(["bad/old-flat-format.toml"])
        #expect(e3?.message.contains("unsupported format") == true)
    }

    @Test func witnessesLieInBothRanges() {
        let w = Witness.common(0x1000, 0x3000, 0x3FFF, 0x10)
        #expect(w.map { $0 >= 0x3FFF && $0 < 0x4000 } == true)
        #expect(Witness.common(0x1000, 0x1000, 0x2000, 0x1000) == nil, "adjacent ranges share nothing")
        #expect(Witness.common(UInt64.max - 0xFFF, 0x1000, UInt64.max, 1) == UInt64.max, "ranges ending at 2^64")
    }

    @Test func overflowRuleForProgrammaticConfigurations() {
        var c = VMConfig(file: "generated")
        c.memoryRegions = [.init(gpa: UInt64.max - 0xFFF, size: 0x2000, flags: 7, mapType: .alloc, index: 0)]
        #expect(Checker().check(c).contains { $0.rule == .overflow })
    }

    @Test func reportsInEveryFormat() throws {
        let (findings, _, _) = checkFiles(["bad/overlap-head.toml"])
        let text = Report.text(findings, files: 1)
        #expect(text.contains("HVC007") && text.contains("bad/overlap-head.toml:"))
        let json = Report.jsonLines(findings)
        for line in json.split(separator: "\n") { _ = try JSONSerialization.jsonObject(with: Data(line.utf8)) }
        let sarif = try JSONSerialization.jsonObject(with: Data(Report.sarif(findings).utf8)) as! [String: Any]
        #expect(sarif["version"] as? String == "2.1.0")
        let results = ((sarif["runs"] as! [[String: Any]])[0]["results"] as! [[String: Any]])
        #expect(results.count == findings.count)
        let region = (((results[0]["locations"] as! [[String: Any]])[0]["physicalLocation"] as! [String: Any])["region"] as! [String: Any])
        #expect(region["startLine"] as? Int == findings[0].line)
    }

    @Test func hostDescriptionRules() throws {
        let host = try ConfigParser.parseHost(file: "host.toml", text: "ram = [[0x8000_0000, 0x4000_0000]]\nhypervisor = [[0x8000_0000, 0x20_0000]]\n")
        let config = try Fixtures.config("good/aarch64-linux.toml")
        let rules = Set(Checker(host: host).check(config).map(\.rule))
        #expect(rules.contains(.hostRangeHypervisor), "the identity RAM covers the hypervisor's own memory")
        #expect(throws: ConfigError.self) { try ConfigParser.parseHost(file: "h", text: "hypervisor = []\n") }
    }
}

@Suite("Memory map picture")
struct MemoryMapSVGTests {
    @Test func everyMappingIsDrawnAndLabelled() throws {
        let plan = VMPlanner.plan(try Fixtures.config("good/x86_64-linux.toml"))
        let svg = MemoryMapSVG.render(plan, title: "linux <qemu>")
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("linux &lt;qemu&gt;"), "text is escaped")
        for m in plan { #expect(svg.contains("[\(hex(m.gpa)), \(hex(m.end)))")) }
        #expect(svg.components(separatedBy: "<rect x=\"10\"").count - 1 >= plan.count)
    }
}
