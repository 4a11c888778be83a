import HVCore
import Testing
import TestSupport

/// Entries computed by hand from the architecture manuals' field layouts.
@Suite("Page-table formats: AArch64 stage 2 and RISC-V G-stage")
struct PageTableFormatTests {
    @Test func stage2EntriesAsTheArmARMLaysThemOut() {
        // A 4 KiB page, RW, normal memory: bits 1:0 = 0b11 (page), MemAttr[5:2] =
        // 0b1111 (outer and inner write-back) = 0x3C, S2AP[7:6] = 0b11 (bit 6
        // read, bit 7 write) = 0xC0, SH[9:8] = 0b11 inner shareable = 0x300,
        // AF bit 10 = 0x400, XN bit 54 (no EXECUTE), output address 0x4000_1000.
        #expect(Stage2IPA40Format.encodeLeaf(hpa: 0x4000_1000, flags: .readWrite, level: 0) == 0x0040_0000_4000_17FF)
        // A 2 MiB block, R|W|USER|DEVICE: bits 1:0 = 0b01 (block), MemAttr =
        // 0b0001 Device-nGnRE = 0x4, no SH, S2AP 0xC0, AF, XN, software bits
        // 55 (USER) and 56 (DEVICE).
        let device: MappingFlags = [.read, .write, .user, .device]
        #expect(Stage2IPA40Format.encodeLeaf(hpa: 0x0800_0000, flags: device, level: 1) == 0x01C0_0000_0800_04C5)
        #expect(Stage2IPA40Format.leafFlags(0x01C0_0000_0800_04C5) == device)
        // Execute-only is expressible at stage 2 (S2AP = 0b00, XN clear).
        let x = Stage2IPA40Format.encodeLeaf(hpa: 0x1000, flags: .execute, level: 0)
        #expect(x & (Stage2Bits.s2apRead | Stage2Bits.s2apWrite | Stage2Bits.executeNever) == 0)
        #expect(Stage2IPA40Format.leafFlags(x) == .execute)
        // Read-only must not come back as write (upstream inverted S2AP).
        #expect(Stage2IPA40Format.leafFlags(Stage2IPA40Format.encodeLeaf(hpa: 0x2000, flags: .read, level: 0)) == .read)
        // DEVICE|UNCACHED, which upstream panicked on, is Device-nGnRE and decodes exactly.
        let both: MappingFlags = [.read, .write, .device, .uncached]
        #expect(Stage2IPA40Format.leafFlags(Stage2IPA40Format.encodeLeaf(hpa: 0x4000_0000, flags: both, level: 2)) == both)
        // A table descriptor: bits 1:0 = 0b11 and the next table's address.
        #expect(Stage2IPA40Format.encodeTable(0x1234_5000) == 0x1234_5003)
        // VTCR_EL2, 40-bit IPA: T0SZ 24 (0x18), SL0 1 (0x40), IRGN0 0b01 (0x100),
        // ORGN0 0b01 (0x400), SH0 0b11 (0x3000), TG0 4 KiB (0), PS 48 bits
        // (0b101 << 16), VS (1 << 19), RES1 bit 31.
        #expect(Stage2IPA40Format.vtcr == 0x800D_3558)
        #expect(Stage2IPA48Format.vtcr == 0x800D_3590, "T0SZ 16, SL0 2")
        #expect(Stage2IPA32Format.vtcr & 0xFF == 32 | 1 << 6 && Stage2IPA44Format.vtcr & 0xFF == 20 | 2 << 6, "T0SZ and SL0 of the partial roots")
    }

