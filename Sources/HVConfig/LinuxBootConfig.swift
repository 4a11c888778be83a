import Foundation
import HVCore

/// What `hvkit run VM.toml` takes from an axvisor x86_64 configuration to
/// boot its Linux kernel through the boot protocol.
///
/// The configuration decides the kernel and ramdisk files (relative to the
/// configuration), the command line, and the RAM size: its normal memory
/// regions (MapAlloc or MapIdentical, readable and writable, not device)
/// must cover [0, N) without a gap, and N is the guest's RAM. The boot
/// protocol decides instead where the kernel loads and starts
/// (entry_point, kernel_load_addr and a BIOS image are noted and not used),
/// and device regions are left to KVM's in-kernel devices.
public struct LinuxBootConfig: Sendable {
    public let kernel: String
    public let initrd: String?
    public let cmdline: String?
    public let ram: UInt64
    /// What the configuration asks for that the boot does not use.
    public let notes: [String]

    public init(_ config: VMConfig, path: String) throws(ConfigError) {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        func file(_ p: String) -> String { p.hasPrefix("/") ? p : dir.appendingPathComponent(p).path }
        guard let kernel = config.images.first(where: { $0.kind == "kernel" }), !kernel.path.isEmpty else {
            throw ConfigError(file: path, keyPath: "kernel.kernel_path", line: nil, message: "missing: a Linux guest needs its kernel image")
        }
        var notes: [String] = []
        if config.vmType != VMConfig.VMType.linux.rawValue { notes.append("vm_type \(config.vmType) is not 2 (Linux); booting it as Linux anyway") }
        if let bios = config.images.first(where: { $0.kind == "bios" }) {
            notes.append("bios_path \(bios.path) is not used: the kernel is entered through the boot protocol")
        }
        notes.append("entry_point \(hex(config.entryPoint)) and kernel_load_addr \(hex(kernel.loadAddress)) are not used: the boot protocol places the kernel")
        if config.cpuNum != 1 { notes.append("cpu_num \(config.cpuNum): HVKit runs one vCPU") }
        let rw: UInt64 = MappingFlags.read.rawValue | MappingFlags.write.rawValue
        let ramRegions = config.memoryRegions
            .filter { $0.mapType != .reserved && $0.flags & rw == rw && $0.flags & MappingFlags.device.rawValue == 0 }
            .sorted { $0.gpa < $1.gpa }
        var end: UInt64 = 0
        for r in ramRegions {
            guard r.gpa == end else {
                throw ConfigError(file: path, keyPath: "kernel.memory_regions[\(r.index)]", line: r.line,
                                  message: "starts at \(hex(r.gpa)), leaving a gap after \(hex(end)); HVKit boots Linux in RAM [0, N) without gaps")
            }
            end = r.gpa + r.size
        }
        guard end > 0 else { throw ConfigError(file: path, keyPath: "kernel.memory_regions", line: nil, message: "no normal memory region starts at 0") }
        for r in config.memoryRegions where !ramRegions.contains(r) {
            notes.append("memory_regions[\(r.index)] [\(hex(r.gpa)), \(hex(r.gpa + r.size))) \(r.mapType): left to KVM's in-kernel devices")
        }
        let ramdisk = config.images.first(where: { $0.kind == "ramdisk" }).map { file($0.path) }
        self.kernel = file(kernel.path)
        initrd = ramdisk
        cmdline = config.cmdline
        ram = end
        self.notes = notes
    }

}
