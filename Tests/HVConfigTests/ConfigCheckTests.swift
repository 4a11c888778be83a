import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import HVConfig
import HVCore
import Testing

enum Fixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func text(_ path: String) throws -> String { try String(contentsOf: dir.appendingPathComponent(path), encoding: .utf8) }
    static func config(_ path: String) throws -> VMConfig {
        try ConfigParser.parse(file: dir.appendingPathComponent(path).path, bytes: [UInt8](try Data(contentsOf: dir.appendingPathComponent(path))))
    }

    struct Entry: Sendable {
        let files: [String], rule: String, status: Int
        /// The device-tree source (Fixtures/dts/NAME.dts) to check against, and --strict.
        let dts: String?, strict: Bool
        var key: String { files.joined(separator: "+") + (dts.map { " dtb=\($0)" } ?? "") + (strict ? " strict" : "") }
    }

    /// Entries of bad/expected.txt: files, expected rule or "unreadable"/"none", exit status, options.
    static var corpus: [Entry] {
        let lines = (try? text("bad/expected.txt"))?.split(separator: "\n").filter { !$0.hasPrefix("#") } ?? []
        return lines.map { line in
            let parts = line.split(separator: " ").map(String.init)
            let options = parts.dropFirst(3)
            return Entry(files: parts[0].split(separator: "+").map { "bad/" + $0 }, rule: parts[1], status: Int(parts[2])!,
                         dts: options.first { $0.hasPrefix("dtb=") }.map { String($0.dropFirst(4)) }, strict: options.contains("strict"))
        }
    }

    /// A device-tree source compiled with dtc (Debian device-tree-compiler, installed by scripts/setup).
    static func deviceTreeBlob(_ name: String) throws -> [UInt8] {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-\(UUID().uuidString)-\(name).dtb")
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", out.path, dir.appendingPathComponent("dts/\(name).dts").path]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ConfigError(file: name, keyPath: "", line: nil, message: "dtc failed (is device-tree-compiler installed? scripts/setup installs it)")
        }
        return [UInt8](try Data(contentsOf: out))
    }

    static func deviceTree(_ name: String) throws -> DeviceTree { try FlattenedDeviceTree.parse(try deviceTreeBlob(name)) }
}

/// What `hvkit check` would do with these files: the findings and the exit status.
func checkFiles(_ files: [String], dts: String? = nil, strict: Bool = false) -> (findings: [Finding], status: Int, error: ConfigError?) {
    do {
        let configs = try files.map { (f: String) throws -> VMConfig in try Fixtures.config(f) }
        var checker = Checker()
        if let dts {
            let tree = try Fixtures.deviceTree(dts)
            for c in configs { checker.deviceTrees[c.file] = tree }
        }
        let findings = checker.check(configs)
        let failing = findings.contains { $0.severity == .error || (strict && $0.severity == .warning) }
        return (findings, failing ? 1 : 0, nil)
    } catch let e as ConfigError {
        return ([], 2, e)
    } catch {
        return ([], 2, nil)
    }
}

