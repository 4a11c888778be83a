import HVCore
import Testing

/// Hand-built tables in a dictionary "memory", one mode at a time.
@Suite("Guest page walker")
struct GuestPageWalkerTests {
    final class Memory {
        var words: [UInt64: UInt64] = [:]
        func put(_ gpa: UInt64, _ v: UInt64) { words[gpa] = v }
        func read(_ gpa: UInt64, _ width: Int) -> UInt64? {
            let v = words[gpa] ?? 0
            return width == 4 ? v & 0xFFFF_FFFF : v
        }
    }

    static let P: UInt64 = 1, W: UInt64 = 2, U: UInt64 = 4, PS: UInt64 = 1 << 7, NX: UInt64 = 1 << 63

    @Test func noPagingIsIdentity() {
        let r = GuestPageWalker.walk(0x1234_5678, GuestPageWalkInfo(topEntry: 0, level: 0)) { _, _ in nil }
        #expect(r.gpa == 0x1234_5678)
    }

    @Test func thirtyTwoBitWithPSE() {
        let m = Memory()
        // PD at 0x1000: [0] -> PT at 0x2000 (U|W), [1] -> 4 MiB page at 0x1_0040_0000 via PSE-36, [2] has reserved bit 21.
        m.put(0x1000, 0x2000 | Self.P | Self.W | Self.U)
        m.put(0x1004, 0x0040_0000 | (1 << 13) | Self.P | Self.PS)   // base bits 39:32 = 1
        m.put(0x1008, 0x0080_0000 | (1 << 21) | Self.P | Self.PS)
        m.put(0x2000 + 5 * 4, 0x7000 | Self.P | Self.U)              // read-only user page
        var info = GuestPageWalkInfo(topEntry: 0x1000, level: 2)
        info.pse = true
        let read = { (g: UInt64, w: Int) in m.read(g, w) }
        #expect(GuestPageWalker.walk(0x5123, info, read: read) == .translated(gpa: 0x7123, writable: false, user: true, executable: true, pageSize: 0x1000))
        #expect(GuestPageWalker.walk(0x0040_1234, info, read: read).gpa == 0x1_0040_1234)
        #expect(GuestPageWalker.walk(0x0080_0000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved))
        #expect(GuestPageWalker.walk(0x6000, info, read: read) == .fault(errorCode: 0), "not present")
        info.isWriteAccess = true
        info.isUserModeAccess = true
        #expect(GuestPageWalker.walk(0x5000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.write | GuestWalkResult.user))
        info.isUserModeAccess = false
        #expect(GuestPageWalker.walk(0x5000, info, read: read).gpa == 0x7000, "a supervisor write ignores R/W without CR0.WP")
        info.wp = true
        #expect(GuestPageWalker.walk(0x5000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.write))
        info.pse = false
        info.isWriteAccess = false
        #expect(GuestPageWalker.walk(0x0040_1234, info, read: read).gpa != 0x1_0040_1234, "without PSE bit 7 is not a large page")
    }

    @Test func paeWithItsFourEntryPDPT() {
        let m = Memory()
        m.put(0x1000 + 3 * 8, 0x2000 | Self.P)                          // PDPTE[3]
        m.put(0x1000 + 1 * 8, 0x3000 | Self.P | Self.W)                 // reserved bit 1 in a PDPTE
        m.put(0x2000 + 0x1FF * 8, 0x4000_0000 | Self.P | Self.W | Self.PS | Self.NX)  // last 2 MiB page, NX
        var info = GuestPageWalkInfo(topEntry: 0x1000, level: 3)
        info.nxe = true
        let read = { (g: UInt64, w: Int) in m.read(g, w) }
        let gva: UInt64 = 0xFFE0_1234
        #expect(GuestPageWalker.walk(gva, info, read: read) == .translated(gpa: 0x4000_1234, writable: true, user: false, executable: false, pageSize: 0x20_0000))
        info.isInstructionFetch = true
        #expect(GuestPageWalker.walk(gva, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.fetch))
        info.isInstructionFetch = false
        #expect(GuestPageWalker.walk(0x4000_0000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved))
        info.nxe = false
        #expect(GuestPageWalker.walk(gva, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved), "bit 63 is reserved without NXE")
    }

