/// Reads the PT_LOAD segments and entry of a little-endian x86 ELF file
/// (ELF32 for i386, entered in flat protected mode; ELF64 for x86-64,
/// entered in long mode). Segments load at their physical
/// addresses; every field is bounds-checked against the file.
public enum ELFLoader {
    static func read<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _ what: String) throws(ImageError) -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= bytes.count else { throw .truncated(what: what, need: offset + size, have: bytes.count) }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[offset + i]) << (8 * i) }
        return v
    }

    public static func isELF(_ bytes: [UInt8]) -> Bool { bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) }

    public static func load(_ bytes: [UInt8]) throws(ImageError) -> GuestImage {
        guard bytes.count >= 16 else { throw .truncated(what: "the ELF identification", need: 16, have: bytes.count) }
        guard isELF(bytes) else { throw .badMagic }
        let is64 = bytes[4] == 2
        guard bytes[4] == 1 || is64 else { throw .unsupported("unknown ELF class \(bytes[4])") }
        guard bytes[5] == 1 else { throw .unsupported("big-endian ELF files are not x86") }
        let machine: UInt16 = try read(bytes, 18, "e_machine")
        guard machine == (is64 ? 62 : 3) else { throw .unsupported("ELF machine \(machine) is not \(is64 ? "x86-64 (62)" : "i386 (3)")") }
        let entry: UInt64, phoff: UInt64, phentsize: UInt16, phnum: UInt16
        if is64 {
            entry = try read(bytes, 24, "e_entry")
            phoff = try read(bytes, 32, "e_phoff")
            phentsize = try read(bytes, 54, "e_phentsize")
            phnum = try read(bytes, 56, "e_phnum")
        } else {
            entry = UInt64(try read(bytes, 24, "e_entry") as UInt32)
            phoff = UInt64(try read(bytes, 28, "e_phoff") as UInt32)
            phentsize = try read(bytes, 42, "e_phentsize")
            phnum = try read(bytes, 44, "e_phnum")
        }
        guard phentsize >= (is64 ? 56 : 32) else { throw .unsupported("program header entries of \(phentsize) bytes are too small") }
        // The whole table inside the file, in 64-bit arithmetic (an offset
        // past Int.max must be refused, not converted).
        let tableEnd = phoff.addingReportingOverflow(UInt64(phnum) * UInt64(phentsize))
        guard !tableEnd.overflow, tableEnd.partialValue <= UInt64(bytes.count) else {
            throw .truncated(what: "the program header table", need: Int(clamping: tableEnd.overflow ? UInt64.max : tableEnd.partialValue), have: bytes.count)
        }
        var segments: [GuestImage.Segment] = []
        for i in 0..<Int(phnum) {
            let at = Int(phoff) + i * Int(phentsize)
            let type: UInt32 = try read(bytes, at, "program header \(i)")
            guard type == 1 else { continue }  // PT_LOAD
            let offset, paddr, filesz, memsz: UInt64
            if is64 {
                offset = try read(bytes, at + 8, "p_offset")
                paddr = try read(bytes, at + 24, "p_paddr")
                filesz = try read(bytes, at + 32, "p_filesz")
                memsz = try read(bytes, at + 40, "p_memsz")
            } else {
                offset = UInt64(try read(bytes, at + 4, "p_offset") as UInt32)
                paddr = UInt64(try read(bytes, at + 12, "p_paddr") as UInt32)
                filesz = UInt64(try read(bytes, at + 16, "p_filesz") as UInt32)
                memsz = UInt64(try read(bytes, at + 20, "p_memsz") as UInt32)
            }
            guard memsz >= filesz else { throw .unsupported("segment \(i) has p_memsz < p_filesz") }
            guard offset <= UInt64(bytes.count), filesz <= UInt64(bytes.count) - offset else {
                throw .truncated(what: "segment \(i)", need: Int(clamping: offset &+ filesz), have: bytes.count)
            }
            segments.append(.init(address: paddr, bytes: Array(bytes[Int(offset)..<Int(offset + filesz)]), memorySize: memsz))
        }
        guard !segments.isEmpty else { throw .unsupported("the ELF file has no PT_LOAD segment") }
        return GuestImage(segments: segments, entry: entry, bits: is64 ? 64 : 32)
    }
}
