import HVKVM
import Testing

/// Image checks happen before any VM exists, so these need no KVM.
@Suite("Guest image loaders")
struct LoaderTests {
    static func elf32(entry: UInt32, segments: [(paddr: UInt32, data: [UInt8], memsz: UInt32)], machine: UInt16 = 3) -> [UInt8] {
        func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        let phoff: UInt32 = 52
        var out: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 1, 1, 1] + [UInt8](repeating: 0, count: 9)
        out += le16(2) + le16(machine) + le32(1) + le32(entry) + le32(phoff) + le32(0) + le32(0)
        out += le16(52) + le16(32) + le16(UInt16(segments.count)) + le16(40) + le16(0) + le16(0)
        var dataOffset = phoff + 32 * UInt32(segments.count)
        var blobs: [UInt8] = []
        for s in segments {
            out += le32(1) + le32(dataOffset) + le32(s.paddr) + le32(s.paddr) + le32(UInt32(s.data.count)) + le32(s.memsz) + le32(7) + le32(0x1000)
            blobs += s.data
            dataOffset += UInt32(s.data.count)
        }
        return out + blobs
    }

    @Test func loadsELF32Segments() throws {
        let file = Self.elf32(entry: 0x10_0010, segments: [(0x10_0000, [0x90, 0x90, 0xF4], 0x2000)])
        let image = try ELFLoader.load(file)
        #expect(image.entry == 0x10_0010 && image.bits == 32)
        #expect(image.segments == [.init(address: 0x10_0000, bytes: [0x90, 0x90, 0xF4], memorySize: 0x2000)])
        try image.check(ram: 2 << 20)
    }

    static func elf64(entry: UInt64, paddr: UInt64, data: [UInt8]) -> [UInt8] {
        func le(_ v: some FixedWidthInteger) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        var out: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1] + [UInt8](repeating: 0, count: 9)
        out += le(UInt16(2)) + le(UInt16(62)) + le(UInt32(1)) + le(entry) + le(UInt64(64)) + le(UInt64(0)) + le(UInt32(0))
        out += le(UInt16(64)) + le(UInt16(56)) + le(UInt16(1)) + le(UInt16(64)) + le(UInt16(0)) + le(UInt16(0))
        out += le(UInt32(1)) + le(UInt32(7)) + le(UInt64(120)) + le(paddr) + le(paddr) + le(UInt64(data.count)) + le(UInt64(data.count)) + le(UInt64(0x1000))
        return out + data
    }

    @Test func loadsELF64ForLongMode() throws {
        let image = try ELFLoader.load(Self.elf64(entry: 0x20_0000, paddr: 0x20_0000, data: [0xF4]))
        #expect(image.bits == 64 && image.entry == 0x20_0000)
        #expect(image.segments == [.init(address: 0x20_0000, bytes: [0xF4], memorySize: 1)])
    }

    /// Found by fuzz-image (its input is in Fuzz/corpus/image): a program
    /// header offset past Int.max trapped converting it; it is refused.
    @Test func aProgramHeaderTableOutsideTheFileIsRefused() throws {
        var file = Self.elf64(entry: 0x20_0000, paddr: 0x20_0000, data: [0xF4])
        for (i, b) in withUnsafeBytes(of: UInt64(0xF9FF_FFFF_FFFF_FFC0).littleEndian, Array.init).enumerated() { file[32 + i] = b }
        #expect(throws: ImageError.truncated(what: "the program header table", need: Int.max, have: file.count)) { try ELFLoader.load(file) }
        for (i, b) in withUnsafeBytes(of: UInt64(file.count - 8).littleEndian, Array.init).enumerated() { file[32 + i] = b }
        #expect(throws: ImageError.self, "a table that starts inside the file but runs past its end") { try ELFLoader.load(file) }
    }

    @Test func refusesBadImagesBeforeTheVMStarts() throws {
        #expect(throws: ImageError.badMagic) { try ELFLoader.load([UInt8](repeating: 1, count: 64)) }
        #expect(throws: ImageError.truncated(what: "the ELF identification", need: 16, have: 4)) { try ELFLoader.load([0x7F, 0x45, 0x4C, 0x46]) }
        let file = Self.elf32(entry: 0x10_0000, segments: [(0x10_0000, [1, 2, 3, 4], 4)])
        #expect(throws: ImageError.self) { try ELFLoader.load(Array(file.prefix(file.count - 2))) }
        #expect(throws: ImageError.self) { try ELFLoader.load(Self.elf32(entry: 0, segments: [(0, [1], 1)], machine: 40)) }
        // Too big for RAM, loaded outside RAM, entry outside, real-mode entry too high.
        let big = try GuestImage.flat([UInt8](repeating: 0x90, count: 3 << 20), at: 0x1000, bits: 32)
        #expect(throws: ImageError.outsideRAM(segment: 0x1000, size: 3 << 20, ram: 2 << 20)) { try big.check(ram: 2 << 20) }
        #expect(throws: ImageError.self) { try GuestImage.flat([0xF4], at: 4 << 20, bits: 32).check(ram: 2 << 20) }
        #expect(throws: ImageError.self) { try GuestImage.flat([0xF4], at: 0x1000, entry: 0x5000, bits: 32).check(ram: 2 << 20) }
        #expect(throws: ImageError.self) { try GuestImage.flat([0xF4], at: 0x1_0000, bits: 16).check(ram: 2 << 20) }
        #expect(throws: ImageError.empty) { try GuestImage.flat([], at: 0x1000, bits: 16) }
    }
}
