import ArgumentParser
import Foundation
import HVConfig
import HVCore

/// Shows the memory map a configuration plans.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the planned memory map of VM configurations (and draw them with --svg).",
        discussion: "Several files are drawn side by side, on one host-physical axis. Exit status 2 on unreadable input."
    )

    @Argument(help: "VM configuration files.")
    var files: [String]

    @Option(help: "A device tree blob to resolve name-only pass-through against (default: the dtb_path file when it exists).")
    var dtb: String?

    @Option(help: "x86_64, aarch64 or riscv64 (default: what each configuration shows).")
    var arch: String?

    @Option(help: "Write an SVG picture of the map here.")
    var svg: String?

    func validate() throws {
        if let arch, Architecture(rawValue: arch) == nil { throw ValidationError("--arch is x86_64, aarch64 or riscv64") }
    }

    func load() throws(ConfigError) -> [(VMConfig, DeviceTree?)] {
        var out: [(VMConfig, DeviceTree?)] = []
        for file in files {
            let c = try ConfigFiles.config(file)
            out.append((c, try ConfigFiles.deviceTree(for: c, override: dtb)?.0))
        }
        return out
    }

    func run() throws {
        let loaded: [(VMConfig, DeviceTree?)]
        do { loaded = try load() } catch {
            FileHandle.standardError.write(Data("hvkit inspect: \(error)\n".utf8))
            throw ExitCode(2)
        }
        var maps: [MemoryMapSVG.VM] = []
        for (config, tree) in loaded {
            let resolved = DeviceTreePassthrough(config: config, tree: tree).devices
            let plan = VMPlanner.plan(config, resolved: resolved)
            var checker = Checker()
            if let tree { checker.deviceTrees[config.file] = tree }
            checker.architecture = arch.flatMap(Architecture.init(rawValue:))
            let (a, reason) = checker.architecture(of: config)
            let ends = plan.map { UInt128($0.gpa) + UInt128($0.size) } + config.emuDevices.map { UInt128($0.gpa) + UInt128($0.length) }
            let format = a.pageTableFormat(end: ends.max() ?? 0)
            func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
            print("\(config.name) (id \(config.id)), \(a.rawValue) (\(reason)), entry \(hex(config.entryPoint))")
            let registers = format.rootRegisters(root: 0, vmid: UInt16(truncatingIfNeeded: config.id))
                .map { r in
                    switch r.name {
                    case "VTCR_EL2": "\(r.name) = \(hex(r.value))"
                    case "hgatp": "\(r.name) = \(hex(r.value)) | root >> 12"
                    default: "\(r.name) = \(hex(r.value)) | root"
                    }
                }.joined(separator: ", ")
            print("page table: \(format.type.name); root \(format.type.rootBytes / 1024) KiB (\(format.type.rootEntries) entries); \(registers); after a narrowing change: \(format.type.invalidationName)")
            print(pad("guest range", 36) + pad("size", 14) + pad("backing", 14) + pad("host range", 36) + pad("flags", 14) + "from")
            for m in plan {
                let backing: String = switch m.backing {
                case .alloc: "alloc"
                case .identical: "identical"
                case .reserved: "reserved"
                case .passthrough: "passthrough"
                }
                let host = m.hostStart.map { "[\(hex($0)), \(hex($0 &+ m.size)))" } ?? "(allocated)"
                print(pad("[\(hex(m.gpa)), \(hex(m.end)))", 36) + pad(hex(m.size), 14) + pad(backing, 14) + pad(host, 36)
                    + pad(m.flags.description, 14) + m.sources.joined(separator: ", "))
            }
            for e in config.emuDevices {
                print(pad("[\(hex(e.gpa)), \(hex(e.gpa &+ e.length)))", 36) + pad(hex(e.length), 14) + pad("emulated", 14) + pad("(traps)", 36)
                    + pad("", 14) + "emu_devices[\(e.index)] \(e.name) (\(e.type))")
            }
            print("")
            maps.append(.init(config: config, plan: plan, fromDeviceTree: Set(resolved.map(\.name))))
        }
        if let svg {
            try MemoryMapSVG.render(maps).write(toFile: svg, atomically: true, encoding: .utf8)
            print("wrote \(svg)")
        }
    }
}
