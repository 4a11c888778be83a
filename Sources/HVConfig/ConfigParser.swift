import Foundation
import HVCore

/// Why a configuration could not be read at all (exit status 2): the
/// file, the key path, and the line when known.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let keyPath: String
    public let line: Int?
    public let message: String

    public init(file: String, keyPath: String, line: Int?, message: String) {
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.message = message
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(keyPath.isEmpty ? "" : "\(keyPath): ")\(message)"
    }
}

/// Reads axvisor VM configurations in the current format (axvmconfig
/// 0.2.x) and host descriptions, with the key path and line of every
/// mistake. Keys the format does not know are errors: a misspelt key that
/// axvisor would ignore is a setting that silently does not happen.
public struct ConfigParser {
    let file: String

    func fail(_ path: String, _ message: String, line: Int?) -> ConfigError {
        ConfigError(file: file, keyPath: path, line: line, message: message)
    }

    static func document(file: String, bytes: [UInt8]) throws(ConfigError) -> TOMLTable {
        do {
            return try TOMLParser.parse(bytes: bytes)
        } catch {
            throw ConfigError(file: file, keyPath: "", line: error.position.line, message: "TOML syntax: \(error)")
        }
    }

    // Typed readers that name the key path on every mismatch.

    func table(_ parent: TOMLTable, _ key: String, _ path: String, required: Bool, known: Set<String>, line: Int?) throws(ConfigError) -> TOMLTable? {
        guard let node = parent[key] else {
            if required { throw fail(path, "missing required table [\(path)]", line: line) }
            return nil
        }
        guard let t = node.table else { throw fail(path, "expected a table, found \(node.value.typeName)", line: node.line) }
        for k in t.keys where !known.contains(k) {
            let suggestion = known.min { editDistance($0, k) < editDistance($1, k) }.flatMap { editDistance($0, k) <= 3 ? " (did you mean \($0)?)" : nil } ?? ""
            throw fail("\(path).\(k)", "unknown key\(suggestion); [\(path)] takes \(known.sorted().joined(separator: ", "))", line: t.entry(k)!.keyPosition.line)
        }
        return t
    }

    /// The key path is built only for a message (a table of 10,000 rows
    /// would otherwise format 40,000 paths it never prints).
    func integer(_ node: TOMLNode?, _ path: @autoclosure () -> String, line: Int?) throws(ConfigError) -> UInt64 {
        guard let node else { throw fail(path(), "missing", line: line) }
        guard let i = node.integer else { throw fail(path(), "expected an integer, found \(node.value.typeName)", line: node.line) }
        guard i >= 0 else { throw fail(path(), "negative value \(i) where an address, size or count is expected", line: node.line) }
        return UInt64(i)
    }

    func optionalInteger(_ node: TOMLNode?, _ path: String) throws(ConfigError) -> UInt64? {
        guard node != nil else { return nil }
        return try integer(node, path, line: nil)
    }

    func string(_ node: TOMLNode?, _ path: @autoclosure () -> String, line: Int?) throws(ConfigError) -> String {
        guard let node else { throw fail(path(), "missing", line: line) }
        guard let s = node.string else { throw fail(path(), "expected a string, found \(node.value.typeName)", line: node.line) }
        return s
    }

    func optionalString(_ node: TOMLNode?, _ path: String) throws(ConfigError) -> String? {
        guard node != nil else { return nil }
        return try string(node, path, line: nil)
    }

    func array(_ node: TOMLNode?, _ path: String, required: Bool, line: Int?) throws(ConfigError) -> [TOMLNode] {
        guard let node else {
            if required { throw fail(path, "missing (axvisor requires it; write \(path.split(separator: ".").last!) = [] for none)", line: line) }
            return []
        }
        guard let a = node.array else { throw fail(path, "expected an array, found \(node.value.typeName)", line: node.line) }
        return a
    }

    /// An array of arrays; each inner array with its element count in `counts`.
    func rows(_ node: TOMLNode?, _ path: String, required: Bool, line: Int?, counts: ClosedRange<Int>, shape: String) throws(ConfigError) -> [(Int, [TOMLNode], Int)] {
        try array(node, path, required: required, line: line).enumerated().map { (i, row) throws(ConfigError) in
            guard let inner = row.array else { throw fail("\(path)[\(i)]", "expected an array \(shape), found \(row.value.typeName)", line: row.line) }
            guard counts.contains(inner.count) else {
                throw fail("\(path)[\(i)]", "expected \(shape), found \(inner.count) value\(inner.count == 1 ? "" : "s")", line: row.line)
            }
            return (i, inner, row.line)
        }
    }

    func integers(_ node: TOMLNode?, _ path: String) throws(ConfigError) -> [UInt64]? {
        guard node != nil else { return nil }
        return try array(node, path, required: false, line: nil).enumerated().map { (i, v) throws(ConfigError) in try integer(v, "\(path)[\(i)]", line: v.line) }
    }