    @Test func riscvEntriesAsThePrivilegedSpecLaysThemOut() {
        // A 4 KiB page, RWX: PPN 0x80203 in bits 53:10, V R W X = 0xF, U
        // (G-stage leaves are user pages) 0x10, A 0x40, D (writable) 0x80.
        #expect(Sv39x4Format.encodeLeaf(hpa: 0x8020_3000, flags: .rwx, level: 0) == 0x2008_0CDF)
        // A megapage, R|X|UNCACHED: V R X U A = 0x5B, no D, PBMT = NC (1 << 61).
        let rxNC: MappingFlags = [.read, .execute, .uncached]
        #expect(Sv39x4Format.encodeLeaf(hpa: 0x8040_0000, flags: rxNC, level: 1) == 0x2000_0000_2010_005B)
        #expect(Sv39x4Format.leafFlags(0x2000_0000_2010_005B) == rxNC)
        // A gigapage, R|W|DEVICE|UNCACHED: PBMT = IO (2 << 61), RSW bit 9
        // keeps UNCACHED, V R W U A D = 0xD7.
        let io: MappingFlags = [.read, .write, .device, .uncached]
        #expect(Sv39x4Format.encodeLeaf(hpa: 0x4000_0000, flags: io, level: 2) == 0x4000_0000_1000_02D7)
        #expect(Sv39x4Format.leafFlags(0x4000_0000_1000_02D7) == io)
        // USER lives in RSW bit 8 (the hardware U bit is always set).
        let user = Sv39x4Format.encodeLeaf(hpa: 0x1000, flags: [.read, .user], level: 0)
        #expect(user & RISCVBits.softwareUser != 0 && Sv39x4Format.leafFlags(user) == [.read, .user])
        #expect(Sv39x4Format.leafFlags(Sv39x4Format.encodeLeaf(hpa: 0x1000, flags: .read, level: 0)) == .read)
        // A non-leaf entry: V and the PPN, R = W = X = 0.
        #expect(Sv39x4Format.encodeTable(0x8000_4000) == 0x2000_1001)
        #expect(!Sv39x4Format.isLeaf(UInt64(0x2000_1001), level: 1) && Sv39x4Format.tableAddress(UInt64(0x2000_1001)) == 0x8000_4000)
    }

    /// The root index takes 11 bits for the x4 modes (GPA bits 40:30 for
    /// Sv39x4, 49:39 for Sv48x4) and 10 for a 40-bit IPA from level 1.
    @Test func rootIndexesAreAsWideAsTheirRoots() {
        #expect(Sv39x4Format.index(0x1FF_C000_0000, level: 2) == 0x7FF)
        #expect(Sv39x4Format.index(0x100_0000_0000, level: 2) == 1024, "bit 40 selects the upper half of the root")
        #expect(Sv39x4Format.index(0x100_0000_0000, level: 1) == 0)
        #expect(Sv48x4Format.index(0x3_FF80_0000_0000, level: 3) == 0x7FF)
        #expect(Stage2IPA40Format.index(0xFF_C000_0000, level: 2) == 0x3FF)
        #expect(Stage2IPA48Format.index(0xFF80_0000_0000, level: 3) == 0x1FF)
        #expect(EPTFormat.index(0xFF80_0000_0000, level: 3) == 0x1FF)
    }

    /// The root's frames, alignment and register value; the top of each
    /// format's range maps and translates; one byte past it is refused.
    @Test(arguments: ["stage2-32", "stage2-36", "stage2-40", "stage2-42", "stage2-44", "stage2-48", "sv39x4", "sv48x4"])
    func rootsAndTheEdgesOfTheAddressWidth(_ format: String) throws {
        switch format {
        case "stage2-32": _ = try edges(Stage2IPA32Format.self, rootFrames: 1)
        case "stage2-36": _ = try edges(Stage2IPA36Format.self, rootFrames: 1)
        case "stage2-42": _ = try edges(Stage2IPA42Format.self, rootFrames: 8)
        case "stage2-44": _ = try edges(Stage2IPA44Format.self, rootFrames: 1)
        case "stage2-40":
            let t = try edges(Stage2IPA40Format.self, rootFrames: 2)
            #expect(t.vttbr(vmid: 5) == t.root.raw | 5 << 48)
        case "stage2-48":
            let t = try edges(Stage2IPA48Format.self, rootFrames: 1)
            #expect(t.vttbr(vmid: 0xFFFF) == t.root.raw | 0xFFFF << 48)
        case "sv39x4":
            let t = try edges(Sv39x4Format.self, rootFrames: 4)
            #expect(t.hgatp(vmid: 3) == 8 << 60 | 3 << 44 | t.root.raw >> 12)
        default:
            let t = try edges(Sv48x4Format.self, rootFrames: 4)
            #expect(t.hgatp(vmid: 0x3FFF) == 9 << 60 | 0x3FFF << 44 | t.root.raw >> 12)
        }
    }

