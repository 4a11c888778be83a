import Foundation
import HVCore
import TOMLKit

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

/// Reads axvisor VM configurations (and host descriptions) with TOMLKit.
public struct ConfigParser {
    let file: String
    let text: String
    let lines: [Substring]

    init(file: String, text: String) {
        self.file = file
        self.text = text
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func fail(_ path: String, _ message: String, line: Int? = nil) -> ConfigError {
        ConfigError(file: file, keyPath: path, line: line ?? self.line(of: path), message: message)
    }

    /// The line a key is written on (1-based), found in the text: TOMLKit
    /// gives positions only for syntax errors.
    func line(of path: String) -> Int? {
        guard let key = path.split(separator: ".").last?.split(separator: "[").first else { return nil }
        return lines.firstIndex { $0.trimmingPrefix(while: \.isWhitespace).hasPrefix(key + " ") || $0.trimmingPrefix(while: \.isWhitespace).hasPrefix(key + "=") }.map { $0 + 1 }
    }

    /// The lines of the inner arrays of an array-of-arrays key, in order.
    func elementLines(of key: String) -> [Int] {
        guard let start = line(of: key) else { return [] }
        var out: [Int] = []
        var depth = 0
        for (i, raw) in lines.enumerated().dropFirst(start - 1) {
            let content = raw.split(separator: "#", maxSplits: 1).first ?? ""
            for ch in content {
                if ch == "[" {
                    depth += 1
                    if depth == 2 { out.append(i + 1) }
                } else if ch == "]" {
                    depth -= 1
                    if depth == 0 { return out }
                }
            }
        }
        return out
    }

    static func table(file: String, text: String) throws(ConfigError) -> TOMLTable {
        do {
            return try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, keyPath: "", line: e.source.begin.line, message: "TOML syntax: \(e.description)")
        } catch {
            throw ConfigError(file: file, keyPath: "", line: nil, message: "TOML: \(error)")
        }
    }

    // Typed readers that name the key path on every mismatch.

    func integer(_ value: TOMLValueConvertible?, _ path: String, line: Int? = nil) throws(ConfigError) -> UInt64 {
        guard let value else { throw fail(path, "missing", line: line) }
        guard let i = value.int else { throw fail(path, "expected an integer, found \(value.type)", line: line) }
        guard i >= 0 else { throw fail(path, "negative value \(i) where an address, size or count is expected", line: line) }
        return UInt64(i)
    }

    func optionalInteger(_ value: TOMLValueConvertible?, _ path: String, default d: UInt64 = 0, line: Int? = nil) throws(ConfigError) -> UInt64 {
        guard value != nil else { return d }
        return try integer(value, path, line: line)
    }

    func string(_ value: TOMLValueConvertible?, _ path: String) throws(ConfigError) -> String {
        guard let value else { throw fail(path, "missing") }
        guard let s = value.string else { throw fail(path, "expected a string, found \(value.type)") }
        return s
    }

    func optionalString(_ value: TOMLValueConvertible?, _ path: String) throws(ConfigError) -> String? {
        guard value != nil else { return nil }
        return try string(value, path)
    }

    func arrays(_ value: TOMLValueConvertible?, _ path: String) throws(ConfigError) -> [TOMLArray] {
        guard let value else { return [] }
        guard let outer = value.array else { throw fail(path, "expected an array of arrays, found \(value.type)") }
        var out: [TOMLArray] = []
        for (i, element) in outer.enumerated() {
            guard let inner = element.array else { throw fail("\(path)[\(i)]", "expected an array, found \(element.type)") }
            out.append(inner)
        }
        return out
    }

    func element(_ array: TOMLArray, _ i: Int) -> TOMLValueConvertible? { i < array.count ? array[i] : nil }

