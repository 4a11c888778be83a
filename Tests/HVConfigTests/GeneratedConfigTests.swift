import Foundation
import HVConfig
import HVCore
import Testing

/// Random valid configurations in the current format, and one seeded
/// mistake at a time.
struct ConfigGenerator {
    var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func below(_ n: Int) -> Int { Int(rng.below(UInt64(n))) }
    mutating func pick<T>(_ xs: [T]) -> T { xs[below(xs.count)] }

    /// RAM regions, pass-through devices, windows and emulated devices laid
    /// out in address order with gaps (or none) between them, every item
    /// on its own 4 KiB pages; the first region is RWX and holds the
    /// kernel, the DTB and ramdisk lie in readable RAM.
    mutating func valid(index: Int) -> VMConfig {
        let cpus = UInt64(1 + below(4))
        var c = VMConfig(file: "gen-\(index).toml", id: UInt64(index), name: "vm-\(index)", vmType: UInt64(below(3)), cpuNum: cpus)
        if below(2) == 0 { c.physCpuIds = (0..<cpus).map { $0 << 8 } }
        if below(3) == 0 { c.physCpuSets = (0..<cpus).map { 1 << $0 } }
        var cursor: UInt64 = 0x100_0000 * UInt64(1 + below(64))
        func advance(_ size: UInt64, gap: Bool) {
            cursor = (cursor + size + 0xFFF) & ~0xFFF
            if gap { cursor += UInt64(below(8)) << 20 }
        }
        var kinds = [0] + (0..<below(4)).map { _ in 0 } + (0..<below(6)).map { _ in 1 } + (0..<below(3)).map { _ in 2 } + (0..<below(4)).map { _ in 3 }
        let first = kinds.removeFirst()
        rng.shuffle(&kinds)
        var names = Set<String>()
        for (k, kind) in ([first] + kinds).enumerated() {
            switch kind {
            case 0:
                let size = UInt64(1 + below(256)) << 21
                let flags: UInt64 = k == 0 ? 0x7 : pick([0x1, 0x3, 0x5, 0x7, 0xB, 0xF, 0x23])
                let type = pick([VMConfig.MapType.alloc, .identical, .reserved])
                c.memoryRegions.append(.init(gpa: cursor, size: size, flags: flags, mapType: type, index: c.memoryRegions.count))
                advance(size, gap: below(2) == 0)
            case 1:
                var name = pick(["uart", "gpio", "i2c", "spi", "timer", "rtc", "dma"]) + "\(below(100))"
                while names.contains(name) { name += "x" }
                names.insert(name)
                let length = UInt64(pick([0x100, 0x1000, 0x2000, 0x1_0000, 0x80]))
                let offset = UInt64(below(2) == 0 ? 0 : pick([0x10, 0x800]))
                let hpa = below(2) == 0 ? cursor + offset : cursor + offset + (UInt64(1 + below(8)) << 32)
                c.passthroughDevices.append(.init(name: name, gpa: cursor + offset, hpa: hpa, length: length, irq: UInt64(below(64)), index: c.passthroughDevices.count))
                advance(offset + length, gap: below(2) == 0)
            case 2:
                let length = UInt64(1 + below(16)) << 12
                c.passthroughAddresses.append(.init(gpa: cursor, length: length, index: c.passthroughAddresses.count))
                advance(length, gap: below(2) == 0)
            default:
                let length = UInt64(pick([0x1000, 0x1_0000, 0x200]))
                let type = pick(VMConfig.EmulatedDeviceType.allCases)
                c.emuDevices.append(.init(name: "emu\(c.emuDevices.count)", gpa: cursor, length: length, irq: UInt64(below(64)), type: type,
                                          cfgList: (0..<below(3)).map { _ in UInt64(below(1 << 20)) }, index: c.emuDevices.count))
                advance(length, gap: below(2) == 0)
            }
        }
        let ram = c.memoryRegions[0]
        c.entryPoint = ram.gpa + UInt64(below(16)) * 0x1000
        c.images = [.init(kind: "kernel", path: "Image", loadAddress: c.entryPoint)]
        let readable = c.memoryRegions.filter { $0.flags & 1 != 0 }
        if below(2) == 0 { c.images.append(.init(kind: "dtb", path: "", loadAddress: pick(readable).gpa + 0x1000)) }
        if below(3) == 0 { c.images.append(.init(kind: "ramdisk", path: "initrd", loadAddress: pick(readable).gpa + 0x2000)) }
        c.interruptMode = pick([.noIRQ, .emulated, .passthrough])
        if below(3) == 0 { c.cmdline = "console=ttyS0 root=/dev/vda \"quoted\"" }
        if below(3) == 0 { c.imageLocation = pick(["fs", "memory"]) }
        return c
    }