    func edges<F: PageTableFormat>(_: F.Type, rootFrames: Int) throws -> NestedPageTable<F> {
        let f = try FormatTableFixture<F>(capacityFrames: 256)
        let t = f.table
        #expect(F.rootFrames == rootFrames && t.tableFrameCount == rootFrames && f.tracker.liveFrames == rootFrames)
        #expect(t.root.raw % F.rootBytes == 0, "the root is aligned to its size")
        let top = UInt64(1) << UInt64(F.guestAddressBits)
        try t.mapRegion(GuestPhysAddr(top - kib4), to: HostPhysAddr(0x7000), size: kib4, flags: .readWrite)
        try t.mapRegion(GuestPhysAddr(top / 2), to: HostPhysAddr(gib), size: gib, flags: .rwx)
        #expect(t.query(GuestPhysAddr(top - 1))?.hostAddress.raw == 0x7FFF)
        #expect(t.query(GuestPhysAddr(top / 2 + 0x1234))?.pageSize == .size1G)
        #expect(t.query(GuestPhysAddr(top)) == nil)
        #expect(throws: PageTableError.self) { try t.mapRegion(GuestPhysAddr(top), to: HostPhysAddr(0), size: kib4, flags: .read) }
        #expect(throws: PageTableError.self) { try t.mapRegion(GuestPhysAddr(top - kib4), to: HostPhysAddr(0), size: 2 * kib4, flags: .read) }
        // The last root entry holds the top page, the middle one the 1 GiB leaf.
        let rootEntries = UnsafeBufferPointer(start: t.allocator.directMap.pointer(t.root.raw)!.assumingMemoryBound(to: UInt64.self), count: F.rootEntries)
        #expect(F.isPresent(rootEntries[F.rootEntries - 1]) && F.isPresent(rootEntries[F.rootEntries / 2]))
        #expect(rootEntries.filter { $0 != 0 }.count == 2)
        f.expectSound()
        try t.unmap(GuestPhysAddr(0), size: top)
        #expect(f.tracker.liveFrames == rootFrames)
        f.expectSound()
        return t
    }

    /// Failing each allocation of a map in turn leaves every format's table
    /// as it was, with no frame gained or lost.
    @Test(arguments: ["stage2-40", "stage2-48", "sv39x4", "sv48x4"])
    func allOrNothingUnderAllocationFailure(_ format: String) throws {
        switch format {
        case "stage2-40": try failures(Stage2IPA40Format.self)
        case "stage2-48": try failures(Stage2IPA48Format.self)
        case "sv39x4": try failures(Sv39x4Format.self)
        default: try failures(Sv48x4Format.self)
        }
    }

    func failures<F: PageTableFormat>(_: F.Type) throws {
        // A map that builds tables across a 512 GiB and a 1 GiB boundary, and an
        // unmap that splits a 1 GiB leaf down to 4 KiB at both edges.
        try everyFailurePoint(F.self, "map") { t throws(PageTableError) in
            try t.mapRegion(GuestPhysAddr(512 * gib - mib2 - kib4), to: HostPhysAddr(kib4), size: 2 * mib2 + 2 * kib4, flags: .readWrite, allowHuge: false)
        }
        try everyFailurePoint(F.self, "unmap") { t throws(PageTableError) in
            try t.unmap(GuestPhysAddr(gib + mib2 + kib4), size: gib - 2 * mib2 - 2 * kib4)
        }
    }

    func everyFailurePoint<F: PageTableFormat>(_: F.Type, _ name: String, _ op: (NestedPageTable<F>) throws(PageTableError) -> Void) throws {
        for k in 1..<100 {
            let f = try FormatTableFixture<F>()
            try f.table.mapRegion(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .rwx)
            let before = f.model, live = f.tracker.liveFrames
            f.tracker.failAllocation(after: k)
            do {
                try op(f.table)
                f.tracker.failAllocation(after: nil)
                f.expectSound()
                #expect(k > 3, "\(F.name) \(name): several allocation points were failed in turn")
                return
            } catch {
                f.tracker.failAllocation(after: nil)
                #expect(f.model == before && f.tracker.liveFrames == live, "\(F.name) \(name): changed or leaked at k=\(k)")
                f.expectSound()
            }
        }
        Issue.record("\(F.name) \(name): never succeeded")
    }
}
