import HVCore

/// Everything a 64-bit Linux boot through the x86 boot protocol needs, laid
/// out and checked before any VM exists: the guest-physical memory map, where
/// the kernel, command line, initramfs and zero page go, and the entry.
///
/// The kernel is a bzImage (its protected-mode part at 1 MiB rounded up to
/// kernel_alignment, entered at +0x200, where it decompresses itself) or an
/// uncompressed ELF vmlinux (PT_LOAD segments at their physical addresses,
/// entered at e_entry, which for x86-64 vmlinux is physical: startup_64). A
/// vmlinux carries no setup header, so the zero page gets a minimal one.
///
/// Memory: [0, 640 KiB) RAM; [640 KiB, 1 MiB) read-only zeros where a PC has
/// video memory and ROMs (the kernel scans it for BIOS tables, finds none,
/// and sees it reserved in e820); [1 MiB, ram) RAM, eager or lazy. The
/// host's long-mode GDT and page tables sit at 0x10000, the zero page at
/// 0x7000 and the command line at 0x20000, all in low RAM the kernel
/// reclaims once it has copied what it needs.
public struct LinuxBootPlan {
    public static let zeroPage: UInt64 = 0x7000
    public static let commandLineAddress: UInt64 = 0x2_0000
    public static let lowRAMEnd: UInt64 = 0xA_0000
    public static let highRAMStart: UInt64 = 0x10_0000

    public enum Kernel {
        case bzImage(BzImage)
        case vmlinux(GuestImage)
    }

    public let kernel: Kernel
    /// The bytes whose setup header the zero page copies (the bzImage, or a
    /// synthesized header for a vmlinux).
    public let headerSource: [UInt8]
    public let initrd: [UInt8]?
    public let commandLine: String
    public let ram: UInt64
    public let lazy: Bool
    /// Where the initramfs goes: the highest page-aligned address below both
    /// RAM's end and the kernel's initrd_addr_max.
    public let initrdAddress: UInt64?

    public init(image: [UInt8], initrd: [UInt8]?, commandLine: String, ram: UInt64, lazy: Bool) throws(ImageError) {
        guard ram >= 16 << 20, ram % (2 << 20) == 0, ram <= 3 << 30 else {
            throw .unsupported("guest RAM must be a multiple of 2 MiB between 16 MiB and 3 GiB, not \(hex(ram))")
        }
        let initrdSize = UInt64(initrd?.count ?? 0)
        let cmdlineLimit: UInt32, initrdAddressMax: UInt32
        if ELFLoader.isELF(image) {
            let elf = try ELFLoader.load(image)
            guard elf.bits == 64 else { throw .unsupported("a vmlinux must be ELF64 (x86-64)") }
            try elf.check(ram: ram)
            for segment in elf.segments where segment.address < Self.highRAMStart {
                throw .unsupported("the vmlinux segment at \(hex(segment.address)) lies below 1 MiB, where the boot data goes")
            }
            kernel = .vmlinux(elf)
            headerSource = BootParams.syntheticSetupHeader()
            (cmdlineLimit, initrdAddressMax) = (BootParams.syntheticCommandLineLimit, 0x7FFF_FFFF)
            let top = min(ram, UInt64(initrdAddressMax) + 1)
            guard initrdSize <= top, top - initrdSize >= kernelEndFor(elf) else {
                throw .unsupported("an initramfs of \(hex(initrdSize)) bytes does not fit below \(hex(top)) above the kernel")
            }
        } else {
            let bz = try BzImage(image)
            try bz.check(ram: ram, initrdSize: initrdSize)
            kernel = .bzImage(bz)
            headerSource = image
            (cmdlineLimit, initrdAddressMax) = (bz.cmdlineSize, bz.initrdAddressMax)
        }
        guard commandLine.utf8.count <= Int(cmdlineLimit) else {
            throw .unsupported("the command line has \(commandLine.utf8.count) bytes; the kernel takes at most \(cmdlineLimit)")
        }
        guard !commandLine.utf8.contains(0) else { throw .unsupported("the command line contains a NUL byte") }
        self.initrd = initrd.flatMap { $0.isEmpty ? nil : $0 }
        self.commandLine = commandLine
        self.ram = ram
        self.lazy = lazy
        let kernelEnd: UInt64 = switch kernel {
        case let .bzImage(bz): bz.loadAddress + max(UInt64(bz.initSize), UInt64(bz.kernel.count))
        case let .vmlinux(elf): kernelEndFor(elf)
        }
        if let initrd = self.initrd {
            let top = min(ram, UInt64(initrdAddressMax) + 1)
            let address = (top - UInt64(initrd.count)) & ~0xFFF
            guard address >= kernelEnd else {
                throw .unsupported("an initramfs of \(hex(UInt64(initrd.count))) bytes at \(hex(address)) would overlap the kernel, which ends at \(hex(kernelEnd))")
            }
            initrdAddress = address
        } else {
            initrdAddress = nil
        }
    }

