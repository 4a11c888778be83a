import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// One virtual CPU with its mmap'd kvm_run page.
public final class VCPU {
    public let vm: VirtualMachine
    let fd: Int32
    let run: UnsafeMutablePointer<kvm_run>
    private let runSize: Int

    init(vm: VirtualMachine, id: Int) throws(KVMError) {
        self.vm = vm
        fd = Int32(try Sys.ioctl(vm.fd, CKVM_CREATE_VCPU, "KVM_CREATE_VCPU", value: UInt(id)))
        runSize = vm.system.vcpuMmapSize
        do {
            let p = try Sys.mmap(runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, "mmap(kvm_run)")
            run = p.assumingMemoryBound(to: kvm_run.self)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    deinit {
        Sys.munmap(UnsafeMutableRawPointer(run), runSize)
        Sys.close(fd)
    }

    /// KVM_RUN until the next exit; EINTR/EAGAIN come back as `.interrupted`.
    public func enter() throws(KVMError) {
        try Sys.ioctl(fd, CKVM_RUN, "KVM_RUN", value: 0)
    }

    /// Lets KVM finish an exit the runner abandoned (an MMIO access that
    /// was a violation) without running guest code: KVM_RUN with
    /// immediate_exit set completes pending I/O and returns EINTR at once.
    /// Without this, setting new registers and running would first finish
    /// the old access against the new state.
    public func flushPendingExit() throws(KVMError) {
        run.pointee.immediate_exit = 1
        defer { run.pointee.immediate_exit = 0 }
        do throws(KVMError) { try Sys.ioctl(fd, CKVM_RUN, "KVM_RUN", value: 0) } catch let .call(_, errno) where errno == .interrupted {
            return   // the expected answer: nothing ran
        }
    }

    public func registers() throws(KVMError) -> kvm_regs {
        var r = kvm_regs()
        try Sys.ioctl(fd, CKVM_GET_REGS, "KVM_GET_REGS", &r)
        return r
    }

    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var r = regs
        try Sys.ioctl(fd, CKVM_SET_REGS, "KVM_SET_REGS", &r)
    }

    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var s = kvm_sregs()
        try Sys.ioctl(fd, CKVM_GET_SREGS, "KVM_GET_SREGS", &s)
        return s
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var s = sregs
        try Sys.ioctl(fd, CKVM_SET_SREGS, "KVM_SET_SREGS", &s)
    }

    var exitReason: UInt32 { ckvm_exit_reason(run) }

    /// KVM_TRANSLATE: how the vCPU's current paging mode translates `gva`
    /// for a supervisor read. (KVM reports `writeable` and `usermode` as
    /// fixed values, so only the address and validity carry information.)
    public func translate(_ gva: UInt64) throws(KVMError) -> (gpa: UInt64, valid: Bool) {
        var t = kvm_translation()
        t.linear_address = gva
        try Sys.ioctl(fd, CKVM_TRANSLATE, "KVM_TRANSLATE", &t)
        return (t.physical_address, t.valid != 0)
    }
}
