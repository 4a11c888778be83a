import CKVM
import HVCore
import HVKVM
import Testing

/// Builds random guest page tables in guest memory for one paging mode.
struct GuestTableBuilder {
    let space: EPTAddrSpace
    let level: Int
    var next: UInt64  // next free table frame (guest-physical)
    var rng: SplitMix64
    let root: UInt64

    init(space: EPTAddrSpace, level: Int, tableArea: UInt64, seed: UInt64) throws {
        self.space = space
        self.level = level
        next = tableArea
        rng = SplitMix64(seed: seed)
        root = next
        next += 0x1000
    }

    var width: Int { level == 2 ? 4 : 8 }

    func readEntry(_ gpa: UInt64) -> UInt64 {
        width == 4 ? UInt64((try? space.read(UInt32.self, at: GuestPhysAddr(gpa))) ?? 0) : (try? space.read(UInt64.self, at: GuestPhysAddr(gpa))) ?? 0
    }

    func writeEntry(_ gpa: UInt64, _ value: UInt64) throws {
        if width == 4 { try space.write(UInt32(truncatingIfNeeded: value), at: GuestPhysAddr(gpa)) } else { try space.write(value, at: GuestPhysAddr(gpa)) }
    }

    mutating func newTable() -> UInt64 { defer { next += 0x1000 }; return next }

    /// Random permission and attribute bits for an entry, now and then a
    /// non-present one or one with a reserved bit.
    mutating func flags(leafLevelShift: UInt64?) -> UInt64 {
        var f: UInt64 = 1 | (rng.below(2) << 1) | (rng.below(2) << 2)
        if rng.below(40) == 0 { f &= ~1 }  // not present
        if level != 2, rng.below(8) == 0 { f |= 1 << 63 }  // NX
        if rng.below(60) == 0 { f |= level == 2 ? (leafLevelShift == 22 ? 1 << 21 : 0) : 1 << 51 }  // reserved (MAXPHYADDR < 52)
        return f
    }

    /// The first table to walk for `gva` and the shifts of the levels
    /// below it (for PAE, creating the page directory its PDPTE needs).
    mutating func start(_ gva: UInt64) throws -> (table: UInt64, shifts: [UInt64]) {
        switch level {
        case 2: return (root, [22, 12])
        case 3:
            let slot = root + ((gva >> 30) & 3) * 8
            var pdpte = readEntry(slot)
            if pdpte & 1 == 0 { pdpte = newTable() | 1; try writeEntry(slot, pdpte) }
            return (pdpte & 0x0007_FFFF_FFFF_F000, [21, 12])
        default: return (root, [39, 30, 21, 12])
        }
    }

    /// Maps the code page identically, present and writable, so the vCPU
    /// can run a few instructions in this mode.
    mutating func mapIdentityCodePage(_ page: UInt64) throws {
        var (table, shifts) = try start(page)
        for (depth, shift) in shifts.enumerated() {
            let bits: UInt64 = level == 2 ? 10 : 9
            let slot = table + ((page >> shift) & ((1 << bits) - 1)) * UInt64(width)
            if depth == shifts.count - 1 { try writeEntry(slot, page | 0x3); return }
            let entry = readEntry(slot)
            if entry & 1 != 0 { table = entry & 0x0007_FFFF_F000; continue }
            let child = newTable()
            try writeEntry(slot, child | 0x7)
            table = child
        }
    }

    /// Maps `gva` to a random guest-physical page (sometimes with a huge page).
    mutating func map(_ gva: UInt64, targetBase: UInt64, targetSpan: UInt64) throws {
        var (table, shifts) = try start(gva)
        for (depth, shift) in shifts.enumerated() {
            let bits: UInt64 = level == 2 ? 10 : 9
            let slot = table + ((gva >> shift) & ((1 << bits) - 1)) * UInt64(width)
            let entry = readEntry(slot)
            let isLast = depth == shifts.count - 1
            let largeOK = (level == 2 && shift == 22) || (level != 2 && (shift == 21 || (shift == 30 && level == 4)))
            if entry & 1 != 0 && (entry & (1 << 7) == 0 || !largeOK) && !isLast {
                table = entry & (level == 2 ? 0xFFFF_F000 : 0x0007_FFFF_FFFF_F000)  // bit 51 may be a planted reserved bit
                continue
            }
            if entry != 0 { return }  // already a leaf (or a deliberately broken entry) here
            let size = UInt64(1) << shift
            if isLast || (largeOK && rng.below(6) == 0) {
                let page = (targetBase + rng.below(targetSpan / size) * size) & ~(size - 1)
                var value = page | flags(leafLevelShift: shift) | (isLast ? 0 : 1 << 7)
                if level == 2 { value &= 0xFFFF_FFFF }
                try writeEntry(slot, value)
                return
            }
            let child = newTable()
            var value = child | 0x7 | (flags(leafLevelShift: nil) & ~0x7 & ~(1 << 7))
            if rng.below(50) == 0 { value &= ~2 }  // a read-only table entry
            try writeEntry(slot, level == 2 ? value & 0xFFFF_FFFF : value)
            table = child
        }
    }
}

