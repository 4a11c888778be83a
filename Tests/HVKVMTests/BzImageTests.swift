import HVCore
import HVKVM
import Testing

@Suite("bzImage setup header")
struct BzImageTests {
    /// A synthetic bzImage: 4 setup sectors, protocol `version`, then `kernelBytes`.
    static func image(version: UInt16 = 0x020F, xload: UInt16 = 1, loadFlags: UInt8 = 1, alignment: UInt32 = 0x20_0000,
                      relocatable: UInt8 = 1, initSize: UInt32 = 0x40_0000, kernelBytes: Int = 4096) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 5 * 512 + kernelBytes)
        func put16(_ at: Int, _ v: UInt16) { b[at] = UInt8(v & 0xFF); b[at + 1] = UInt8(v >> 8) }
        func put32(_ at: Int, _ v: UInt32) { put16(at, UInt16(v & 0xFFFF)); put16(at + 2, UInt16(v >> 16)) }
        b[0x1F1] = 4
        put16(0x1FE, 0xAA55)
        put32(0x202, 0x5372_6448)
        put16(0x206, version)
        b[0x211] = loadFlags
        put32(0x214, 0x10_0000)
        put32(0x22C, 0x7FFF_FFFF)
        put32(0x230, alignment)
        b[0x234] = relocatable
        put16(0x236, xload)
        put32(0x238, 2047)
        put32(0x260, initSize)
        return b
    }

    @Test func parsesAndPlacesTheKernel() throws {
        let k = try BzImage(Self.image())
        #expect(k.protocolVersion == 0x020F && k.setupSectors == 4 && k.has64BitEntry && k.cmdlineSize == 2047)
        #expect(k.kernel.count == 4096)
        #expect(k.loadAddress == 0x20_0000, "1 MiB rounded up to the 2 MiB alignment")
        #expect(k.entry64 == 0x20_0200)
        try k.check(ram: 64 << 20, initrdSize: 8 << 20)
    }

    @Test func refusesBadImagesWithClearErrors() {
        #expect(throws: ImageError.truncated(what: "the bzImage setup header", need: 0x264, have: 100)) { try BzImage([UInt8](repeating: 0, count: 100)) }
        var noMagic = Self.image(); noMagic[0x1FE] = 0
        #expect(throws: ImageError.badMagic) { try BzImage(noMagic) }
        var noHdrS = Self.image(); noHdrS[0x202] = 0
        #expect(throws: ImageError.self) { try BzImage(noHdrS) }
        #expect(throws: ImageError.self) { try BzImage(Self.image(version: 0x020A)) }
        #expect(throws: ImageError.self) { try BzImage(Self.image(xload: 0)) }
        #expect(throws: ImageError.self) { try BzImage(Self.image(alignment: 0x30_0000)) }
        #expect(throws: ImageError.self) { try BzImage(Array(Self.image().prefix(5 * 512))) }
        let big = try! BzImage(Self.image(initSize: 0x1000_0000))
        #expect(throws: ImageError.outsideRAM(segment: 0x20_0000, size: 0x1000_0000, ram: 64 << 20)) { try big.check(ram: 64 << 20) }
        let k = try! BzImage(Self.image())
        #expect(throws: ImageError.self) { try k.check(ram: 64 << 20, initrdSize: 62 << 20) }
    }
}

@Suite("Zero page")
struct BootParamsTests {
    @Test func e820FollowsTheAreasAndHeaderIsCopied() throws {
        let pool = HeapFramePool(capacity: 64 << 20)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try space.mapAlloc(GuestPhysAddr(0), size: 0x9_F000, flags: .rwx, populate: .lazy)
        try space.mapAlloc(GuestPhysAddr(0x10_0000), size: 0x100_0000, flags: .rwx, populate: .lazy)
        try space.mapAlloc(GuestPhysAddr(0x110_0000), size: 0x10_0000, flags: .readWrite, populate: .lazy)  // adjacent: merged
        try space.mapReserved(GuestPhysAddr(0xFEC0_0000), size: 0x1000, flags: [.read, .write, .device])
        let map = BootParams.e820(space.areas)
        #expect(map.map(\.description) == ["[0x0, 0x9f000) usable", "[0x100000, 0x1200000) usable", "[0xfec00000, 0xfec01000) reserved"])
        var image = BzImageTests.image()
        image[0x201] = 0x66  // header length byte: header ends at 0x268
        let zero = try BootParams.build(image: image, areas: space.areas, commandLine: 0x2_0000, initrd: (0x80_0000, 0x1000))
        #expect(zero.count == 4096)
        #expect(zero[0x1FE] == 0x55 && zero[0x1FF] == 0xAA && zero[0x202] == 0x48, "boot flag and HdrS copied")
        #expect(zero[0x210] == 0xFF && zero[0x211] & 1 == 1)
        #expect(zero[0x1E8] == 3)
        #expect(zero[0x228] == 0x00 && zero[0x22A] == 0x02, "cmd_line_ptr 0x20000")
        #expect(zero[0x218 + 2] == 0x80, "ramdisk_image 0x800000")
        #expect(zero[0x2D0 + 20 + 16] == 1 && zero[0x2D0 + 40 + 16] == 2)
        space.clear()
    }
}
