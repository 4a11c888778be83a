import HVCore

/// Keeps a VM's memslots equal to what an address space maps: present
/// leaves whose host memory the process can touch, and the whole window of
/// every lazy area that reserved one, coalesced into runs contiguous in
/// guest and host and equal in flags. A mapping without WRITE becomes a
/// KVM_MEM_READONLY slot. Execute permission cannot be expressed in
/// memslots: the model enforces it, KVM does not.
///
/// Lazy windows: the space reserves each lazy area's frames as one run when
/// it is mapped (`reservesLazyWindows`, switched on here), and the area's
/// slot covers the run, so the guest's first touch of a page is the host
/// kernel's own demand fault, with no exit and no slot change. The pages
/// the guest filled that way are recorded in the space afterwards
/// (`recordWindowFills`, from the pages the host reports resident), before
/// anyone looks at the space through this VM.
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
        space.reservesLazyWindows = true
        try sync()
    }

    /// The slots the address space calls for now.
    public func derive() -> [Memslot] {
        let windows = space.areas.filter { $0.window != nil }
        var pieces: [Memslot] = []
        func piece(_ gpa: UInt64, _ size: UInt64, _ hpa: UInt64, _ flags: MappingFlags) {
            guard let host = space.allocator.hostVirtual(HostPhysAddr(hpa)) else { return }  // device memory: MMIO exits
            pieces.append(Memslot(guest: gpa, size: size, host: UInt64(UInt(bitPattern: host)), readOnly: !flags.contains(.write), flags: flags))
        }
        var w = 0
        for leaf in space.leaves {
            while w < windows.count, windows[w].end <= leaf.gpa.raw { w += 1 }
            if w < windows.count, windows[w].contains(leaf.gpa.raw) { continue }  // the window's slot covers it
            piece(leaf.gpa.raw, leaf.pageSize.bytes, leaf.hpa.raw, leaf.flags)
        }
        for area in windows { piece(area.start, area.size, area.window!, area.flags) }
        pieces.sort { $0.guest < $1.guest }
        var slots: [Memslot] = []
        for slot in pieces {
            if var last = slots.last, Self.joins(last, slot) {
                last.size += slot.size
                slots[slots.count - 1] = last
            } else {
                slots.append(slot)
            }
        }
        return slots
    }

    /// Pages of lazy windows the guest has filled (resident in the host)
    /// that the space does not know yet: recorded now. Returns how many.
    @discardableResult
    public func recordWindowFills() throws(KVMError) -> Int {
        var touched: [UInt64] = []
        for area in space.areas {
            guard let window = area.window, let host = space.allocator.hostVirtual(HostPhysAddr(window)) else { continue }
            try Sys.mincore(host, Int(area.size), into: &residency)
            for page in 0..<Int(area.size / frameSize) where residency[page] & 1 != 0 {
                let gpa = GuestPhysAddr(area.start + UInt64(page) * frameSize)
                if space.translate(gpa) == nil { touched.append(window + UInt64(page) * frameSize) }
            }
        }
        let filled = space.recordWindowFills(touched)
        windowFills += filled
        return filled
    }

    /// Pages of lazy windows recorded so far (filled by the guest through the host).
    public private(set) var windowFills = 0
    private var residency: [UInt8] = []

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
