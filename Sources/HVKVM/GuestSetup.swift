import CKVM
import HVCore

extension GuestRunner {
    /// Fresh general registers: RIP at `entry`, RFLAGS with only its
    /// reserved bit 1, a stack at 0x8000.
    private func enter(at entry: UInt64) throws(KVMError) {
        var r = kvm_regs()
        r.rip = entry
        r.rflags = 2
        r.rsp = 0x8000
        try vcpu.setRegisters(r)
    }

    /// Real mode, CS = DS = 0, starting at `entry` (below 64 KiB).
    public func startRealMode(entry: UInt16) throws(KVMError) {
        try vcpu.flushPendingExit()
        var s = try vcpu.specialRegisters()
        for segment in [\kvm_sregs.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
            s[keyPath: segment].base = 0
            s[keyPath: segment].selector = 0
        }
        try vcpu.setSpecialRegisters(s)
        try enter(at: UInt64(entry))
    }

    /// 32-bit flat protected mode without paging: every segment has base 0
    /// and a 4 GiB limit, so guest addresses are guest-physical addresses.
    /// Loads flat segments (base 0, 4 GiB limit) into every segment
    /// register: code at selector 8 (64-bit when `longMode`), data at 16.
    static func loadFlatSegments(_ s: inout kvm_sregs, longMode: Bool, codeSelector: UInt16 = 0x08) {
        func flat(_ seg: inout kvm_segment, code: Bool) {
            seg.base = 0
            seg.limit = 0xFFFF_FFFF
            seg.selector = code ? codeSelector : codeSelector + 8
            seg.type = code ? 11 : 3
            seg.present = 1
            seg.dpl = 0
            seg.db = code && longMode ? 0 : 1
            seg.s = 1
            seg.l = code && longMode ? 1 : 0
            seg.g = 1
        }
        flat(&s.cs, code: true)
        flat(&s.ds, code: false); flat(&s.es, code: false); flat(&s.fs, code: false)
        flat(&s.gs, code: false); flat(&s.ss, code: false)
    }

    public func startFlatProtectedMode(entry: UInt32) throws(KVMError) {
        try vcpu.flushPendingExit()
        var s = try vcpu.specialRegisters()
        Self.loadFlatSegments(&s, longMode: false)
        s.cr0 |= 1  // PE
        try vcpu.setSpecialRegisters(s)
        try enter(at: UInt64(entry))
    }

    /// Where `startLongMode` puts its GDT and page tables (inside guest RAM).
    public static let longModeTables: UInt64 = 0x10000

    /// 64-bit long mode, prepared by the host: a GDT with a 64-bit code
    /// segment, identity-mapped guest page tables for the first 4 GiB (2 MiB
    /// pages) written into guest memory at `longModeTables`, and
    /// CR0.PE|PG, CR4.PAE, EFER.LME|LMA. Guest virtual = guest physical.
    public func startLongMode(entry: UInt64) throws(KVMError) {
        try startLongMode(entry: entry, codeSelector: 0x08, rsi: nil)
    }

    /// The state the Linux x86 boot protocol asks for at a 64-bit entry:
    /// long mode with the first 4 GiB identity-mapped, a GDT whose flat
    /// code and data descriptors sit at __BOOT_CS (0x10) and __BOOT_DS
    /// (0x18), interrupts off, and RSI holding the zero page's address.
    public func startLinux64(entry: UInt64, bootParams: UInt64) throws(KVMError) {
        try startLongMode(entry: entry, codeSelector: 0x10, rsi: bootParams)
    }

    private func startLongMode(entry: UInt64, codeSelector: UInt16, rsi: UInt64?) throws(KVMError) {
        try vcpu.flushPendingExit()
        let base = Self.longModeTables
        let gdt = base, pml4 = base + 0x1000, pdpt = base + 0x2000, pd = base + 0x3000
        func put(_ words: [UInt64], at gpa: UInt64) throws(KVMError) {
            do { try space.writeBytes(GuestPhysAddr(gpa), words.withUnsafeBytes(Array.init)) } catch {
                throw .invalidConfiguration("long-mode tables at \(hex(gpa)) are not writable guest RAM: \(error)")
            }
        }
        let code: UInt64 = 0x00AF_9A00_0000_FFFF, data: UInt64 = 0x00CF_9200_0000_FFFF
        let descriptors = [UInt64](repeating: 0, count: Int(codeSelector / 8)) + [code, data]
        try put(descriptors, at: gdt)
        try put([pdpt | 0x3] + [UInt64](repeating: 0, count: 511), at: pml4)
        try put((0..<4).map { pd + UInt64($0) * 0x1000 | 0x3 } + [UInt64](repeating: 0, count: 508), at: pdpt)
        try put((0..<2048).map { UInt64($0) << 21 | 0x83 }, at: pd)  // present, writable, 2 MiB page

        var s = try vcpu.specialRegisters()
        Self.loadFlatSegments(&s, longMode: true, codeSelector: codeSelector)
        s.gdt.base = gdt
        s.gdt.limit = UInt16(descriptors.count * 8 - 1)
        s.cr3 = pml4
        s.cr4 |= 1 << 5                      // PAE
        s.efer |= (1 << 8) | (1 << 10)       // LME, LMA
        s.cr0 |= (1 << 0) | (1 << 31)        // PE, PG
        try vcpu.setSpecialRegisters(s)
        try enter(at: entry)
        if let rsi {
            var r = try vcpu.registers()
            r.rsi = rsi
            try vcpu.setRegisters(r)
        }
    }

    /// Copies `bytes` into guest memory at `gpa` (which must be mapped and
    /// writable in the model, or the load is refused). Lazy pages it covers
    /// are faulted in first, as the guest's own first write would; KVM is
    /// told about them when the run starts.
    public func load(_ bytes: [UInt8], at gpa: UInt64) throws(AddrSpaceError) {
        guard !bytes.isEmpty else { return }
        var page = gpa & ~0xFFF
        var faulted = false
        while page < gpa + UInt64(bytes.count) {
            if space.translate(GuestPhysAddr(page)) == nil,
               case .handled = space.handlePageFault(GuestPhysAddr(page), access: .write) {
                loadFaults += 1
                faulted = true
            }
            page += 0x1000
        }
        try space.writeBytes(GuestPhysAddr(gpa), bytes)
        if faulted { slotsStale = true }   // run() tells KVM before the guest runs
    }
}
