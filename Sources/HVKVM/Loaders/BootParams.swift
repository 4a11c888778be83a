import HVCore

/// The Linux "zero page" (struct boot_params) for a 64-bit boot: the
/// image's setup header, the command line and initramfs locations, and an
/// e820 memory map derived from the address space's areas.
public enum BootParams {
    public struct E820Entry: Equatable, Sendable, CustomStringConvertible {
        public let address: UInt64
        public let size: UInt64
        /// 1 = usable RAM, 2 = reserved.
        public let type: UInt32
        public var description: String { "[\(hex(address)), \(hex(address + size))) \(type == 1 ? "usable" : "reserved")" }
    }

    /// RAM areas (Alloc and identity, writable) are usable; read-only ones
    /// (ROM), reserved, linear and device areas are reserved. Sorted;
    /// neighbours of one type merged.
    public static func e820(_ areas: [Area]) -> [E820Entry] {
        var out: [E820Entry] = []
        for a in areas.sorted(by: { $0.start < $1.start }) {
            let usable: Bool = switch a.backend {
            case .alloc, .identical: !a.flags.contains(.device) && a.flags.contains(.write)
            case .linear, .reserved: false
            }
            let entry = E820Entry(address: a.start, size: a.size, type: usable ? 1 : 2)
            if let last = out.last, last.type == entry.type, last.address + last.size == entry.address {
                out[out.count - 1] = E820Entry(address: last.address, size: last.size + entry.size, type: last.type)
            } else {
                out.append(entry)
            }
        }
        return out
    }

    static func put<T: FixedWidthInteger>(_ page: inout [UInt8], _ at: Int, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { page[at + i] = b } }
    }

    /// The command-line limit a synthesized header announces.
    public static let syntheticCommandLineLimit: UInt32 = 2047

    /// A setup header for a kernel that has none (an ELF vmlinux): what a
    /// boot loader of protocol 2.15 would have found, so the kernel reads
    /// the command line and initramfs fields the zero page fills in.
    public static func syntheticSetupHeader() -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 0x268)
        h[0x1F1] = 4                                       // setup_sects (unused: nothing to run)
        put(&h, 0x1FE, UInt16(0xAA55))                     // boot_flag
        h[0x201] = 0x66                                    // header length: ends at 0x268
        put(&h, 0x202, UInt32(0x5372_6448))                // "HdrS"
        put(&h, 0x206, UInt16(0x020F))                     // protocol 2.15
        h[0x211] = 0x01                                    // LOADED_HIGH
        put(&h, 0x22C, UInt32(0x7FFF_FFFF))                // initrd_addr_max
        put(&h, 0x230, UInt32(0x20_0000))                  // kernel_alignment
        put(&h, 0x236, UInt16(0x0001))                     // XLF_KERNEL_64
        put(&h, 0x238, syntheticCommandLineLimit)          // cmdline_size
        return h
    }

    /// Builds the 4 KiB zero page.
    public static func build(image bytes: [UInt8], areas: [Area], commandLine: UInt64, initrd: (address: UInt64, size: UInt64)? = nil) throws(ImageError) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 4096)
        // The setup header runs from 0x1F1 to 0x202 + the byte at 0x201.
        let headerEnd = 0x202 + Int(bytes.count > 0x201 ? bytes[0x201] : 0)
        guard bytes.count >= headerEnd, headerEnd <= 0x290 else { throw .truncated(what: "the setup header", need: headerEnd, have: bytes.count) }
        for i in 0x1F1..<headerEnd { page[i] = bytes[i] }
        page[0x210] = 0xFF                                    // type_of_loader: undefined
        page[0x211] |= 0x01                                   // LOADED_HIGH
        put(&page, 0x228, UInt32(truncatingIfNeeded: commandLine))   // cmd_line_ptr
        put(&page, 0x0C8, UInt32(truncatingIfNeeded: commandLine >> 32))  // ext_cmd_line_ptr
        if let initrd {
            put(&page, 0x218, UInt32(truncatingIfNeeded: initrd.address))
            put(&page, 0x21C, UInt32(truncatingIfNeeded: initrd.size))
            put(&page, 0x0C0, UInt32(truncatingIfNeeded: initrd.address >> 32))
            put(&page, 0x0C4, UInt32(truncatingIfNeeded: initrd.size >> 32))
        }
        let map = e820(areas)
        guard map.count <= 128 else { throw .unsupported("\(map.count) e820 entries; the zero page holds 128") }
        page[0x1E8] = UInt8(map.count)
        for (i, e) in map.enumerated() {
            put(&page, 0x2D0 + i * 20, e.address)
            put(&page, 0x2D0 + i * 20 + 8, e.size)
            put(&page, 0x2D0 + i * 20 + 16, e.type)
        }
        return page
    }
}
