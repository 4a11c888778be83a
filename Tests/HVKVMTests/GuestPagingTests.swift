import CKVM
import HVCore
import HVKVM
import HVOracle
import Testing

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
            print("SKIPPED: guest paging mode \(level): this KVM did not enter it (CR0 = \(hex(entered.cr0)) after KVM_SET_SREGS; PVM runs 64-bit paging only); the QEMU oracle (X86PagingOracleTests) checks this mode instead")
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
            // Without paging both sides answer the identity: asserted, but not
            // counted as a comparison with KVM (it proves nothing about a walk).
            if level != 0 { compared += 1 }
            let agree = kvm.valid ? ours.gpa == kvm.gpa : ours.gpa == nil
            if !agree && disagreements.count < 5 {
                disagreements.append("gva \(hex(gva)): KVM \(kvm.valid ? hex(kvm.gpa) : "invalid"), walker \(ours); walk \(walk.joined(separator: " -> "))")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        // KVM_TRANSLATE answers the address only: on x86 KVM fills its
        // writeable and usermode fields with constants, so permissions and
        // error codes are left to the QEMU oracle (HVOracleTests).
        print(level == 0 ? "guest paging level 0: no paging, the walker's identity asserted for 10,000 addresses (not counted as a KVM comparison)"
                         : "guest paging level \(level): \(compared) addresses compared with KVM_TRANSLATE, \(disagreements.count) disagreements")
        KVMAvailability.ran("walkerAgreesWithKVM(\(level))")
    }
}
