import HVCore

/// The guest architecture a configuration is for, and what follows from
/// it for the rules: the widest guest-physical address its nested page
/// tables can translate.
public enum Architecture: String, CaseIterable, Sendable {
    case x86_64, aarch64, riscv64

    /// Bits of guest-physical address: x86-64 EPT with four levels (48),
    /// AArch64 stage 2 with a 4 KiB granule and no LPA2 (48; a board whose
    /// PARange is smaller accepts less), RISC-V Sv48x4 (50; Sv39x4 takes
    /// 41).
    public var guestAddressBits: Int {
        switch self {
        case .x86_64: 48
        case .aarch64: 48
        case .riscv64: 50
        }
    }

    /// The nested page-table format a VM of this architecture gets when
    /// its highest guest-physical address (exclusive) is `end`: EPT on
    /// x86_64; on aarch64 stage 2 with a 40-bit IPA, 48 bits past 2^40; on
    /// riscv64 Sv39x4, Sv48x4 past 2^41.
    public func pageTableFormat(end: UInt128) -> NestedFormat {
        switch self {
        case .x86_64: .ept
        case .aarch64: end > UInt128(1) << 40 ? .stage2IPA48 : .stage2
        case .riscv64: end > UInt128(1) << 41 ? .sv48x4 : .sv39x4
        }
    }

    /// What the configuration (and its device tree, when there is one)
    /// shows, with the reason. GIC devices mean aarch64, PLIC/CLINT
    /// riscv64, a BIOS image or APIC/HPET devices x86_64; a device tree
    /// alone means aarch64 or riscv64, told apart by the tree's
    /// compatible strings or the names in the configuration; nothing at
    /// all means x86_64, the one architecture axvisor boots without a
    /// device tree.
    public static func infer(_ c: VMConfig, tree: DeviceTree? = nil) -> (Architecture, String) {
        if c.emuDevices.contains(where: { (0x20...0x22).contains($0.type.rawValue) }) { return (.aarch64, "GIC partial pass-through devices") }
        let names = (c.passthroughDevices.map(\.name) + c.emuDevices.map(\.name) + c.excludedDevices.flatMap { $0 }).map { $0.lowercased() }
        func named(_ words: [String]) -> String? { names.first { n in words.contains { n.contains($0) } } }
        if let n = named(["gic", "pl011", "arm,"]) { return (.aarch64, "device \"\(n)\"") }
        if let n = named(["plic", "clint", "riscv"]) { return (.riscv64, "device \"\(n)\"") }
        if let n = named(["apic", "hpet"]) { return (.x86_64, "device \"\(n)\"") }
        if c.image("bios") != nil { return (.x86_64, "a BIOS image") }
        var compatible: [String] = []
        if let tree {
            func walk(_ n: DeviceTree.Node) { compatible += n.strings("compatible"); n.children.forEach(walk) }
            walk(tree.root)
        }
        if compatible.contains(where: { $0.hasPrefix("riscv") || $0.contains(",plic") || $0.contains("clint") }) { return (.riscv64, "the device tree's compatible strings") }
        if compatible.contains(where: { $0.hasPrefix("arm,") }) { return (.aarch64, "the device tree's compatible strings") }
        if c.image("dtb") != nil || tree != nil {
            let words = ([c.name] + c.images.map(\.path)).joined(separator: " ").lowercased()
            if words.contains("riscv") || words.contains("rv64") { return (.riscv64, "a device tree and the name \"riscv\"") }
            return (.aarch64, "a device tree without GIC or PLIC devices (most axvisor boards are aarch64)")
        }
        return (.x86_64, "no device tree, GIC or PLIC")
    }
}
