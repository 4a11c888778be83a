import HVCore

/// Keeps a VM's memslots equal to what an address space maps: present
/// leaves whose host memory the process can touch, coalesced into runs
/// contiguous in guest and host and equal in flags. A mapping without
/// WRITE becomes a KVM_MEM_READONLY slot. Execute permission cannot be
/// expressed in memslots: the model enforces it, KVM does not.
public final class MemslotSync {
    public let space: EPTAddrSpace
    public let vm: VirtualMachine
    /// Slot operations applied so far (adds + deletes).
    public private(set) var operations = 0

    public init(space: EPTAddrSpace, vm: VirtualMachine) throws(KVMError) {
        self.space = space
        self.vm = vm
        vm.retainMemory(space.allocator)
        if let tracker = space.allocator as? TrackingAllocator { vm.retainMemory(tracker.inner) }
        space.defersFrameRelease = true
        try sync()
    }

    /// The slots the address space calls for now.
    public func derive() -> [Memslot] {
        var slots: [Memslot] = []
        for leaf in space.leaves {
            guard let host = space.allocator.hostVirtual(leaf.hpa) else { continue }  // device memory: MMIO exits
            let slot = Memslot(guest: leaf.gpa.raw, size: leaf.pageSize.bytes, host: UInt64(UInt(bitPattern: host)),
                               readOnly: !leaf.flags.contains(.write), flags: leaf.flags)
            if var last = slots.last, Self.joins(last, slot) {
                last.size += slot.size
                slots[slots.count - 1] = last
            } else {
                slots.append(slot)
            }
        }
        return slots
    }

    /// Applies only the difference: deletes slots no longer wanted (first,
    /// so nothing overlaps), then adds the new ones.
    public func sync() throws(KVMError) {
        // Taken first: frames released after this point wait for the next sync.
        let released = space.takeInvalidation()
        let wanted = derive()
        let wantedSet = Set(wanted.map(SlotKey.init))
        for (number, slot) in vm.slots where !wantedSet.contains(SlotKey(slot)) {
            try vm.removeSlot(number)
            operations += 1
        }
        let have = Set(vm.slots.values.map(SlotKey.init))
        for slot in wanted where !have.contains(SlotKey(slot)) {
            try vm.addSlot(slot)
            operations += 1
        }
        // No slot reaches the released frames any more (a failed slot
        // operation above leaves them quarantined: the token gives them back).
        let freed = released.frameCount
        released.complete()
        // Off the fault path: the host drops what was just freed, so the
        // next owner gets it zero without anyone writing it.
        if freed > 0 { pool?.scrub() }
    }

    /// The pool under the space's allocator, when there is one to scrub.
    private var pool: HeapFramePool? {
        space.allocator as? HeapFramePool ?? (space.allocator as? TrackingAllocator)?.inner as? HeapFramePool
    }

    /// Frames released by the space's changes and still waiting for a sync.
    public var quarantinedFrames: Int { space.quarantinedFrameCount }

    static func joins(_ a: Memslot, _ b: Memslot) -> Bool {
        a.guest + a.size == b.guest && a.host + a.size == b.host && a.flags == b.flags
    }

    /// After one 4 KiB page became present (a lazy fault): adds its slot,
    /// merged with the slots just below and above it when they join, in at
    /// most three slot operations instead of a full derivation.
    public func pageBecamePresent(_ page: Leaf) throws(KVMError) {
        guard let host = space.allocator.hostVirtual(page.hpa) else { return }
        var merged = Memslot(guest: page.gpa.raw, size: page.pageSize.bytes, host: UInt64(UInt(bitPattern: host)),
                             readOnly: !page.flags.contains(.write), flags: page.flags)
        var neighbours: [UInt32] = []
        for (number, slot) in vm.slots {
            if Self.joins(slot, merged) || Self.joins(merged, slot) { neighbours.append(number) }
        }
        for number in neighbours {
            let slot = vm.slots[number]!
            if slot.guest < merged.guest {
                merged = Memslot(guest: slot.guest, size: slot.size + merged.size, host: slot.host, readOnly: merged.readOnly, flags: merged.flags)
            } else {
                merged.size += slot.size
            }
            try vm.removeSlot(number)
            operations += 1
        }
        try vm.addSlot(merged)
        operations += 1
    }

    /// Differences between the live slots and the derivation (empty when in step).
    public func divergence() -> [String] {
        let live = Set(vm.slots.values.map(SlotKey.init)), wanted = Set(derive().map(SlotKey.init))
        return live.subtracting(wanted).map { "stale slot \($0.slot)" } + wanted.subtracting(live).map { "missing slot \($0.slot)" }
    }

    public var slotCount: Int { vm.slots.count }

    private struct SlotKey: Hashable {
        let slot: Memslot
        init(_ slot: Memslot) { self.slot = slot }
        func hash(into h: inout Hasher) { h.combine(slot.guest); h.combine(slot.size); h.combine(slot.host); h.combine(slot.readOnly); h.combine(slot.flags.rawValue) }
        static func == (a: SlotKey, b: SlotKey) -> Bool { a.slot == b.slot }
    }
}
