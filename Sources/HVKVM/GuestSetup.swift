import CKVM
import HVCore

extension GuestRunner {
    /// Real mode, CS = DS = 0, starting at `entry` (below 64 KiB).
    public func startRealMode(entry: UInt16) throws(KVMError) {
        vcpu.flushPendingExit()
        var s = try vcpu.specialRegisters()
        for segment in [\kvm_sregs.cs, \.ds, \.es, \.fs, \.gs, \.ss] {
            s[keyPath: segment].base = 0
            s[keyPath: segment].selector = 0
        }
        try vcpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = UInt64(entry)
        r.rflags = 2
        r.rsp = 0x8000
        try vcpu.setRegisters(r)
    }

    /// 32-bit flat protected mode without paging: every segment has base 0
    /// and a 4 GiB limit, so guest addresses are guest-physical addresses.
    public func startFlatProtectedMode(entry: UInt32) throws(KVMError) {
        vcpu.flushPendingExit()
        var s = try vcpu.specialRegisters()
        func flat(_ seg: inout kvm_segment, code: Bool) {
            seg.base = 0
            seg.limit = 0xFFFF_FFFF
            seg.selector = code ? 0x08 : 0x10
            seg.type = code ? 11 : 3
            seg.present = 1
            seg.dpl = 0
            seg.db = 1
            seg.s = 1
            seg.l = 0
            seg.g = 1
        }
        flat(&s.cs, code: true)
        flat(&s.ds, code: false); flat(&s.es, code: false); flat(&s.fs, code: false)
        flat(&s.gs, code: false); flat(&s.ss, code: false)
        s.cr0 |= 1  // PE
        try vcpu.setSpecialRegisters(s)
        var r = kvm_regs()
        r.rip = UInt64(entry)
        r.rflags = 2
        r.rsp = 0x8000
        try vcpu.setRegisters(r)
    }

    /// Copies `bytes` into guest memory at `gpa` (which must be mapped and
    /// writable in the model, or the load is refused).
    public func load(_ bytes: [UInt8], at gpa: UInt64) throws(AddrSpaceError) {
        try space.writeBytes(GuestPhysAddr(gpa), bytes)
    }
}