    /// The keys each table of the format takes (`shared` is HVKit's own).
    public static let knownKeys: [String: Set<String>] = [
        "base": ["id", "name", "vm_type", "cpu_num", "phys_cpu_ids", "phys_cpu_sets"],
        "kernel": ["entry_point", "kernel_path", "kernel_load_addr", "bios_path", "bios_load_addr", "dtb_path", "dtb_load_addr",
                   "ramdisk_path", "ramdisk_load_addr", "image_location", "cmdline", "disk_path", "memory_regions"],
        "devices": ["emu_devices", "passthrough_devices", "passthrough_addresses", "excluded_devices", "interrupt_mode", "shared"],
    ]

    /// Parses one VM configuration.
    public static func parse(file: String, text: String) throws(ConfigError) -> VMConfig {
        try parse(file: file, bytes: Array(text.utf8))
    }

    public static func parse(file: String, bytes: [UInt8]) throws(ConfigError) -> VMConfig {
        let p = ConfigParser(file: file)
        let root = try document(file: file, bytes: bytes)
        let sections: Set<String> = ["base", "kernel", "devices"]
        if sections.allSatisfy({ root[$0] == nil }) {
            let old = root.keys.contains("memory_regions") || root.keys.contains("id") || root.keys.contains("name")
            throw p.fail("", old ? "unsupported format: the old flat layout without [base], [kernel] and [devices]; move the keys into those tables"
                                 : "unsupported format: no [base], [kernel] or [devices] table", line: nil)
        }
        for k in root.keys where !sections.contains(k) {
            throw p.fail(k, "unknown key; a configuration has the tables [base], [kernel] and [devices]", line: root.entry(k)!.keyPosition.line)
        }
        let base = try p.table(root, "base", "base", required: true, known: knownKeys["base"]!, line: nil)!
        let kernel = try p.table(root, "kernel", "kernel", required: true, known: knownKeys["kernel"]!, line: nil)!
        let devices = try p.table(root, "devices", "devices", required: true, known: knownKeys["devices"]!, line: nil)!
        let baseLine = root["base"]!.line, kernelLine = root["kernel"]!.line, devicesLine = root["devices"]!.line

        var c = VMConfig(file: file)
        for (table, name) in [(base, "base"), (kernel, "kernel"), (devices, "devices")] {
            for k in table.keys { c.lines["\(name).\(k)"] = table.entry(k)!.keyPosition.line }
        }
        c.id = try p.integer(base["id"], "base.id", line: baseLine)
        c.name = try p.string(base["name"], "base.name", line: baseLine)
        c.vmType = try p.integer(base["vm_type"], "base.vm_type", line: baseLine)
        c.cpuNum = try p.integer(base["cpu_num"], "base.cpu_num", line: baseLine)
        c.physCpuIds = try p.integers(base["phys_cpu_ids"], "base.phys_cpu_ids")
        c.physCpuSets = try p.integers(base["phys_cpu_sets"], "base.phys_cpu_sets")

        c.entryPoint = try p.integer(kernel["entry_point"], "kernel.entry_point", line: kernelLine)
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        for kind in ["kernel", "bios", "dtb", "ramdisk"] {
            let pathKey = "\(kind)_path", addrKey = "\(kind)_load_addr"
            let required = kind == "kernel"
            guard required || kernel[pathKey] != nil || kernel[addrKey] != nil else { continue }
            let path = required ? try p.string(kernel[pathKey], "kernel.\(pathKey)", line: kernelLine) : try p.optionalString(kernel[pathKey], "kernel.\(pathKey)")
            guard let address = try p.optionalInteger(kernel[addrKey], "kernel.\(addrKey)") else {
                if required { throw p.fail("kernel.\(addrKey)", "missing", line: kernelLine) }
                // A path without a load address is loaded nowhere: axvisor skips it.
                continue
            }
            // The image's size, when its file is found beside the configuration.
            var size: UInt64?
            if let path, !path.isEmpty {
                let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : dir.appendingPathComponent(path)
                size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value
            }
            c.images.append(.init(kind: kind, path: path ?? "", loadAddress: address, size: size, line: kernel[addrKey]?.line))
        }
        c.cmdline = try p.optionalString(kernel["cmdline"], "kernel.cmdline")
        c.diskPath = try p.optionalString(kernel["disk_path"], "kernel.disk_path")
        c.imageLocation = try p.optionalString(kernel["image_location"], "kernel.image_location")
        if let l = c.imageLocation, l != "fs", l != "memory" {
            throw p.fail("kernel.image_location", "\"\(l)\" is not \"fs\" or \"memory\"", line: kernel["image_location"]?.line)
        }
        for (i, r, line) in try p.rows(kernel["memory_regions"], "kernel.memory_regions", required: true, line: kernelLine, counts: 4...4, shape: "[gpa, size, flags, map_type]") {
            func path() -> String { "kernel.memory_regions[\(i)]" }
            let mapType = try p.integer(r[3], "\(path())[3]", line: line)
            guard let mt = VMConfig.MapType(rawValue: Int(clamping: mapType)) else {
                throw p.fail("\(path())[3]", "map_type \(mapType) is not 0 (MapAlloc), 1 (MapIdentical) or 2 (MapReserved)", line: line)
            }
            c.memoryRegions.append(.init(gpa: try p.integer(r[0], "\(path())[0]", line: line), size: try p.integer(r[1], "\(path())[1]", line: line),
                                         flags: try p.integer(r[2], "\(path())[2]", line: line), mapType: mt, index: i, line: line))
        }

        if let mode = try p.optionalString(devices["interrupt_mode"], "devices.interrupt_mode") {
            guard let m = VMConfig.InterruptMode(spelling: mode) else {
                throw p.fail("devices.interrupt_mode", "\"\(mode)\" is not no_irq (no, none), emu (emulated) or passthrough (pt)", line: devices["interrupt_mode"]?.line)
            }
            c.interruptMode = m
        }
        for (i, d, line) in try p.rows(devices["passthrough_devices"], "devices.passthrough_devices", required: true, line: devicesLine,
                                       counts: 1...5, shape: "[name, base_gpa, base_hpa, length, irq_id] (fields after the name default to 0)") {
            func field(_ k: Int) throws(ConfigError) -> UInt64 { k < d.count ? try p.integer(d[k], "devices.passthrough_devices[\(i)][\(k)]", line: line) : 0 }
            c.passthroughDevices.append(.init(name: try p.string(d[0], "devices.passthrough_devices[\(i)][0]", line: line), gpa: try field(1), hpa: try field(2),
                                              length: try field(3), irq: try field(4), index: i, line: line))
        }
        for (i, d, line) in try p.rows(devices["emu_devices"], "devices.emu_devices", required: true, line: devicesLine,
                                       counts: 6...6, shape: "[name, base_gpa, length, irq_id, emu_type, [cfg_list...]]") {
            let path = "devices.emu_devices[\(i)]"
            let raw = try p.integer(d[4], "\(path)[4]", line: line)
            guard let type = VMConfig.EmulatedDeviceType(rawValue: raw) else {
                let known = VMConfig.EmulatedDeviceType.allCases.map { "0x\(String($0.rawValue, radix: 16, uppercase: true)) \($0)" }.joined(separator: ", ")
                throw p.fail("\(path)[4]", "emu_type \(hex(raw)) is not a device type axvisor knows (\(known))", line: line)
            }
            guard d[5].array != nil else { throw p.fail("\(path)[5]", "cfg_list: expected an array of integers, found \(d[5].value.typeName)", line: line) }
            c.emuDevices.append(.init(name: try p.string(d[0], "\(path)[0]", line: line), gpa: try p.integer(d[1], "\(path)[1]", line: line),
                                      length: try p.integer(d[2], "\(path)[2]", line: line), irq: try p.integer(d[3], "\(path)[3]", line: line),
                                      type: type, cfgList: try p.integers(d[5], "\(path)[5]") ?? [], index: i, line: line))
        }
        for (i, a, line) in try p.rows(devices["passthrough_addresses"], "devices.passthrough_addresses", required: false, line: devicesLine,
                                       counts: 0...2, shape: "[base_gpa, length]") {
            let path = "devices.passthrough_addresses[\(i)]"
            c.passthroughAddresses.append(.init(gpa: a.count > 0 ? try p.integer(a[0], "\(path)[0]", line: line) : 0,
                                                length: a.count > 1 ? try p.integer(a[1], "\(path)[1]", line: line) : 0, index: i, line: line))
        }
        for (i, paths, line) in try p.rows(devices["excluded_devices"], "devices.excluded_devices", required: false, line: devicesLine,
                                           counts: 0...Int.max, shape: "[path, ...]") {
            c.excludedDevices.append(try paths.enumerated().map { (k, v) throws(ConfigError) in try p.string(v, "devices.excluded_devices[\(i)][\(k)]", line: line) })
        }
        c.sharedDevices = try p.array(devices["shared"], "devices.shared", required: false, line: nil).enumerated().map { (i, v) throws(ConfigError) in
            try p.string(v, "devices.shared[\(i)]", line: v.line)
        }
        return c
    }

    /// Parses a host description: `ram = [[start, size], ...]` and
    /// `hypervisor = [[start, size], ...]`.
    public static func parseHost(file: String, text: String) throws(ConfigError) -> HostDescription {
        let p = ConfigParser(file: file)
        let root = try document(file: file, bytes: Array(text.utf8))
        for k in root.keys where k != "ram" && k != "hypervisor" {
            throw p.fail(k, "unknown key; a host description has ram and hypervisor", line: root.entry(k)!.keyPosition.line)
        }
        func ranges(_ key: String) throws(ConfigError) -> [(start: UInt64, size: UInt64)] {
            try p.rows(root[key], key, required: false, line: nil, counts: 2...2, shape: "[start, size]").map { (i, a, line) throws(ConfigError) in
                (try p.integer(a[0], "\(key)[\(i)][0]", line: line), try p.integer(a[1], "\(key)[\(i)][1]", line: line))
            }
        }
        guard root["ram"] != nil else { throw p.fail("ram", "missing: a host description lists its RAM as ram = [[start, size], ...]", line: nil) }
        return HostDescription(ram: try ranges("ram"), hypervisor: try ranges("hypervisor"))
    }
}

/// Levenshtein distance, for "did you mean" on unknown keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var prev = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[b.count]
}
