import HVCore
import Testing

@Suite("Addresses, ranges, page sizes and flags")
struct AddressTests {
    @Test func checkedArithmeticReportsOverflow() throws {
        let a = GuestPhysAddr(UInt64.max - 0xFFF)
        #expect(try a.checkedAdd(0xFFF) == GuestPhysAddr(UInt64.max))
        #expect(throws: AddressError.overflow(base: UInt64.max - 0xFFF, offset: 0x1000)) { try a.checkedAdd(0x1000) }
        #expect(throws: AddressError.underflow(base: 0x10, offset: 0x11)) { try HostPhysAddr(0x10).checkedSub(0x11) }
        #expect(try HostPhysAddr(0x10).checkedSub(0x10) == HostPhysAddr(0))
        #expect(HostPhysAddr(5).distance(from: HostPhysAddr(7)) == nil)
    }

    @Test func alignment() throws {
        let a = GuestPhysAddr(0x4020_1234)
        #expect(a.alignedDown(to: .size4K) == GuestPhysAddr(0x4020_1000))
        #expect(a.alignedDown(to: .size2M) == GuestPhysAddr(0x4020_0000))
        #expect(a.alignedDown(to: .size1G) == GuestPhysAddr(0x4000_0000))
        #expect(try a.alignedUp(to: .size2M) == GuestPhysAddr(0x4040_0000))
        #expect(throws: AddressError.self) { try GuestPhysAddr(UInt64.max - 10).alignedUp(to: .size4K) }
        #expect(GuestPhysAddr(0x20_0000).isAligned(to: .size2M))
        #expect(!GuestPhysAddr(0x20_1000).isAligned(to: .size2M))
    }

    @Test func rangeConstructionFailsOnOverflow() throws {
        #expect(throws: AddressError.rangeOverflow(base: UInt64.max - 0xFFF, size: 0x1000)) {
            try GuestPhysRange(start: GuestPhysAddr(UInt64.max - 0xFFF), size: 0x1000)
        }
        let r = try GuestPhysRange(start: GuestPhysAddr(UInt64.max - 0xFFF), size: 0xFFF)
        #expect(r.end == GuestPhysAddr(UInt64.max))
        #expect(r.contains(GuestPhysAddr(UInt64.max - 1)))
        #expect(!r.contains(GuestPhysAddr(UInt64.max)))
        #expect(throws: AddressError.self) { try GuestPhysRange(start: GuestPhysAddr(10), end: GuestPhysAddr(9)) }
    }

    @Test func rangeRelations() throws {
        let a = try GuestPhysRange(start: GuestPhysAddr(0x1000), size: 0x2000)
        let b = try GuestPhysRange(start: GuestPhysAddr(0x3000), size: 0x1000)
        let c = try GuestPhysRange(start: GuestPhysAddr(0x2000), size: 0x1000)
        #expect(!a.overlaps(b), "adjacent ranges do not overlap")
        #expect(a.overlaps(c) && a.contains(c) && !c.contains(a))
        #expect(a.intersection(c) == c)
        #expect(a.intersection(b) == nil)
        #expect(a.description == "[0x1000, 0x3000)")
    }

    @Test func pageSizes() {
        #expect(PageSize.allCases.map(\.bytes) == [0x1000, 0x20_0000, 0x4000_0000])
        #expect(PageSize.allCases.map(\.level) == [0, 1, 2])
        #expect(PageSize.allCases.map(\.shift) == [12, 21, 30])
        #expect(PageSize(level: 3) == nil)
    }

    @Test func mappingFlagsRawValues() throws {
        #expect(MappingFlags.read.rawValue == 1 && MappingFlags.write.rawValue == 2 && MappingFlags.execute.rawValue == 4)
        #expect(MappingFlags.user.rawValue == 8 && MappingFlags.device.rawValue == 0x10 && MappingFlags.uncached.rawValue == 0x20)
        #expect(try MappingFlags(validating: 0x17) == [.read, .write, .execute, .device])
        #expect(throws: FlagsError.unknownBits(raw: 0x47, unknown: 0x40)) { try MappingFlags(validating: 0x47) }
        #expect(MappingFlags([.read, .write, .device]).description == "R|W|DEV")
        #expect(MappingFlags.write.isWriteWithoutRead)
    }
}
