import HVCore

/// Writes a configuration in the current axvisor format, commented, so
/// that `ConfigParser` reads back the same configuration.
public enum ConfigWriter {
    /// 0x4000_0000: hex with a separator every four digits, as board files write it.
    public static func number(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        guard digits.count > 4 else { return "0x" + digits }
        var groups: [String] = []
        var rest = Substring(digits)
        while rest.count > 4 {
            groups.insert(String(rest.suffix(4)), at: 0)
            rest = rest.dropLast(4)
        }
        groups.insert(String(rest), at: 0)
        return "0x" + groups.joined(separator: "_")
    }

    /// A TOML basic string: the escapes are JSON's (quote, backslash,
    /// \n, \t, \uXXXX for other control characters), which TOML shares.
    public static func string(_ s: String) -> String { Report.json(s) }

    static func list(_ xs: [UInt64]) -> String { "[" + xs.map(number).joined(separator: ", ") + "]" }

    static func rows(_ key: String, _ rows: [(String, String?)]) -> [String] {
        guard !rows.isEmpty else { return ["\(key) = []"] }
        return ["\(key) = ["] + rows.map { "    \($0.0)," + ($0.1.map { "  # \($0)" } ?? "") } + ["]"]
    }

    public static func write(_ c: VMConfig, header: [String] = []) -> String {
        var out = header.map { "# " + $0 }
        out += ["[base]", "id = \(c.id)", "name = \(string(c.name))", "vm_type = \(c.vmType)  # 0 host, 1 RTOS, 2 Linux",
                "cpu_num = \(c.cpuNum)"]
        if let ids = c.physCpuIds { out.append("phys_cpu_ids = \(list(ids))  # one per vCPU: MPIDR, hart or APIC id") }
        if let sets = c.physCpuSets { out.append("phys_cpu_sets = \(list(sets))  # one CPU mask per vCPU") }
        out += ["", "[kernel]", "entry_point = \(number(c.entryPoint))"]
        for kind in ["kernel", "bios", "dtb", "ramdisk"] {
            guard let image = c.image(kind) else { continue }
            if !image.path.isEmpty || kind == "kernel" { out.append("\(kind)_path = \(string(image.path))") }
            out.append("\(kind)_load_addr = \(number(image.loadAddress))")
        }
        if let l = c.imageLocation { out.append("image_location = \(string(l))  # \"fs\" (a file) or \"memory\" (built in)") }
        if let s = c.cmdline { out.append("cmdline = \(string(s))") }
        if let d = c.diskPath { out.append("disk_path = \(string(d))") }
        out.append("# [gpa, size, flags (R=1 W=2 X=4 USER=8 DEVICE=0x10 UNCACHED=0x20), map_type (0 MapAlloc, 1 MapIdentical, 2 MapReserved)]")
        out += rows("memory_regions", c.memoryRegions.map {
            ("[\(number($0.gpa)), \(number($0.size)), \(number($0.flags)), \($0.mapType.rawValue)]", "\($0.mapType), \(MappingFlags(rawValue: $0.flags & MappingFlags.all.rawValue))")
        })
        out += ["", "[devices]", "interrupt_mode = \(string(c.interruptMode.rawValue))  # no_irq, emu or passthrough"]
        out.append("# [name, base_gpa, base_hpa, length, irq_id]; a name alone is a device-tree path")
        out += rows("passthrough_devices", c.passthroughDevices.map { d in
            d.fromDeviceTree && d.gpa == 0 && d.hpa == 0 && d.irq == 0
                ? ("[\(string(d.name))]", "every device under this device-tree node")
                : ("[\(string(d.name)), \(number(d.gpa)), \(number(d.hpa)), \(number(d.length)), \(number(d.irq))]", nil)
        })
        if !c.passthroughAddresses.isEmpty {
            out += rows("passthrough_addresses", c.passthroughAddresses.map { ("[\(number($0.gpa)), \(number($0.length))]", "identity window") })
        }
        if !c.excludedDevices.isEmpty {
            out += rows("excluded_devices", c.excludedDevices.map { ("[" + $0.map(string).joined(separator: ", ") + "]", nil) })
        }
        out.append("# [name, base_gpa, length, irq_id, emu_type, [cfg_list...]]")
        out += rows("emu_devices", c.emuDevices.map {
            ("[\(string($0.name)), \(number($0.gpa)), \(number($0.length)), \(number($0.irq)), \(number($0.type.rawValue)), \(list($0.cfgList))]", "\($0.type)")
        })
        if !c.sharedDevices.isEmpty { out.append("shared = [" + c.sharedDevices.map(string).joined(separator: ", ") + "]  # HVKit: host ranges other VMs may map too") }
        return out.joined(separator: "\n") + "\n"
    }
}