    @Test func fourLevelWithHugePages() {
        let m = Memory()
        m.put(0x1000, 0x2000 | Self.P | Self.W | Self.U)                // PML4[0]
        m.put(0x1008, 0x5000 | Self.P | Self.PS)                        // PML4[1] with PS: reserved
        m.put(0x2000, 0x4000_0000 | Self.P | Self.W | Self.U | Self.PS) // PDPT[0]: 1 GiB page
        m.put(0x2008, 0x3000 | Self.P | Self.W | Self.U)                // PDPT[1] -> PD
        m.put(0x3000 + 2 * 8, 0x60_0000 | (1 << 14) | Self.P | Self.PS) // 2 MiB page with reserved bit 14
        m.put(0x3000 + 3 * 8, 0x80_0000 | Self.P | Self.W | Self.PS)    // 2 MiB supervisor page
        var info = GuestPageWalkInfo(topEntry: 0x1000, level: 4)
        info.physicalAddressBits = 46
        let read = { (g: UInt64, w: Int) in m.read(g, w) }
        #expect(GuestPageWalker.walk(0x3FFF_FFFF, info, read: read) == .translated(gpa: 0x7FFF_FFFF, writable: true, user: true, executable: true, pageSize: 0x4000_0000))
        #expect(GuestPageWalker.walk(0x4040_0000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved))
        #expect(GuestPageWalker.walk(0x4070_0001, info, read: read).gpa == 0x90_0001)
        #expect(GuestPageWalker.walk(1 << 39, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved), "PS in a PML4E")
        info.gigabytePages = false
        #expect(GuestPageWalker.walk(0x1234, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved), "no PDPE1GB")
        info.gigabytePages = true
        // SMEP: supervisor fetch from a user page; SMAP: supervisor read of one.
        info.smep = true
        info.isInstructionFetch = true
        #expect(GuestPageWalker.walk(0x1234, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.fetch))
        info.isInstructionFetch = false
        info.smap = true
        #expect(GuestPageWalker.walk(0x1234, info, read: read) == .fault(errorCode: GuestWalkResult.present))
        #expect(GuestPageWalker.walk(0x4070_0000, info, read: read).gpa == 0x90_0000, "a supervisor page is fine")
        // Bits above MAXPHYADDR are reserved.
        m.put(0x3000 + 4 * 8, (1 << 47) | Self.P | Self.PS)
        #expect(GuestPageWalker.walk(0x4080_0000, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved))
    }

    /// Found by guest_walk_pae_*: with PAE paging bits 62:MAXPHYADDR of a
    /// PDE or PTE are reserved (and 63:M of a PDPTE), not only 51:M as
    /// with 4-level paging.
    @Test func paeReservesBits62ToMaxPhysAddr() {
        let m = Memory()
        m.put(0x1000, 0x2000 | Self.P)                                   // PDPTE[0] -> PD
        m.put(0x1008, 0x3000 | Self.P | (1 << 55))                       // PDPTE[1] with bit 55
        m.put(0x2000, 0x4000 | Self.P | Self.W)                          // PD[0] -> PT
        m.put(0x2008, 0x20_0000 | Self.P | Self.PS | (1 << 52))          // PD[1]: 2 MiB page with bit 52
        m.put(0x4000, 0x5000 | Self.P | (1 << 60))                       // PT[0]: bit 60
        m.put(0x4008, 0x6000 | Self.P | (1 << 45))                       // PT[1]: bit 45, past MAXPHYADDR 40
        m.put(0x4010, 0x7000 | Self.P)                                   // PT[2]: fine
        var info = GuestPageWalkInfo(topEntry: 0x1000, level: 3)
        info.physicalAddressBits = 40
        info.nxe = true
        let read = { (g: UInt64, w: Int) in m.read(g, w) }
        let reserved = GuestWalkResult.fault(errorCode: GuestWalkResult.present | GuestWalkResult.reserved)
        #expect(GuestPageWalker.walk(0x0000, info, read: read) == reserved, "bit 60 of a PTE")
        #expect(GuestPageWalker.walk(0x1000, info, read: read) == reserved, "bit 45 of a PTE")
        #expect(GuestPageWalker.walk(0x20_0000, info, read: read) == reserved, "bit 52 of a 2 MiB PDE")
        #expect(GuestPageWalker.walk(0x4000_0000, info, read: read) == reserved, "bit 55 of a PDPTE")
        #expect(GuestPageWalker.walk(0x2000, info, read: read).gpa == 0x7000)
    }

    /// Found by guest_walk_32bit_*: 32-bit paging has no XD bit, so an
    /// instruction fetch sets I/D in the error code only with SMEP, not
    /// because EFER.NXE happens to be set.
    @Test func thirtyTwoBitFetchFaultsReportIDOnlyWithSMEP() {
        let m = Memory()
        m.put(0x1000, 0x2000 | Self.P)                                   // PDE -> PT, supervisor
        m.put(0x2000, 0x3000 | Self.P)                                   // PTE, supervisor
        var info = GuestPageWalkInfo(topEntry: 0x1000, level: 2)
        info.isUserModeAccess = true
        info.isInstructionFetch = true
        info.nxe = true
        let read = { (g: UInt64, w: Int) in m.read(g, w) }
        #expect(GuestPageWalker.walk(0x0, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.user))
        info.smep = true
        #expect(GuestPageWalker.walk(0x0, info, read: read) == .fault(errorCode: GuestWalkResult.present | GuestWalkResult.user | GuestWalkResult.fetch))
    }
}