    enum Mistake: CaseIterable {
        case unalignedSize, zeroSize, unknownFlags, writeWithoutRead, deviceInRAM, ramOverlap, deviceOverRAM, devicesOverlap
        case imageOutsideRAM, entryOutsideRAM, duplicateDevice, emulatedOverRAM, emulatedOverPassthrough, cpuCount, beyondWidth
        case windowOverRAM, emulatedZeroLength, mixedPassthrough, windowZeroLength

        var rule: Rule {
            switch self {
            case .unalignedSize: .unaligned
            case .zeroSize, .emulatedZeroLength, .windowZeroLength: .zeroSize
            case .unknownFlags: .unknownFlags
            case .writeWithoutRead: .writeWithoutRead
            case .deviceInRAM: .deviceInRAM
            case .ramOverlap: .ramOverlap
            case .deviceOverRAM, .windowOverRAM: .ramDeviceOverlap
            case .devicesOverlap: .deviceOverlap
            case .imageOutsideRAM: .imageOutsideRAM
            case .entryOutsideRAM: .entryNotExecutable
            case .duplicateDevice: .duplicateDevice
            case .emulatedOverRAM: .emulatedOverlap
            case .emulatedOverPassthrough: .emulatedOverPassthrough
            case .cpuCount: .cpuCount
            case .beyondWidth: .beyondAddressWidth
            case .mixedPassthrough: .mixedPassthrough
            }
        }
    }

    /// One mistake of the given kind, on a RAM region that holds no image
    /// where the mistake is about a region.
    mutating func seed(_ m: Mistake, into c: inout VMConfig) {
        let imageRegions = Set(c.images.compactMap { i in c.memoryRegions.firstIndex { i.loadAddress >= $0.gpa && i.loadAddress - $0.gpa < $0.size } })
        let spare = c.memoryRegions.indices.filter { !imageRegions.contains($0) }
        // Every mistake about "some region" adds a fresh one past the others when none is spare.
        func spareRegion() -> Int {
            if let i = spare.first { return i }
            let top = (c.memoryRegions.map { $0.gpa + $0.size } + c.passthroughDevices.map { $0.gpa + $0.length } + c.emuDevices.map { $0.gpa + $0.length }
                       + c.passthroughAddresses.map { $0.gpa + $0.length }).max()!
            c.memoryRegions.append(.init(gpa: (top + (1 << 21)) & ~0x1F_FFFF, size: 1 << 21, flags: 0x3, mapType: .alloc, index: c.memoryRegions.count))
            return c.memoryRegions.count - 1
        }
        let ram = c.memoryRegions[0]
        switch m {
        case .unalignedSize: let i = spareRegion(); c.memoryRegions[i].size -= 0x800
        case .zeroSize: let i = spareRegion(); c.memoryRegions[i].size = 0
        case .unknownFlags: let i = spareRegion(); c.memoryRegions[i].flags |= 0x40
        case .writeWithoutRead: let i = spareRegion(); c.memoryRegions[i].flags = 0x2
        case .deviceInRAM: let i = spareRegion(); c.memoryRegions[i].mapType = .alloc; c.memoryRegions[i].flags = 0x13
        case .ramOverlap:
            c.memoryRegions.append(.init(gpa: ram.gpa + 0x20_0000 * UInt64(below(Int(ram.size >> 21))), size: 0x20_0000, flags: 0x3, mapType: .alloc, index: c.memoryRegions.count))
        case .deviceOverRAM:
            c.passthroughDevices.append(.init(name: "stray", gpa: ram.gpa + ram.size - 0x1000, hpa: ram.gpa + ram.size - 0x1000, length: 0x1000, index: c.passthroughDevices.count))
        case .devicesOverlap:
            let top: UInt64 = 1 << 41  // above everything the generator lays out
            c.passthroughDevices.append(.init(name: "a", gpa: top, hpa: top, length: 0x2000, index: c.passthroughDevices.count))
            c.passthroughDevices.append(.init(name: "b", gpa: top + 0x1000, hpa: top + 0x10_0000, length: 0x1000, index: c.passthroughDevices.count))
        case .imageOutsideRAM: c.images.append(.init(kind: "bios", path: "bios.bin", loadAddress: 0x1000))
        case .entryOutsideRAM: c.entryPoint = 0x2000
        case .duplicateDevice:
            if c.passthroughDevices.isEmpty { seed(.deviceOverRAM, into: &c); c.passthroughDevices[0].gpa = 1 << 36; c.passthroughDevices[0].hpa = 1 << 36 }
            var d = c.passthroughDevices[below(c.passthroughDevices.count)]
            d.index = c.passthroughDevices.count
            c.passthroughDevices.append(d)
        case .emulatedOverRAM:
            c.emuDevices.append(.init(name: "stray", gpa: ram.gpa, length: 0x1000, irq: 0, type: .console, index: c.emuDevices.count))
        case .emulatedOverPassthrough:
            let top: UInt64 = 1 << 42
            c.passthroughDevices.append(.init(name: "uart-pt", gpa: top, hpa: top, length: 0x1000, index: c.passthroughDevices.count))
            c.emuDevices.append(.init(name: "uart-emu", gpa: top, length: 0x100, irq: 0, type: .console, index: c.emuDevices.count))
        case .cpuCount: c.physCpuIds = (0...c.cpuNum).map { $0 }
        case .beyondWidth:
            c.memoryRegions.append(.init(gpa: 1 << 50, size: 1 << 21, flags: 0x3, mapType: .alloc, index: c.memoryRegions.count))
        case .windowOverRAM:
            c.passthroughAddresses.append(.init(gpa: ram.gpa + 0x1000, length: 0x1000, index: c.passthroughAddresses.count))
        case .emulatedZeroLength:
            c.emuDevices.append(.init(name: "empty", gpa: 1 << 37, length: 0, irq: 0, type: .dummy, index: c.emuDevices.count))
        case .mixedPassthrough:
            c.passthroughDevices.append(.init(name: "/soc/late", index: c.passthroughDevices.count))
            if c.passthroughDevices.count == 1 { c.passthroughDevices.insert(.init(name: "first", gpa: 1 << 38, hpa: 1 << 38, length: 0x1000, index: 0), at: 0) }
            for k in c.passthroughDevices.indices { c.passthroughDevices[k].index = k }
        case .windowZeroLength:
            c.passthroughAddresses.append(.init(gpa: 1 << 39, length: 0, index: c.passthroughAddresses.count))
        }
    }
}

