import HVCore

/// The configuration `hvkit generate` writes: a working starting point in
/// the current format for each architecture, laid out as axvisor's boards
/// are (x86_64: RAM from 0 with the I/O APIC, local APIC and HPET passed
/// through; aarch64 and riscv64: RAM at the board's usual base, the host's
/// device tree passed through by name, the DTB at the top of RAM).
public struct ConfigTemplate: Sendable {
    public var arch: Architecture
    public var id: UInt64 = 1
    public var name: String?
    public var cpus: UInt64 = 1
    public var entry: UInt64?
    public var kernel: String?
    public var loadAddress: UInt64?
    public var memory: UInt64 = 256 << 20
    public var cmdline: String?

    public init(arch: Architecture) { self.arch = arch }

    public enum TemplateError: Error, CustomStringConvertible {
        case memory(UInt64), cpus, kernelOutsideRAM(UInt64)
        public var description: String {
            switch self {
            case let .memory(m): "--memory \(hex(m)) must be a non-zero multiple of 2 MiB of at most 64 GiB"
            case .cpus: "--cpus must be 1 to 256"
            case let .kernelOutsideRAM(a): "--load-addr/--entry \(hex(a)) is outside the generated RAM"
            }
        }
    }

    /// RAM base and default kernel offset per architecture.
    var ramBase: UInt64 { switch arch { case .x86_64: 0; case .aarch64: 0x4000_0000; case .riscv64: 0x9000_0000 } }

    public func config() throws(TemplateError) -> VMConfig {
        guard memory > 0, memory % (2 << 20) == 0, memory <= 64 << 30 else { throw .memory(memory) }
        guard (1...256).contains(cpus) else { throw .cpus }
        let load = loadAddress ?? (arch == .x86_64 ? 0x20_0000 : ramBase + 0x8_0000)
        let entryPoint = entry ?? load
        for a in [load, entryPoint] where !(a >= ramBase && a - ramBase < memory) { throw .kernelOutsideRAM(a) }
        var c = VMConfig(file: "generated.toml", id: id, name: name ?? "\(arch.rawValue)-vm", vmType: UInt64(VMConfig.VMType.linux.rawValue), cpuNum: cpus,
                         physCpuIds: (0..<cpus).map { arch == .aarch64 ? $0 << 8 : $0 }, entryPoint: entryPoint)
        c.images = [.init(kind: "kernel", path: kernel ?? (arch == .x86_64 ? "bzImage" : "Image"), loadAddress: load)]
        c.imageLocation = "fs"
        c.cmdline = cmdline ?? (arch == .aarch64 ? "console=ttyAMA0 earlycon" : "console=ttyS0 earlycon")
        c.memoryRegions = [.init(gpa: ramBase, size: memory, flags: MappingFlags.rwx.rawValue, mapType: .alloc, index: 0)]
        switch arch {
        case .x86_64:
            c.interruptMode = .passthrough
            c.passthroughDevices = [
                .init(name: "IO APIC", gpa: 0xFEC0_0000, hpa: 0xFEC0_0000, length: 0x1000, irq: 0, index: 0),
                .init(name: "Local APIC", gpa: 0xFEE0_0000, hpa: 0xFEE0_0000, length: 0x1000, irq: 0, index: 1),
                .init(name: "HPET", gpa: 0xFED0_0000, hpa: 0xFED0_0000, length: 0x1000, irq: 0, index: 2),
            ]
        case .aarch64, .riscv64:
            c.interruptMode = .passthrough
            // The DTB goes 2 MiB below the top of RAM, out of the kernel's way.
            c.images.append(.init(kind: "dtb", path: "\(c.name).dtb", loadAddress: ramBase + memory - (2 << 20)))
            c.passthroughDevices = [.init(name: "/", index: 0)]
        }
        return c
    }

    public func text() throws(TemplateError) -> String {
        let c = try config()
        var header = ["An axvisor VM configuration for \(arch.rawValue), written by hvkit generate.",
                      "Check it with: hvkit check FILE" + (arch == .x86_64 ? "" : " [--dtb BOARD.dtb]")]
        if arch != .x86_64 {
            header.append("passthrough_devices = [[\"/\"]] passes the host's whole device tree through (memory nodes aside);")
            header.append("name subtrees to keep out in excluded_devices, e.g. [[\"/pcie@10000000\"]].")
        }
        return ConfigWriter.write(c, header: header)
    }
}
