import Foundation
import HVConfig
import HVCore
import Testing

/// A JSON Schema validator for the parts of draft 2020-12 the format's
/// schema uses: type, enum, minimum, required, properties,
/// additionalProperties: false, items (a schema or false), prefixItems,
/// minItems, and $ref into #/$defs. Instances are parsed TOML values.
struct SchemaValidator {
    let root: [String: Any]

    func resolve(_ s: [String: Any]) -> [String: Any] {
        guard let ref = s["$ref"] as? String, ref.hasPrefix("#/$defs/") else { return s }
        var merged = (root["$defs"] as! [String: Any])[String(ref.dropFirst(8))] as! [String: Any]
        for (k, v) in s where k != "$ref" { merged[k] = v }
        return merged
    }

    func errors(_ v: TOMLValue, _ schemaAny: Any, _ path: String) -> [String] {
        if let b = schemaAny as? Bool { return b ? [] : ["\(path): not allowed"] }
        let s = resolve(schemaAny as! [String: Any])
        var out: [String] = []
        if let type = s["type"] as? String {
            let ok: Bool = switch (type, v) {
            case ("object", .table), ("array", .array), ("string", .string), ("integer", .integer), ("boolean", .boolean): true
            default: false
            }
            if !ok { return ["\(path): expected \(type), found \(v.typeName)"] }
        }
        if let values = s["enum"] as? [Any] {
            let ok = values.contains { e in
                switch v {
                case let .string(x): (e as? String) == x
                case let .integer(x): (e as? Int).map { Int64($0) == x } ?? false
                default: false
                }
            }
            if !ok { out.append("\(path): not one of \(values)") }
        }
        if let minimum = s["minimum"] as? Int, case let .integer(x) = v, x < minimum { out.append("\(path): below \(minimum)") }
        if case let .table(t) = v {
            for r in s["required"] as? [String] ?? [] where t[r] == nil { out.append("\(path): missing \(r)") }
            let props = s["properties"] as? [String: Any] ?? [:]
            for k in t.keys {
                if let p = props[k] { out += errors(t[k]!.value, p, "\(path).\(k)") } else if (s["additionalProperties"] as? Bool) == false {
                    out.append("\(path): unknown key \(k)")
                }
            }
        }
        if case let .array(a) = v {
            let prefix = s["prefixItems"] as? [Any] ?? []
            if let min = s["minItems"] as? Int, a.count < min { out.append("\(path): fewer than \(min) items") }
            for (i, e) in a.enumerated() {
                if i < prefix.count { out += errors(e.value, prefix[i], "\(path)[\(i)]") } else if let items = s["items"] { out += errors(e.value, items, "\(path)[\(i)]") }
            }
        }
        return out
    }
}

