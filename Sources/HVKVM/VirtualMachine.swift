import CKVM
import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// One KVM memory slot: guest range -> host virtual memory.
public struct Memslot: Equatable, Sendable, CustomStringConvertible {
    public var guest: UInt64
    public var size: UInt64
    public var host: UInt64  // host virtual address
    public var readOnly: Bool
    /// The mapping flags the slot carries (HVKit's bookkeeping; KVM sees
    /// only `readOnly`). Slots coalesce only across equal flags.
    public var flags: MappingFlags = .readWrite

    public var description: String { "[\(hex(guest)), \(hex(guest + size))) -> \(hex(host))\(readOnly ? " RO" : "")" }
}

/// A KVM virtual machine. It owns its slots: dropping it deletes every
/// slot before the descriptor is closed, so KVM never points at memory the
/// caller has already unmapped (the pool must outlive the VM).
public final class VirtualMachine {
    public let system: KVMSystem
    let fd: Int32
    /// Slot number -> slot currently installed.
    public private(set) var slots: [UInt32: Memslot] = [:]
    private var freeSlotNumbers: [UInt32] = []
    /// Owners of the memory the slots point into, kept alive by the VM so
    /// that its slots are always deleted before that memory is unmapped.
    private var memoryOwners: [AnyObject] = []
    private var nextSlotNumber: UInt32 = 0

    public init(system: KVMSystem) throws(KVMError) {
        self.system = system
        fd = Int32(try Sys.ioctl(system.fd, CKVM_CREATE_VM, "KVM_CREATE_VM", value: 0))
        // Intel needs a TSS region below 4 GiB; where KVM offers the call it must succeed.
        if system.capability(CKVM_CAP_SET_TSS_ADDR) > 0 {
            do throws(KVMError) { try Sys.ioctl(fd, CKVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", value: 0xFFFB_D000) } catch {
                Sys.close(fd)
                throw error
            }
        }
    }

    deinit {
        // Slots go first; the memory owners are released only after this.
        for number in slots.keys {
            do throws(KVMError) { try setRegion(number, Memslot(guest: 0, size: 0, host: 0, readOnly: false, flags: [])) } catch {
                // Closing the VM below drops the slot anyway; say it went wrong.
                Sys.report("deleting memslot \(number) while closing the VM: \(error)")
            }
        }
        Sys.close(fd)
    }

    private func setRegion(_ number: UInt32, _ slot: Memslot) throws(KVMError) {
        var region = kvm_userspace_memory_region(slot: number, flags: slot.readOnly ? CKVM_MEM_READONLY : 0,
                                                 guest_phys_addr: slot.guest, memory_size: slot.size, userspace_addr: slot.host)
        try Sys.ioctl(fd, CKVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region)
    }

    /// Keeps `owner` (the host memory pool) alive for as long as the VM.
    public func retainMemory(_ owner: AnyObject) {
        if !memoryOwners.contains(where: { $0 === owner }) { memoryOwners.append(owner) }
    }

    /// Installs a slot; returns its number.
    @discardableResult
    public func addSlot(_ slot: Memslot) throws(KVMError) -> UInt32 {
        let number = freeSlotNumbers.popLast() ?? { defer { nextSlotNumber += 1 }; return nextSlotNumber }()
        do {
            try setRegion(number, slot)
        } catch {
            freeSlotNumbers.append(number)
            throw error
        }
        slots[number] = slot
        return number
    }

    /// Deletes the slot with this number (KVM: size 0).
    public func removeSlot(_ number: UInt32) throws(KVMError) {
        guard slots[number] != nil else { return }
        try setRegion(number, Memslot(guest: 0, size: 0, host: 0, readOnly: false, flags: []))
        slots[number] = nil
        freeSlotNumbers.append(number)
    }

    /// Makes KVM exit to the runner for exactly the MSR accesses `bitmap`
    /// intercepts (and every MSR outside its two ranges, as VMX does):
    /// KVM_CAP_X86_USER_SPACE_MSR with filter exits, and a KVM MSR filter
    /// that denies what the VMX bitmap intercepts. Call before the vCPU is made.
    public func installMsrFilter(_ bitmap: borrowing MsrBitmap) throws(KVMError) {
        if ckvm_enable_user_msr_exits(fd) < 0 { throw Sys.error("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)") }
        // VMX: a set bit exits; KVM filter: a set bit allows. Invert each quarter.
        let quarters: [[UInt8]] = bitmap.frame.withUnsafeBytes { bytes in
            (0..<4).map { q in (0..<1024).map { ~bytes[q * 1024 + $0] } }
        }
        let r = quarters[0].withUnsafeBufferPointer { rl in quarters[1].withUnsafeBufferPointer { rh in
            quarters[2].withUnsafeBufferPointer { wl in quarters[3].withUnsafeBufferPointer { wh in
                ckvm_set_msr_filter(fd, 1, rl.baseAddress, rh.baseAddress, wl.baseAddress, wh.baseAddress)
            } } } }
        if r < 0 { throw Sys.error("KVM_X86_SET_MSR_FILTER") }
    }

    /// True once `createInterruptControllers` has run.
    public private(set) var hasInterruptControllers = false

    /// The in-kernel PIC, IOAPIC and local APICs (KVM_CREATE_IRQCHIP) and
    /// the in-kernel PIT (KVM_CREATE_PIT2), as a PC-compatible kernel
    /// expects them. Call before the first vCPU is made. With them, KVM
    /// handles HLT itself: a halted guest no longer exits to the runner.
    public func createInterruptControllers() throws(KVMError) {
        guard system.capability(CKVM_CAP_IRQCHIP) > 0 else { throw .missingCapability("KVM_CAP_IRQCHIP") }
        guard system.capability(CKVM_CAP_PIT2) > 0 else { throw .missingCapability("KVM_CAP_PIT2") }
        // Intel needs a page for the real-mode identity map; keep it beside the TSS.
        var page: UInt64 = 0xFFFB_C000   // below the TSS at 0xFFFBD000, outside any RAM HVKit plans
        if system.capability(CKVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 {
            try Sys.ioctl(fd, CKVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &page)
        }
        try Sys.ioctl(fd, CKVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", value: 0)
        if ckvm_create_pit2(fd) < 0 { throw Sys.error("KVM_CREATE_PIT2") }
        hasInterruptControllers = true
    }

    /// Sets an interrupt line of the in-kernel irqchip (ISA IRQ numbers).
    public func setInterruptLine(_ irq: UInt32, high: Bool) throws(KVMError) {
        if ckvm_irq_line(fd, irq, high ? 1 : 0) < 0 { throw Sys.error("KVM_IRQ_LINE(\(irq))") }
    }

    public func makeVCPU(id: Int = 0) throws(KVMError) -> VCPU {
        try VCPU(vm: self, id: id)
    }
}
