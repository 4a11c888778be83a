import HVCore

/// The parts of a Linux bzImage's setup header (x86 boot protocol) that a
/// loader needs, every one of them checked before a VM exists.
public struct BzImage: Equatable {
    public let protocolVersion: UInt16
    public let setupSectors: Int
    public let loadFlags: UInt8
    public let code32Start: UInt32
    public let kernelAlignment: UInt32
    public let relocatable: Bool
    public let xloadFlags: UInt16
    public let cmdlineSize: UInt32
    public let initrdAddressMax: UInt32
    public let initSize: UInt32
    /// The protected-mode kernel (everything after the setup sectors).
    public let kernel: ArraySlice<UInt8>

    /// Protocol 2.12 brought XLF_KERNEL_64: a 64-bit entry at load + 0x200.
    public static let minimumVersionFor64BitEntry: UInt16 = 0x020C
    public var has64BitEntry: Bool { xloadFlags & 1 != 0 }

    static func u8(_ b: [UInt8], _ at: Int) -> UInt8 { b[at] }
    static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16 }

    public init(_ bytes: [UInt8]) throws(ImageError) {
        guard bytes.count >= 0x264 else { throw .truncated(what: "the bzImage setup header", need: 0x264, have: bytes.count) }
        guard Self.u16(bytes, 0x1FE) == 0xAA55 else { throw .badMagic }
        guard Self.u32(bytes, 0x202) == 0x5372_6448 else { throw .unsupported("no \"HdrS\" at 0x202: not a boot-protocol 2.x kernel") }
        protocolVersion = Self.u16(bytes, 0x206)
        let sects = Int(Self.u8(bytes, 0x1F1))
        setupSectors = sects == 0 ? 4 : sects
        loadFlags = Self.u8(bytes, 0x211)
        code32Start = Self.u32(bytes, 0x214)
        initrdAddressMax = Self.u32(bytes, 0x22C)
        kernelAlignment = Self.u32(bytes, 0x230)
        relocatable = Self.u8(bytes, 0x234) != 0
        xloadFlags = Self.u16(bytes, 0x236)
        cmdlineSize = Self.u32(bytes, 0x238)
        initSize = Self.u32(bytes, 0x260)
        guard protocolVersion >= Self.minimumVersionFor64BitEntry else {
            throw .unsupported("boot protocol \(protocolVersion >> 8).\(protocolVersion & 0xFF) is too old for a 64-bit entry (2.12 or later)")
        }
        guard xloadFlags & 1 != 0 else { throw .unsupported("the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)") }
        guard loadFlags & 1 != 0 else { throw .unsupported("the kernel does not load high (LOADED_HIGH is clear)") }
        guard kernelAlignment != 0, kernelAlignment & (kernelAlignment - 1) == 0 else {
            throw .unsupported("kernel_alignment \(hex(UInt64(kernelAlignment))) is not a power of two")
        }
        let start = (setupSectors + 1) * 512
        guard start < bytes.count else { throw .truncated(what: "the protected-mode kernel after \(setupSectors) setup sectors", need: start + 1, have: bytes.count) }
        kernel = bytes[start...]
    }

    /// Where the protected-mode kernel goes: 1 MiB, rounded up to the
    /// kernel's alignment when it is relocatable.
    public var loadAddress: UInt64 {
        let base: UInt64 = 0x10_0000
        guard relocatable else { return base }
        let a = UInt64(kernelAlignment)
        return (base + a - 1) & ~(a - 1)
    }

    public var entry64: UInt64 { loadAddress + 0x200 }

    /// Checks that the kernel (init_size bytes, at least its file size) fits
    /// in RAM `[0, ram)`, and that an initramfs of `initrdSize` bytes fits
    /// below both RAM's end and initrd_addr_max.
    public func check(ram: UInt64, initrdSize: UInt64 = 0) throws(ImageError) {
        let footprint = max(UInt64(initSize), UInt64(kernel.count))
        guard loadAddress + footprint <= ram else { throw .outsideRAM(segment: loadAddress, size: footprint, ram: ram) }
        if initrdSize > 0 {
            let limit = min(ram, UInt64(initrdAddressMax) + 1)
            guard initrdSize <= limit, limit - initrdSize >= loadAddress + footprint else {
                throw .unsupported("an initramfs of \(hex(initrdSize)) bytes does not fit below \(hex(limit)) above the kernel")
            }
        }
    }
}