@Suite("The configuration format")
struct ConfigFormatTests {
    @Test func everyFieldIsRead() throws {
        let c = try ConfigParser.parse(file: "/vm/all.toml", text: """
        [base]
        id = 7
        name = "all"
        vm_type = 2
        cpu_num = 2
        phys_cpu_ids = [0x0, 0x100]
        phys_cpu_sets = [0x1, 0x2]
        [kernel]
        entry_point = 0x4008_0000
        kernel_path = "Image"
        kernel_load_addr = 0x4008_0000
        bios_path = "bios.bin"
        bios_load_addr = 0x4000_0000
        dtb_path = "board.dtb"
        dtb_load_addr = 0x4800_0000
        ramdisk_path = "initrd"
        ramdisk_load_addr = 0x4900_0000
        image_location = "memory"
        cmdline = "console=ttyAMA0"
        disk_path = "disk.img"
        memory_regions = [[0x4000_0000, 0x1000_0000, 0x7, 1]]
        [devices]
        interrupt_mode = "pt"
        passthrough_devices = [["/"], ["uart", 0x900_0000], ["gic", 0x800_0000, 0x800_0000, 0x1_0000, 25]]
        passthrough_addresses = [[0xc00_0000, 0x1000], [0xd00_0000], []]
        excluded_devices = [["/pcie@10000000", "/soc/dma"], []]
        emu_devices = [["gicr", 0x80a_0000, 0x2_0000, 0, 0x20, [0x2_0000, 2]]]
        shared = ["uart"]
        """)
        #expect(c.id == 7 && c.name == "all" && c.vmType == 2 && c.cpuNum == 2)
        #expect(c.physCpuIds == [0, 0x100] && c.physCpuSets == [1, 2])
        #expect(c.entryPoint == 0x4008_0000 && c.imageLocation == "memory" && c.cmdline == "console=ttyAMA0" && c.diskPath == "disk.img")
        #expect(c.images.map(\.kind) == ["kernel", "bios", "dtb", "ramdisk"])
        #expect(c.images.map(\.loadAddress) == [0x4008_0000, 0x4000_0000, 0x4800_0000, 0x4900_0000])
        #expect(c.image("dtb")?.path == "board.dtb" && c.image("dtb")?.line == 15)
        #expect(c.memoryRegions == [.init(gpa: 0x4000_0000, size: 0x1000_0000, flags: 7, mapType: .identical, index: 0, line: 21)])
        #expect(c.interruptMode == .passthrough)
        // Fields after a pass-through device's name default to 0.
        #expect(c.passthroughDevices.map(\.fromDeviceTree) == [true, true, false])
        #expect(c.passthroughDevices[1].gpa == 0x900_0000 && c.passthroughDevices[1].hpa == 0 && c.passthroughDevices[1].length == 0)
        #expect(c.passthroughDevices[2].irq == 25)
        // passthrough_addresses fields default to 0 too.
        #expect(c.passthroughAddresses.map(\.gpa) == [0xc00_0000, 0xd00_0000, 0] && c.passthroughAddresses.map(\.length) == [0x1000, 0, 0])
        #expect(c.excludedDevices == [["/pcie@10000000", "/soc/dma"], []])
        #expect(c.emuDevices == [.init(name: "gicr", gpa: 0x80a_0000, length: 0x2_0000, irq: 0, type: .gpptRedistributor, cfgList: [0x2_0000, 2], index: 0, line: 27)])
        #expect(c.sharedDevices == ["uart"])
        #expect(c.lines["base.cpu_num"] == 5 && c.lines["devices.shared"] == 28)
    }

    @Test func defaultsOfOptionalFields() throws {
        let c = try ConfigParser.parse(file: "min.toml", text: """
        [base]
        id = 1
        name = "min"
        vm_type = 1
        cpu_num = 1
        [kernel]
        entry_point = 0x8000
        kernel_path = "k"
        kernel_load_addr = 0x8000
        memory_regions = []
        [devices]
        passthrough_devices = []
        emu_devices = []
        """)
        #expect(c.physCpuIds == nil && c.physCpuSets == nil)
        #expect(c.images.map(\.kind) == ["kernel"] && c.imageLocation == nil && c.cmdline == nil && c.diskPath == nil)
        #expect(c.interruptMode == .noIRQ, "interrupt_mode defaults to no_irq")
        #expect(c.passthroughAddresses.isEmpty && c.excludedDevices.isEmpty && c.sharedDevices.isEmpty)
    }

    @Test(arguments: [("no_irq", VMConfig.InterruptMode.noIRQ), ("no", .noIRQ), ("none", .noIRQ), ("emu", .emulated), ("emulated", .emulated),
                      ("passthrough", .passthrough), ("pt", .passthrough)])
    func interruptModeSpellings(_ spelling: String, _ mode: VMConfig.InterruptMode) {
        #expect(VMConfig.InterruptMode(spelling: spelling) == mode)
    }

    @Test func unknownKeysNameTheKeyTheLineAndTheLikelyOne() throws {
        let text = try Fixtures.text("bad/unknown-key.toml")
        do {
            _ = try ConfigParser.parse(file: "u.toml", text: text)
            Issue.record("accepted")
        } catch {
            #expect(error.keyPath == "devices.passthrough_device" && error.line == 18 && error.message.contains("did you mean passthrough_devices?"), "\(error)")
        }
    }