@Suite("Guest page walker against KVM_TRANSLATE", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct GuestPagingTests {
    /// For each paging mode: random tables, 10,000 guest-virtual addresses,
    /// KVM's answer (valid, physical address) equals the walker's.
    @Test(arguments: [0, 2, 3, 4])
    func walkerAgreesWithKVM(_ level: Int) throws {
        let f = try KVMFixture()
        try f.space.mapAlloc(GuestPhysAddr(16 << 20), size: 16 << 20, flags: .readWrite, populate: .eager)  // tables
        try f.runner.syncSlots()
        var builder = try GuestTableBuilder(space: f.space, level: level, tableArea: 16 << 20, seed: UInt64(level) * 7919)
        let gvaSpan: UInt64 = level == 4 ? 1 << 47 : 1 << 32
        if level == 0 { builder = try GuestTableBuilder(space: f.space, level: 4, tableArea: 16 << 20, seed: 1) }  // tables unused without paging
        var rng = SplitMix64(seed: 0x9A1 + UInt64(level))
        // The code page first, so nothing random lands on its path.
        if level != 0 { try builder.mapIdentityCodePage(0x1000) }
        try f.runner.load([0x66, 0xBA, 0x01, 0x05, 0xB0, 0x00, 0xEE, 0xF4], at: 0x1000)  // out 0x501, 0; hlt
        // Enter the mode and run two instructions in it, so KVM's MMU is in
        // that mode; then KVM_TRANSLATE walks the tables as they are.
        if level == 4 { try f.runner.startLongMode(entry: 0x1000) } else { try f.runner.startFlatProtectedMode(entry: 0x1000) }
        var s = try f.runner.vcpu.specialRegisters()
        s.cr3 = builder.root
        s.cr0 = level == 0 ? 0x11 : 0x8000_0011  // (PG |) ET | PE
        switch level {
        case 0: s.cr4 = 0; s.efer = 0
        case 2: s.cr4 = 1 << 4; s.efer = 0  // PSE
        case 3: s.cr4 = 1 << 5; s.efer = 1 << 11  // PAE, NXE
        default: s.cr4 = 1 << 5; s.efer = (1 << 8) | (1 << 10) | (1 << 11); s.cs.l = 1; s.cs.db = 0  // LME, LMA, NXE
        }
        try f.runner.vcpu.setSpecialRegisters(s)
        let ran = try f.runner.run()
        let entered = try f.runner.vcpu.specialRegisters()
        guard level == 0 || entered.cr0 & 0x8000_0000 != 0 else {
            // PVM (shadow-paging KVM without hardware EPT) runs 64-bit
            // guests only: it drops CR0.PG for 32-bit and PAE paging.
            print("SKIPPED: guest paging mode \(level): this KVM did not enter it (CR0 = \(hex(entered.cr0)) after KVM_SET_SREGS; PVM runs 64-bit paging only); the walker's unit tests cover this mode")
            return
        }
        #expect(ran == .exited(status: 0), "the probe code ran in mode \(level): \(ran)")
        // Now the random mappings: KVM_TRANSLATE reads the tables afresh.
        var mapped: [UInt64] = []
        for _ in 0..<400 {
            let gva = rng.below(gvaSpan) & ~0xFFF
            if level != 0 { try builder.map(gva, targetBase: 0, targetSpan: 1 << 32) }
            mapped.append(gva)
        }
        var info = GuestPageWalkInfo(topEntry: builder.root, level: level)
        info.pse = level == 2
        info.nxe = level != 2
        // The guest has no CPUID set, so KVM treats it as MAXPHYADDR 36
        // without 1 GiB pages; the walker is told the same.
        info.physicalAddressBits = 36
        info.gigabytePages = false
        var compared = 0, disagreements: [String] = []
        for i in 0..<10_000 {
            let gva = i % 2 == 0 ? mapped[Int(rng.below(UInt64(mapped.count)))] + (rng.below(0x1000) & ~7) + (rng.below(4) == 0 ? rng.below(1 << 22) : 0)
                                 : rng.below(gvaSpan)
            let kvm = try f.runner.vcpu.translate(gva)
            // The walk: every table entry the walker read, to print on a disagreement.
            var walk: [String] = []
            let ours = GuestPageWalker.walk(gva, info) { gpa, width in
                let value = width == 4 ? (try? f.space.read(UInt32.self, at: GuestPhysAddr(gpa))).map(UInt64.init) : try? f.space.read(UInt64.self, at: GuestPhysAddr(gpa))
                walk.append("[\(hex(gpa))] = \(value.map(hex) ?? "unmapped")")
                return value
            }
            compared += 1
            let agree = kvm.valid ? ours.gpa == kvm.gpa : ours.gpa == nil
            if !agree && disagreements.count < 5 {
                disagreements.append("gva \(hex(gva)): KVM \(kvm.valid ? hex(kvm.gpa) : "invalid"), walker \(ours); walk \(walk.joined(separator: " -> "))")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        print("guest paging level \(level): \(compared) addresses compared with KVM_TRANSLATE, \(disagreements.count) disagreements")
        KVMAvailability.ran("walkerAgreesWithKVM(\(level))")
    }
}