@Suite("VM configurations")
struct ConfigCheckTests {
    static let good = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.dir.appendingPathComponent("good").path))?
        .filter { $0.hasSuffix(".toml") }.sorted().map { "good/" + $0 } ?? []

    @Test func theGoodCorpusCoversEveryArchitecture() throws {
        #expect(Self.good.count >= 7)
        let arches = Set(try Self.good.map { Architecture.infer(try Fixtures.config($0)).0 })
        #expect(arches == Set(Architecture.allCases))
    }

    /// Every good fixture is clean (notes aside), without its device tree
    /// and, where its dtb_path names one of the fixture trees, with it; and
    /// it plans into an address space that translates as planned.
    @Test(arguments: good)
    func goodConfigurationsPlanIntoAnAddressSpace(_ file: String) throws {
        let config = try Fixtures.config(file)
        let alone = Checker().check(config)
        #expect(alone.allSatisfy { $0.severity == .note }, "\(alone)")
        var resolved: [VMConfig.PassthroughDevice] = []
        if let dtb = config.image("dtb"), !dtb.path.isEmpty, FileManager.default.fileExists(atPath: Fixtures.dir.appendingPathComponent("dts/" + dtb.path.replacingOccurrences(of: ".dtb", with: ".dts")).path) {
            var checker = Checker()
            let tree = try Fixtures.deviceTree(dtb.path.replacingOccurrences(of: ".dtb", with: ""))
            checker.deviceTrees[config.file] = tree
            #expect(checker.check(config).isEmpty, "\(checker.check(config))")
            resolved = DeviceTreePassthrough(config: config, tree: tree).devices
            #expect(!resolved.isEmpty)
        }
        let plan = VMPlanner.plan(config, resolved: resolved)
        #expect(!plan.isEmpty)
        // Planned into the format the architecture gives it: stage 2 for
        // aarch64, Sv39x4 for riscv64, EPT for x86_64.
        let format = Architecture.infer(config).0.pageTableFormat(end: plan.map { UInt128($0.end) }.max()!)
        switch format {
        case .ept: try Self.buildAndProbe(plan, EPTFormat.self, file)
        case .stage2: try Self.buildAndProbe(plan, Stage2IPA40Format.self, file)
        case .stage2IPA48: try Self.buildAndProbe(plan, Stage2IPA48Format.self, file)
        case .sv39x4: try Self.buildAndProbe(plan, Sv39x4Format.self, file)
        case .sv48x4: try Self.buildAndProbe(plan, Sv48x4Format.self, file)
        }
    }

    static func buildAndProbe<F: PageTableFormat>(_ plan: [PlannedMapping], _: F.Type, _ file: String) throws {
        // Identity regions need their host memory: a pool from 1 GiB that
        // covers them (the fixtures' identity RAM lies in [1 GiB, 3 GiB)).
        // They are held while the space takes its root frames, and built
        // first, before page tables take the pool's low frames. The pool
        // ends 64 MiB past the last identity range, short of the fixtures'
        // reserved (caller-owned) ranges.
        let identity = plan.filter { $0.backing == .identical }
        let poolEnd = max(identity.map(\.end).max() ?? 0, 0x4000_0000) + (64 << 20)
        let pool = HeapFramePool(capacity: poolEnd - 0x4000_0000, physicalBase: HostPhysAddr(0x4000_0000))
        for m in identity { try pool.allocate(at: HostPhysAddr(m.gpa), count: Int(m.size / 4096)) }
        let space = try AddrSpace<F>(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << UInt64(min(F.guestAddressBits, 40))), allocator: pool)
        for m in identity { pool.free(HostPhysAddr(m.gpa), count: Int(m.size / 4096)) }
        let identityFirst = identity + plan.filter { $0.backing != .identical }
        try VMPlanner.build(identityFirst, into: space, lazy: true)
        for m in plan {
            for probe in [m.gpa, m.gpa + m.size / 2 & ~0xFFF, m.end - 1] {
                let t = space.translate(GuestPhysAddr(probe))
                switch m.backing {
                case .alloc: #expect(t == nil || t?.flags == m.flags, "lazy RAM is absent until touched")
                default:
                    #expect(t?.hostAddress.raw == m.hostStart! + (probe - m.gpa), "\(file) \(m) at \(hex(probe)) on \(F.name)")
                    #expect(t?.flags == m.flags)
                }
            }
        }
        #expect(space.invariantViolations() == [])
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

    @Test(arguments: Fixtures.corpus.map(\.key))
    func badInputsAreReportedWithTheirRule(_ key: String) {
        let entry = Fixtures.corpus.first { $0.key == key }!
        let (findings, status, error) = checkFiles(entry.files, dts: entry.dts, strict: entry.strict)
        #expect(status == entry.status, "\(key): status \(status), findings \(findings.map(\.rule.rawValue)), error \(String(describing: error))")
        switch entry.rule {
        case "unreadable": #expect(error != nil && !(error!.description.isEmpty))
        case "none": #expect(findings.isEmpty, "\(findings)")
        default:
            #expect(findings.contains { $0.rule.rawValue == entry.rule }, "\(key): \(findings.map(\.rule.rawValue))")
            // The finding names its file and line.
            let f = findings.first { $0.rule.rawValue == entry.rule }
            #expect(f?.file.hasSuffix(entry.files.last!) == true && f?.line != nil, "\(key): \(String(describing: f))")
        }
        // Overlap and sharing findings carry a witness inside both ranges.
        for f in findings where [.ramOverlap, .ramDeviceOverlap, .deviceOverlap, .sharedHostRange, .emulatedOverlap, .emulatedOverPassthrough,
                                 .emulatedOverDeviceTree, .imagesOverlap, .translatedAddress, .beyondAddressWidth].contains(f.rule) {
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

/// The rectangles of an SVG, by parsing it as XML.
final class SVGRects: NSObject, XMLParserDelegate {
    var rects: [[String: String]] = []
    var texts = 0
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        if name == "rect" { rects.append(attributes) }
        if name == "text" { texts += 1 }
    }
}

@Suite("Memory map picture")
struct MemoryMapSVGTests {
    @Test func everyRangeIsDrawnToTheStatedScaleWithoutOverlap() throws {
        let tree = try Fixtures.deviceTree("aarch64-virt")
        var vms: [MemoryMapSVG.VM] = []
        for file in ["good/aarch64-qemu-virt.toml", "good/aarch64-rk3588.toml", "good/x86_64-linux.toml"] {
            let c = try Fixtures.config(file)
            let resolved = DeviceTreePassthrough(config: c, tree: tree).devices
            vms.append(.init(config: c, plan: VMPlanner.plan(c, resolved: resolved), fromDeviceTree: Set(resolved.map(\.name))))
        }
        #expect(!vms[0].fromDeviceTree.isEmpty, "the first VM takes ranges from the device tree")
        let svg = MemoryMapSVG.render(vms, title: "three <VMs>")
        let parser = XMLParser(data: Data(svg.utf8))
        let rects = SVGRects()
        parser.delegate = rects
        #expect(parser.parse(), "the SVG is well-formed XML: \(String(describing: parser.parserError))")
        #expect(svg.contains("three &lt;VMs&gt;"), "text is escaped")
        func n(_ s: String?) -> UInt64 { UInt64(s!.dropFirst(2), radix: 16) ?? 0 }
        for vm in vms {
            let mine = rects.rects.filter { $0["class"] == "range" && $0["data-group"] == "guest \(vm.config.name)" }
            // Every planned mapping and emulated device is drawn with its exact range.
            let drawn = Set(mine.map { "\($0["data-start"]!)-\($0["data-end"]!)" })
            for m in vm.plan { #expect(drawn.contains("\(hex(m.gpa))-\(hex(m.end))"), "\(vm.config.name): \(m)") }
            for e in vm.config.emuDevices { #expect(drawn.contains("\(hex(e.gpa))-\(hex(e.gpa + e.length))")) }
            #expect(mine.count == vm.plan.count + vm.config.emuDevices.count)
            #expect(mine.contains { $0["data-kind"] == "device-tree" } == !vm.fromDeviceTree.isEmpty)
            // To scale: a box is as tall as the stretches between the ticks it spans, each 14 + 5 * log2(pages) px.
            let ticks = Set(mine.flatMap { [n($0["data-start"]), n($0["data-end"])] }).sorted()
            for r in mine {
                let (s, e) = (n(r["data-start"]), n(r["data-end"]))
                let expected = zip(ticks, ticks.dropFirst()).filter { $0.0 >= s && $0.1 <= e }.reduce(0.0) { $0 + 14 + 5 * log2(max(Double($1.1 - $1.0) / 4096, 1)) }
                #expect(abs(Double(r["height"]!)! - expected) < 0.01, "\(r)")
            }
            // No two drawn boxes of a VM overlap.
            let boxes = mine.map { (x: Double($0["x"]!)!, y: Double($0["y"]!)!, w: Double($0["width"]!)!, h: Double($0["height"]!)!) }
            for (i, a) in boxes.enumerated() {
                for b in boxes[(i + 1)...] {
                    #expect(!(a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h), "\(a) and \(b) overlap")
                }
            }
        }
        // Host ranges: identity RAM and pass-through of the VMs; the x86 and
        // aarch64 fixtures do not share host memory, so nothing is outlined.
        #expect(rects.rects.contains { $0["class"] == "host" })
        #expect(!rects.rects.contains { $0["class"]?.contains("host-shared") == true })
    }

    @Test func hostRangesTwoVMsClaimStandOut() throws {
        let a = try Fixtures.config("bad/share-a.toml"), b = try Fixtures.config("bad/share-b.toml")
        let svg = MemoryMapSVG.render([.init(config: a, plan: VMPlanner.plan(a)), .init(config: b, plan: VMPlanner.plan(b))])
        let rects = SVGRects()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = rects
        #expect(parser.parse())
        #expect(rects.rects.filter { $0["class"] == "host host-shared" }.count >= 2)
    }
}