@Suite("Generated configurations")
struct GeneratedConfigTests {
    /// The written text parses back to the same configuration.
    static func roundTrip(_ c: VMConfig) throws -> VMConfig {
        let text = ConfigWriter.write(c)
        var back = try ConfigParser.parse(file: c.file, text: text)
        back.lines = [:]
        for k in back.memoryRegions.indices { back.memoryRegions[k].line = nil }
        for k in back.passthroughDevices.indices { back.passthroughDevices[k].line = nil }
        for k in back.passthroughAddresses.indices { back.passthroughAddresses[k].line = nil }
        for k in back.emuDevices.indices { back.emuDevices[k].line = nil }
        for k in back.images.indices { back.images[k].line = nil }
        return back
    }

    @Test func validConfigurationsReportNothingAndSeededMistakesReportExactlyThemselves() throws {
        var gen = ConfigGenerator(seed: 0xC0F1_6000)
        var seeded: [ConfigGenerator.Mistake: Int] = [:]
        for i in 0..<1000 {
            let c = gen.valid(index: i)
            let back = try Self.roundTrip(c)
            #expect(back == c, "configuration \(i) does not survive ConfigWriter -> ConfigParser")
            let clean = Checker().check(back)
            #expect(clean.isEmpty, "configuration \(i): \(clean.map { "\($0.rule.rawValue) \($0.message)" })\n\(ConfigWriter.write(c))")
            let mistake = ConfigGenerator.Mistake.allCases[i % ConfigGenerator.Mistake.allCases.count]
            var bad = c
            gen.seed(mistake, into: &bad)
            let findings = Checker().check(try Self.roundTrip(bad))
            #expect(findings.map(\.rule) == [mistake.rule], "configuration \(i) with \(mistake): \(findings.map { "\($0.rule.rawValue) \($0.message)" })\n\(ConfigWriter.write(bad))")
            seeded[mistake, default: 0] += 1
        }
        #expect(seeded.count == ConfigGenerator.Mistake.allCases.count)
    }

    @Test(arguments: Architecture.allCases)
    func generatedConfigurationsPassTheCheck(_ arch: Architecture) throws {
        var t = ConfigTemplate(arch: arch)
        t.cpus = 2
        t.memory = 512 << 20
        let text = try t.text()
        let c = try ConfigParser.parse(file: "gen.toml", text: text)
        #expect(Architecture.infer(c).0 == arch, "the file shows its architecture")
        #expect(c.cpuNum == 2 && c.physCpuIds?.count == 2 && c.memoryRegions.first?.size == 512 << 20)
        #expect(Checker().check(c).allSatisfy { $0.severity == .note })
        if arch != .x86_64 {
            var checker = Checker()
            checker.deviceTrees[c.file] = try Fixtures.deviceTree(arch == .aarch64 ? "aarch64-virt" : "riscv64-virt")
            #expect(checker.check(c).isEmpty, "\(checker.check(c))")
        }
        var wrong = ConfigTemplate(arch: arch)
        wrong.loadAddress = 0xFFFF_0000_0000
        #expect(throws: ConfigTemplate.TemplateError.self) { try wrong.text() }
    }
}