    /// Where the kernel's footprint ends: init_size past a bzImage's load
    /// address, the last segment's end for a vmlinux.
    public var kernelEnd: UInt64 {
        switch kernel {
        case let .bzImage(bz): bz.loadAddress + max(UInt64(bz.initSize), UInt64(bz.kernel.count))
        case let .vmlinux(elf): kernelEndFor(elf)
        }
    }


    public var entry: UInt64 {
        switch kernel {
        case let .bzImage(bz): bz.entry64
        case let .vmlinux(elf): elf.entry
        }
    }

    /// "bzImage, protocol 2.15, at 0x200000" or "vmlinux, 4 segments".
    public var kernelSummary: String {
        switch kernel {
        case let .bzImage(bz): "bzImage (boot protocol \(bz.protocolVersion >> 8).\(bz.protocolVersion & 0xFF)) at \(hex(bz.loadAddress))"
        case let .vmlinux(elf): "vmlinux (\(elf.segments.count) segments from \(hex(elf.segments.map(\.address).min() ?? 0)))"
        }
    }

    /// Maps the plan's memory into `space` (which must be empty there).
    public func mapMemory(into space: EPTAddrSpace) throws(AddrSpaceError) {
        try space.mapAlloc(GuestPhysAddr(0), size: Self.lowRAMEnd, flags: .rwx, populate: .eager)
        try space.mapAlloc(GuestPhysAddr(Self.lowRAMEnd), size: Self.highRAMStart - Self.lowRAMEnd, flags: [.read, .execute], populate: .eager)
        try space.mapAlloc(GuestPhysAddr(Self.highRAMStart), size: ram - Self.highRAMStart, flags: .rwx, populate: lazy ? .lazy : .eager)
    }

    /// The e820 map the kernel must report: derived from the areas.
    public func plannedE820(_ space: EPTAddrSpace) -> [BootParams.E820Entry] { BootParams.e820(space.areas) }

    /// Usable bytes in the plan.
    public func usableBytes(_ space: EPTAddrSpace) -> UInt64 {
        plannedE820(space).filter { $0.type == 1 }.reduce(0) { $0 + $1.size }
    }

    /// Loads the kernel, command line, initramfs and zero page, and puts the
    /// vCPU at the 64-bit entry with RSI at the zero page.
    public func load(into runner: GuestRunner) throws(LinuxBootError) {
        do throws(AddrSpaceError) {
            switch kernel {
            case let .bzImage(bz): try runner.load(Array(bz.kernel), at: bz.loadAddress)
            case let .vmlinux(elf): for segment in elf.segments { try runner.load(segment.bytes, at: segment.address) }
            }
            try runner.load(Array(commandLine.utf8) + [0], at: Self.commandLineAddress)
            if let initrd, let initrdAddress { try runner.load(initrd, at: initrdAddress) }
        } catch { throw .memory(error) }
        let zero: [UInt8]
        do throws(ImageError) {
            zero = try BootParams.build(image: headerSource, areas: runner.space.areas, commandLine: Self.commandLineAddress,
                                        initrd: initrdAddress.map { ($0, UInt64(initrd!.count)) })
        } catch { throw .image(error) }
        do throws(AddrSpaceError) { try runner.load(zero, at: Self.zeroPage) } catch { throw .memory(error) }
        do throws(KVMError) { try runner.startLinux64(entry: entry, bootParams: Self.zeroPage) } catch { throw .kvm(error) }
    }
}

public enum LinuxBootError: Error, CustomStringConvertible {
    case image(ImageError)
    case memory(AddrSpaceError)
    case kvm(KVMError)

    public var description: String {
        switch self {
        case let .image(e): "image: \(e)"
        case let .memory(e): "guest memory: \(e)"
        case let .kvm(e): "KVM: \(e)"
        }
    }
}

func kernelEndFor(_ elf: GuestImage) -> UInt64 { elf.segments.map { $0.address + $0.memorySize }.max() ?? 0 }