    /// Parses one VM configuration.
    public static func parse(file: String, text: String) throws(ConfigError) -> VMConfig {
        let p = ConfigParser(file: file, text: text)
        let root = try table(file: file, text: text)
        let sections = ["base", "kernel", "devices"]
        if sections.allSatisfy({ root[$0] == nil }) {
            let old = root.keys.contains("memory_regions") || root.keys.contains("id") || root.keys.contains("name")
            throw p.fail("", old ? "unsupported format: the old flat layout without [base], [kernel] and [devices]; move the keys into those tables"
                                 : "unsupported format: no [base], [kernel] or [devices] table")
        }
        for s in sections {
            guard let v = root[s] else { throw p.fail(s, "missing required table [\(s)]") }
            guard v.table != nil else { throw p.fail(s, "expected a table, found \(v.type)") }
        }
        let base = root["base"]!.table!, kernel = root["kernel"]!.table!, devices = root["devices"]!.table!
        var c = VMConfig(file: file)
        c.id = try p.integer(base["id"], "base.id")
        c.name = try p.string(base["name"], "base.name")
        c.vmType = try p.optionalInteger(base["vm_type"], "base.vm_type")
        c.cpuNum = try p.optionalInteger(base["cpu_num"], "base.cpu_num", default: 1)
        if let ids = base["phys_cpu_ids"] {
            guard let a = ids.array else { throw p.fail("base.phys_cpu_ids", "expected an array, found \(ids.type)") }
            c.physCpuIds = try a.enumerated().map { (i, v) throws(ConfigError) in try p.integer(v, "base.phys_cpu_ids[\(i)]") }
        }
        c.entryPoint = try p.integer(kernel["entry_point"], "kernel.entry_point")
        for kind in ["kernel", "bios", "dtb", "ramdisk"] {
            let pathKey = "\(kind)_path", addrKey = "\(kind)_load_addr"
            guard kernel[pathKey] != nil || kernel[addrKey] != nil else { continue }
            let path = try p.optionalString(kernel[pathKey], "kernel.\(pathKey)") ?? ""
            let address = try p.integer(kernel[addrKey], "kernel.\(addrKey)")
            // The image's size, when its file is found beside the configuration.
            var size: UInt64?
            if !path.isEmpty {
                let dir = URL(fileURLWithPath: file).deletingLastPathComponent()
                let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : dir.appendingPathComponent(path)
                size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value
            }
            c.images.append(.init(kind: kind, path: path, loadAddress: address, size: size))
        }
        if !c.images.contains(where: { $0.kind == "kernel" }) { throw p.fail("kernel.kernel_load_addr", "missing") }
        c.cmdline = try p.optionalString(kernel["cmdline"], "kernel.cmdline")
        c.imageLocation = try p.optionalString(kernel["image_location"], "kernel.image_location")
        let regionLines = p.elementLines(of: "memory_regions")
        for (i, r) in try p.arrays(kernel["memory_regions"], "kernel.memory_regions").enumerated() {
            let path = "kernel.memory_regions[\(i)]"
            let line = i < regionLines.count ? regionLines[i] : p.line(of: "memory_regions")
            guard r.count == 4 else { throw p.fail(path, "expected [gpa, size, flags, map_type], found \(r.count) values", line: line) }
            let mapType = try p.integer(r[3], "\(path)[3]", line: line)
            guard let mt = VMConfig.MapType(rawValue: Int(clamping: mapType)) else {
                throw p.fail("\(path)[3]", "map_type \(mapType) is not 0 (MapAlloc), 1 (MapIdentical) or 2 (MapReserved)", line: line)
            }
            c.memoryRegions.append(.init(gpa: try p.integer(r[0], "\(path)[0]", line: line), size: try p.integer(r[1], "\(path)[1]", line: line),
                                         flags: try p.integer(r[2], "\(path)[2]", line: line), mapType: mt, index: i, line: line))
        }
        c.interruptMode = try p.optionalString(devices["interrupt_mode"], "devices.interrupt_mode")
        let deviceLines = p.elementLines(of: "passthrough_devices")
        for (i, d) in try p.arrays(devices["passthrough_devices"], "devices.passthrough_devices").enumerated() {
            let path = "devices.passthrough_devices[\(i)]"
            let line = i < deviceLines.count ? deviceLines[i] : p.line(of: "passthrough_devices")
            c.passthroughDevices.append(.init(
                name: try p.string(p.element(d, 0), "\(path)[0]"),
                gpa: try p.optionalInteger(p.element(d, 1), "\(path)[1]", line: line),
                hpa: try p.optionalInteger(p.element(d, 2), "\(path)[2]", line: line),
                length: try p.optionalInteger(p.element(d, 3), "\(path)[3]", line: line),
                irq: try p.optionalInteger(p.element(d, 4), "\(path)[4]", line: line), index: i, line: line))
        }
        for (i, d) in try p.arrays(devices["emu_devices"], "devices.emu_devices").enumerated() {
            let path = "devices.emu_devices[\(i)]"
            c.emuDevices.append(.init(name: try p.string(p.element(d, 0), "\(path)[0]"), gpa: try p.optionalInteger(p.element(d, 1), "\(path)[1]"),
                                      length: try p.optionalInteger(p.element(d, 2), "\(path)[2]"), irq: try p.optionalInteger(p.element(d, 3), "\(path)[3]"),
                                      type: try p.optionalInteger(p.element(d, 4), "\(path)[4]"), index: i))
        }
        for (i, a) in try p.arrays(devices["passthrough_addresses"], "devices.passthrough_addresses").enumerated() {
            c.passthroughAddresses.append((try p.integer(p.element(a, 0), "devices.passthrough_addresses[\(i)][0]"),
                                           try p.integer(p.element(a, 1), "devices.passthrough_addresses[\(i)][1]")))
        }
        for key in ["excluded_devices", "shared"] {
            guard let v = devices[key] else { continue }
            guard let a = v.array else { throw p.fail("devices.\(key)", "expected an array, found \(v.type)") }
            let names = try a.enumerated().map { (i, e) throws(ConfigError) in try p.string(e, "devices.\(key)[\(i)]") }
            if key == "shared" { c.sharedDevices = names } else { c.excludedDevices = names }
        }
        return c
    }

    /// Parses a host description: `ram = [[start, size], ...]` and
    /// `hypervisor = [[start, size], ...]`.
    public static func parseHost(file: String, text: String) throws(ConfigError) -> HostDescription {
        let p = ConfigParser(file: file, text: text)
        let root = try table(file: file, text: text)
        func ranges(_ key: String) throws(ConfigError) -> [(start: UInt64, size: UInt64)] {
            try p.arrays(root[key], key).enumerated().map { (i, a) throws(ConfigError) in
                (try p.integer(p.element(a, 0), "\(key)[\(i)][0]"), try p.integer(p.element(a, 1), "\(key)[\(i)][1]"))
            }
        }
        guard root["ram"] != nil else { throw p.fail("ram", "missing: a host description lists its RAM as ram = [[start, size], ...]") }
        return HostDescription(ram: try ranges("ram"), hypervisor: try ranges("hypervisor"))
    }
}