    /// The schema parses as JSON, names exactly the keys the parser knows,
    /// accepts every good fixture and rejects every bad fixture the parser
    /// rejects (where the file is TOML at all), and no other.
    @Test func theSchemaAgreesWithTheParser() throws {
        let schema = try JSONSerialization.jsonObject(with: Data(ConfigSchema.json.utf8)) as! [String: Any]
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let props = schema["properties"] as! [String: [String: Any]]
        for (table, keys) in ConfigParser.knownKeys {
            #expect(Set((props[table]!["properties"] as! [String: Any]).keys) == keys, "\(table)")
        }
        let validator = SchemaValidator(root: schema)
        let dir = Fixtures.dir
        var checked = 0
        for sub in ["good", "bad"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(sub).path) where name.hasSuffix(".toml") {
                let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("\(sub)/\(name)")))
                guard let doc = try? TOMLParser.parse(bytes: bytes) else { continue }
                let parsed = (try? ConfigParser.parse(file: name, bytes: bytes)) != nil
                let problems = validator.errors(.table(doc), schema, "$")
                #expect(problems.isEmpty == parsed, "\(sub)/\(name): parser \(parsed ? "accepts" : "rejects"), schema says \(problems)")
                if sub == "good" { #expect(problems.isEmpty) }
                checked += 1
            }
        }
        #expect(checked > 60)
    }

    @Test func eachArchitectureGetsItsPageTableFormat() throws {
        #expect(Architecture.x86_64.pageTableFormat(end: 1 << 47) == .ept)
        #expect(Architecture.aarch64.pageTableFormat(end: 1 << 40) == .stage2)
        #expect(Architecture.aarch64.pageTableFormat(end: (1 << 40) + 1) == .stage2IPA48)
        #expect(Architecture.riscv64.pageTableFormat(end: 1 << 41) == .sv39x4)
        #expect(Architecture.riscv64.pageTableFormat(end: (1 << 41) + 0x1000) == .sv48x4)
        let r = Checker().evaluate([try Fixtures.config("good/aarch64-qemu-virt.toml"), try Fixtures.config("good/riscv64-rtos.toml")])
        #expect(r.architectures.map(\.format) == [.stage2, .sv39x4])
        let json = Report.jsonSummary(r, files: 2)
        #expect(json.contains("\"format\":\"stage2\"") && json.contains("\"format\":\"sv39x4\""))
        // A riscv64 region above 2^41 is planned into Sv48x4 and stays clean;
        // past 2^50 it is beyond every format.
        var c = try Fixtures.config("good/riscv64-rtos.toml")
        c.memoryRegions.append(.init(gpa: 1 << 45, size: 1 << 21, flags: 3, mapType: .alloc, index: 1))
        #expect(Checker().check(c).isEmpty)
        c.memoryRegions[1].gpa = 1 << 50
        #expect(Checker().check(c).map(\.rule) == [.beyondAddressWidth])
    }

    /// The sweep once paired each range only with the one reaching furthest
    /// before it: RAM [0, 0x3000), a device [0x1000, 0x8000) and a device
    /// [0x2000, 0x3000) lost the RAM/second-device pair.
    @Test func theSweepFindsEveryPair() {
        let spans: [OverlapSweep.Span] = [
            .init(start: 0, size: 0x3000, kind: .ram, name: "ram", line: nil),
            .init(start: 0x1000, size: 0x7000, kind: .passthrough, name: "a", line: nil),
            .init(start: 0x2000, size: 0x1000, kind: .passthrough, name: "b", line: nil),
            .init(start: 0x3000, size: 0x1000, kind: .emulated, name: "adjacent to ram", line: nil),
        ]
        let pairs = OverlapSweep.pairs(spans).map { "\($0.0.name)-\($0.1.name)@\(hex($0.witness))" }
        #expect(Set(pairs) == ["ram-a@0x1000", "ram-b@0x2000", "a-b@0x2000", "a-adjacent to ram@0x3000"])
    }
}
