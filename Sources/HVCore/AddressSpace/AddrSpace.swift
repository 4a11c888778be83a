import CCoreIntrinsics
import Synchronization

/// A guest's physical address space: a managed range, ordered areas with
/// their backends, and the nested page table that realises them.
///
/// Every operation is all-or-nothing: when it throws, translations, areas and
/// the allocator's live frames are exactly as before. One lock per address
/// space makes it safe to share between vCPU threads.
public final class AddrSpace<Format: PageTableFormat>: Sendable {
    public let range: GuestPhysRange
    public let allocator: any FrameAllocator
    public let backing: BackingPolicy
    public let zeroing: FrameZeroing
    let bugs: SeededBugSwitch
    @usableFromInline let state: HVMutex<State>
    /// Sequence counter for lock-free translate: odd while a writer holding
    /// the lock changes table entries, bumped again (to even) when it is done.
    @usableFromInline let tableVersion: Atomic<UInt64>
    #if DEBUG
    @usableFromInline let walkPauseHook = WalkPauseHook()
    #endif
    /// The table's root and window, fixed for the space's lifetime, so the
    /// lock-free walk needs nothing from inside the lock.
    // SAFETY: the root frame lives as long as the space; it is only read here.
    @usableFromInline nonisolated(unsafe) let rootEntries: UnsafeMutablePointer<UInt64>
    @usableFromInline let tableWindow: DirectMap
    /// The table's indexes of level-0 and level-1 tables, for the two-load
    /// translate of 4 KiB and 2 MiB pages.
    @usableFromInline let leafIndex: TableIndex.View
    @usableFromInline let directoryIndex: TableIndex.View
    // SAFETY: the table's occupancy counts live as long as the table; only
    // prefetched from outside the lock, never read or written there.
    nonisolated(unsafe) let tableOccupancy: UnsafeMutablePointer<UInt16>
    /// The page table for the fault path, which uses it under the lock
    /// without a retain and release per fault.
    // SAFETY: State.table owns the same table for the space's whole life,
    // and it is used only under the lock, as State.table is.
    nonisolated(unsafe) let faultTable: Unmanaged<NestedPageTable<Format>>

    @usableFromInline
    struct State: ~Copyable {
        @usableFromInline let table: NestedPageTable<Format>
        var areas = AreaMap()
        var lazyFills = 0
        var reservesLazyWindows = false
        /// Zeroed frames this space took from the allocator in one call and
        /// has not handed to a guest yet (`FrameReserve.swift`).
        var reserve = FrameStack(capacity: AddrSpace.maxReserveBatch)
        /// How many frames the next refill asks for: doubles at each refill
        /// up to `maxReserveBatch`, from 2 (so the first fault already keeps
        /// one frame back); 1 when the allocator runs short.
        var reserveBatch = 2
        /// The frames an unmap collects, given back a batch at a time
        /// (`unmapLeaves`); one buffer for the space's life.
        let unmapRuns: FrameRunList

        init(table: NestedPageTable<Format>) {
            self.table = table
            unmapRuns = FrameRunList { [table] runs in table.release(runs: runs) }
        }
    }

    /// - Parameters:
    ///   - range: the guest-physical range this space manages; must be 4 KiB
    ///     aligned and fit the format's guest address width.
    ///   - backing: which frame sizes eager Alloc regions may use.
    ///   - zeroing: leave at `.always` except to compare benchmarks.
    public convenience init(range: GuestPhysRange, allocator: any FrameAllocator,
                            backing: BackingPolicy = .huge2MWhenPossible, zeroing: FrameZeroing = .always) throws(AddrSpaceError) {
        try self.init(range: range, allocator: allocator, backing: backing, zeroing: zeroing, bugs: SeededBugSwitch(nil))
    }

    #if DEBUG
    /// A space with one seeded bug switched on (debug builds only), for
    /// checking that the model-based checker catches it.
    public convenience init(range: GuestPhysRange, allocator: any FrameAllocator, backing: BackingPolicy = .huge2MWhenPossible,
                            seededBug: SeededBug?) throws(AddrSpaceError) {
        try self.init(range: range, allocator: allocator, backing: backing, zeroing: .always, bugs: SeededBugSwitch(seededBug))
    }
    #endif

    init(range: GuestPhysRange, allocator: any FrameAllocator, backing: BackingPolicy, zeroing: FrameZeroing,
         bugs: SeededBugSwitch) throws(AddrSpaceError) {
        guard range.isAligned(to: .size4K) else { throw .unaligned(what: "managed range", address: range.start.raw) }
        guard range.end.raw <= UInt64(1) << UInt64(Format.guestAddressBits) else {
            throw .pageTable(.guestAddressOutOfRange(start: range.start, size: range.size, addressBits: Format.guestAddressBits))
        }
        let table: NestedPageTable<Format>
        do { table = try NestedPageTable<Format>(allocator: allocator, bugs: bugs, indexing: range) } catch { throw .pageTable(error) }
        // Nothing throws from here on (an Atomic initialised before a throw
        // crashes the 6.3 optimizer).
        self.range = range
        self.allocator = allocator
        self.backing = backing
        self.zeroing = zeroing
        self.bugs = bugs
        tableVersion = Atomic(0)
        rootEntries = table.rootTable
        tableWindow = table.directMap
        leafIndex = table.leafTables.view
        directoryIndex = table.directoryTables.view
        tableOccupancy = table.occupancy
        faultTable = .passUnretained(table)
        state = HVMutex(State(table: table))
    }

    deinit { clear() }

    // MARK: Checks shared by every operation

    private func checkedRange(_ gpa: GuestPhysAddr, _ size: UInt64) throws(AddrSpaceError) -> (UInt64, UInt64) {
        if size == 0 { throw .emptyRange(gpa) }
        if !gpa.isAligned(to: .size4K) { throw .unaligned(what: "guest address", address: gpa.raw) }
        if size & (frameSize - 1) != 0 { throw .unaligned(what: "size", address: size) }
        if gpa.raw.addingReportingOverflow(size).overflow { throw .rangeOverflow(start: gpa.raw, size: size) }
        guard Kernels.rangeContains(outerStart: range.start.raw, outerSize: range.size, innerStart: gpa.raw, innerSize: size) else {
            throw .outsideManagedRange(start: gpa, size: size, managed: range)
        }
        return (gpa.raw, gpa.raw + size)
    }

    private func validate(_ flags: MappingFlags) throws(AddrSpaceError) {
        if bugs.on(.writeWithoutReadAccepted), flags.isWriteWithoutRead { return }
        do { try Format.validate(flags) } catch { throw .pageTable(error) }
    }

    /// Throws when an area overlaps `[lo, hi)`; else the slot the new
    /// area takes (one search for the check and the insertion).
    private func freeSlot(_ s: borrowing State, _ lo: UInt64, _ hi: UInt64) throws(AddrSpaceError) -> AreaMap.Slot {
        let existing: Area?
        if bugs.on(.adjacentAreasOverlap) {
            existing = s.areas.firstArea(overlapping: lo, hi + frameSize)
        } else if bugs.on(.overlapMissesContainment) {
            existing = s.areas.area(containing: lo) ?? s.areas.area(containing: hi - 1)
        } else {
            switch s.areas.placement(lo, hi) {
            case let .free(slot): return slot
            case let .taken(area): existing = area
            }
        }
        if let existing {
            throw .overlapsArea(requested: try! GuestPhysRange(start: GuestPhysAddr(lo), end: GuestPhysAddr(hi)), existing: existing.range)
        }
        return s.areas.slot(forStart: lo)
    }

    // MARK: Map

    /// Maps `[gpa, gpa + size)` to fixed host memory at `hpa`, with 1 GiB and
    /// 2 MiB leaves wherever both sides allow. `hpa` below `gpa` is fine.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func mapLinear(_ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: UInt64, flags: MappingFlags) throws(AddrSpaceError) {
        try validate(flags)
        let (lo, hi) = try checkedRange(gpa, size)
        if !hpa.isAligned(to: .size4K) { throw .unaligned(what: "host address", address: hpa.raw) }
        if hpa.raw.addingReportingOverflow(size).overflow { throw .rangeOverflow(start: hpa.raw, size: size) }
        // A map below 2 MiB writes level-0 entries: start loading the first
        // one's line, so its miss overlaps the lock and the area search.
        if size < PageSize.size2M.bytes { prefetchLeafSlot(gpa) }
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            let slot = try freeSlot(s, lo, hi)
            do throws(PageTableError) { try s.table.mapRegion(gpa, to: hpa, size: size, flags: flags) } catch { throw .pageTable(error) }
            s.areas.insert(Area(start: lo, size: size, flags: flags, backend: .linear(hostStart: hpa)), at: slot)
        }
    }

    /// Linear `gpa -> gpa` for host ranges the caller declares it owns
    /// (devices, firmware). The frames are not the address space's, and the
    /// range may not overlap the allocator's memory.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func mapReserved(_ gpa: GuestPhysAddr, size: UInt64, flags: MappingFlags) throws(AddrSpaceError) {
        try validate(flags)
        let (lo, hi) = try checkedRange(gpa, size)
        // Frames the allocator hands out (page tables, guest frames) must
        // never become reachable through a reserved mapping (I1).
        let window = allocator.directMap
        if Kernels.rangesOverlap(lo, size, window.physicalBase, window.size) {
            throw .reservedOverlapsAllocator(try! GuestPhysRange(start: gpa, size: size))
        }
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            let slot = try freeSlot(s, lo, hi)
            do throws(PageTableError) { try s.table.mapRegion(gpa, to: HostPhysAddr(lo), size: size, flags: flags) } catch { throw .pageTable(error) }
            s.areas.insert(Area(start: lo, size: size, flags: flags, backend: .reserved), at: slot)
        }
    }

    /// Allocates exactly host memory `[gpa, gpa + size)` and maps it at the
    /// same guest address. If that memory cannot be had, nothing is mapped:
    /// the space never maps memory it does not own.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func mapIdentical(_ gpa: GuestPhysAddr, size: UInt64, flags: MappingFlags) throws(AddrSpaceError) {
        try validate(flags)
        let (lo, hi) = try checkedRange(gpa, size)
        let count = Int(size / frameSize)
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            let slot = try freeSlot(s, lo, hi)
            do throws(FrameError) { try allocator.allocate(at: HostPhysAddr(lo), count: count) } catch {
                throw .identityUnavailable(try! GuestPhysRange(start: gpa, size: size), error)
            }
            zeroForGuest(HostPhysAddr(lo), count: count)
            do throws(PageTableError) { try s.table.mapRegion(gpa, to: HostPhysAddr(lo), size: size, flags: flags) } catch {
                s.table.release(HostPhysAddr(lo), count: count)
                throw .pageTable(error)
            }
            s.areas.insert(Area(start: lo, size: size, flags: flags, backend: .identical), at: slot)
        }
    }

    /// Guest memory from the allocator. Eager maps zeroed frames now (2 MiB
    /// frames where the policy and range allow); lazy maps nothing and lets
    /// `handlePageFault` fill each page, zeroed, at its first touch.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func mapAlloc(_ gpa: GuestPhysAddr, size: UInt64, flags: MappingFlags, populate: Populate) throws(AddrSpaceError) {
        try validate(flags)
        let (lo, hi) = try checkedRange(gpa, size)
        if populate == .eager, size < PageSize.size2M.bytes { prefetchLeafSlot(gpa) }  // as mapLinear does
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            let slot = try freeSlot(s, lo, hi)
            if populate == .eager { try populateEager(&s, lo, hi, flags) }
            let window = populate == .lazy && s.reservesLazyWindows ? reserveWindow(lo, size) : nil
            s.areas.insert(Area(start: lo, size: size, flags: flags, backend: .alloc(populate: populate), window: window), at: slot)
        }
    }

    /// A zeroed run of frames for a lazy area, or nil when the allocator
    /// has no such run (the area then gets a frame at each fault). The run
    /// is aligned like the guest range up to 2 MiB, so the host can back
    /// both with the same huge pages.
    private func reserveWindow(_ lo: UInt64, _ size: UInt64) -> UInt64? {
        let huge = PageSize.size2M.bytes
        let alignment = lo & (huge - 1) == 0 && size >= huge ? huge : frameSize
        let count = Int(size / frameSize)
        guard let run = try? allocator.allocateContiguous(count: count, alignment: alignment) else { return nil }
        // Under the lock, before the area exists: no one can see these frames yet.
        if zeroing == .always { allocator.zeroUntouched(run, count: count) }
        return run.raw
    }

    /// When true, lazy Alloc areas mapped from now on reserve a window: a
    /// contiguous run of frames, one per page, taken from the allocator at
    /// map time and zeroed then; each page's first fault fills it with its
    /// own frame of the run, without zeroing (only the guest can have
    /// written it since). A VMM gives the hypervisor the whole run as one
    /// memslot when the area is mapped, so the host fills pages on its own
    /// and the VMM records them afterwards (`recordWindowFills`). The run
    /// stays allocated until the area is unmapped. Off by default: an area
    /// whose run cannot be had falls back to a frame per fault.
    public var reservesLazyWindows: Bool {
        get { state.withLock { $0.reservesLazyWindows } }
        set { state.withLock { $0.reservesLazyWindows = newValue } }
    }

    /// Maps zeroed frames over `[lo, hi)`; on failure maps and keeps nothing.
    /// 2 MiB frames go where the policy, the alignment and the allocator
    /// allow; every other page gets a 4 KiB frame, allocated in batches.
    private func populateEager(_ s: inout State, _ lo: UInt64, _ hi: UInt64, _ flags: MappingFlags) throws(AddrSpaceError) {
        let table = s.table
        if hi - lo == frameSize {
            // One page (small regions): one frame from the reserve, one map, no batches.
            let unzeroed = bugs.on(.populateNotZeroed)
            let frame: HostPhysAddr
            do { frame = unzeroed ? try allocator.allocateFrame() : try reservedFrame(&s) } catch { throw .outOfFrames(error) }
            do { try table.map(GuestPhysAddr(lo), to: frame, size: .size4K, flags: flags) } catch {
                // Never mapped: back to the reserve it came from.
                if unzeroed { table.release(frame, count: 1) } else { s.reserve.push(frame.raw) }
                throw .pageTable(error)
            }
            return
        }
        let huge = PageSize.size2M.bytes
        var mapped: [(gpa: UInt64, size: UInt64)] = []
        var hugeRuns: [UInt64] = []  // zeroed at the end, merged with their neighbours
        var smallBatches: [[UInt64]] = []
        func undo() {
            for m in mapped { table.undoMap(GuestPhysAddr(m.gpa), size: m.size) }
            for run in hugeRuns { table.release(HostPhysAddr(run), count: 512) }
            for batch in smallBatches { for f in batch { table.release(HostPhysAddr(f), count: 1) } }
        }
        do throws(AddrSpaceError) {
            var cursor = lo
            var smallStart = lo, smallCount = 0  // consecutive pages waiting for 4 KiB frames
            func flushSmall() throws(AddrSpaceError) {
                guard smallCount > 0 else { return }
                let frames: [UInt64]
                do { frames = try allocator.allocateFrames(count: smallCount) } catch { throw .outOfFrames(error) }
                smallBatches.append(frames)
                if zeroing == .always, !bugs.on(.populateNotZeroed) { zeroRuns(frames.map { ($0, 1) }) }
                do {
                    try frames.withUnsafeBufferPointer { buffer throws(PageTableError) in
                        try table.mapFrames(GuestPhysAddr(smallStart), frames: buffer, flags: flags)
                    }
                } catch { throw .pageTable(error) }
                mapped.append((smallStart, UInt64(smallCount) * frameSize))
                smallCount = 0
            }
            while cursor < hi {
                let useHuge = backing == .huge2MWhenPossible
                if useHuge, cursor & (huge - 1) == 0, hi - cursor >= huge {
                    var run: UInt64?
                    do { run = try allocator.allocateContiguous(count: 512, alignment: huge).raw } catch {
                        if case .outOfMemory = error { run = nil } else { throw .outOfFrames(error) }
                    }
                    if let run {
                        hugeRuns.append(run)  // before anything else can throw
                        try flushSmall()
                        do { try table.map(GuestPhysAddr(cursor), to: HostPhysAddr(run), size: .size2M, flags: flags) } catch {
                            throw .pageTable(error)
                        }
                        mapped.append((cursor, huge))
                        cursor += huge
                        continue
                    }
                }
                // Up to the next 2 MiB boundary (or the end) takes 4 KiB frames.
                let next = useHuge ? min(hi, (cursor | (huge - 1)) + 1) : hi
                if smallCount == 0 { smallStart = cursor }
                smallCount += Int((next - cursor) / frameSize)
                cursor = next
            }
            try flushSmall()
        } catch {
            if !bugs.on(.noRollbackOnPartialFailure) { undo() }
            throw error
        }
        // Still under the lock: nobody can see these pages before they are zero.
        if zeroing == .always, !bugs.on(.populateNotZeroed) { zeroRuns(hugeRuns.sorted().map { ($0, 512) }) }
    }

    // MARK: Unmap and protect

    /// Unmaps `[gpa, gpa + size)`, which may cover several areas and holes.
    /// Areas are cut at the edges; huge leaves are split; exactly the frames
    /// of the unmapped pages of owning areas are freed; empty tables are
    /// freed; the invalidation is recorded.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func unmap(_ gpa: GuestPhysAddr, size: UInt64) throws(AddrSpaceError) {
        let (lo, hi) = try checkedRange(gpa, size)
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            let freesLinear = bugs.on(.unmapFreesLinearHostPages)
            // The common case, inside one area: no list of areas to build.
            if let area = s.areas.removeArea(covering: lo, hi) {
                // A window's frames go back as one run, filled or not, below.
                let frees = area.window == nil && (freesLinear || area.backend.ownsFrames)
                do throws(AddrSpaceError) {
                    try unmapLeaves(&s, gpa, size, everyLeafOwned: frees) { _ in frees }
                } catch {
                    s.areas.insert(area)   // all or nothing: the area is back as it was
                    throw error
                }
                releaseWindow(&s, area.slice(lo, hi))
                if area.start < lo { s.areas.insert(area.slice(area.start, lo)) }
                if area.end > hi { s.areas.insert(area.slice(hi, area.end)) }
                return
            }
            let affected = s.areas.areas(overlapping: lo, hi)
            let freeAll = freesLinear || affected.allSatisfy(\.backend.ownsFrames)
            let owning = freeAll ? affected : affected.filter(\.backend.ownsFrames)
            let windowed = affected.filter { $0.window != nil }
            try unmapLeaves(&s, gpa, size, everyLeafOwned: nil) { leafGPA in
                (freeAll || owning.contains(where: { $0.contains(leafGPA) })) && !windowed.contains(where: { $0.contains(leafGPA) })
            }
            for area in affected {
                s.areas.remove(startingAt: area.start)
                releaseWindow(&s, area.slice(lo, hi))
                if area.start < lo { s.areas.insert(area.slice(area.start, lo)) }
                if area.end > hi { s.areas.insert(area.slice(hi, area.end)) }
            }
        }
    }

    /// Releases the window frames of `piece` (a slice of a windowed area
    /// whose leaves are already gone): filled and never-filled alike.
    private func releaseWindow(_ s: inout State, _ piece: Area) {
        guard let window = piece.window, !bugs.on(.windowLeakedOnUnmap) else { return }
        s.table.release(HostPhysAddr(window), count: Int(piece.size / frameSize))
    }

    /// Removes the table's leaves in `[gpa, gpa + size)` and returns the
    /// frames of those `owned` says belong to the space, merged into runs.
    /// The table reports leaves only once nothing can fail.
    ///
    /// - Parameter everyLeafOwned: the answer `owned` would give for every
    ///   leaf, when one area holds the whole range: the per-leaf test is
    ///   then this Bool, where the closure could end up called indirectly
    ///   for each of 262,144 leaves (callgrind saw unmap_alloc_1g 1.5x slower).
    private func unmapLeaves(_ s: inout State, _ gpa: GuestPhysAddr, _ size: UInt64, everyLeafOwned: Bool?,
                             owned: (UInt64) -> Bool) throws(AddrSpaceError) {
        let runs = s.unmapRuns
        do throws(PageTableError) {
            try s.table.unmap(gpa, size: size) { leaf in
                guard everyLeafOwned ?? owned(leaf.gpa.raw) else { return }
                runs.append(leaf.hpa.raw, frames: Int(truncatingIfNeeded: leaf.pageSize.bytes >> 12))
            }
        } catch { throw .pageTable(error) }
        // Scattered frames (a lazy area after faults) go back in batches.
        runs.flush()
    }

    /// Gives `[gpa, gpa + size)` new flags: areas are cut at the edges and
    /// huge leaves split; lazy pages filled later get the new flags too.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func protect(_ gpa: GuestPhysAddr, size: UInt64, flags: MappingFlags) throws(AddrSpaceError) {
        try validate(flags)
        let (lo, hi) = try checkedRange(gpa, size)
        try mutateFallingBack { (s: inout State) throws(AddrSpaceError) in
            do throws(PageTableError) { try s.table.protect(gpa, size: size, flags: flags) } catch { throw .pageTable(error) }
            for area in s.areas.areas(overlapping: lo, hi) {
                s.areas.remove(startingAt: area.start)
                if area.start < lo { s.areas.insert(area.slice(area.start, lo)) }
                var middle = area.slice(lo, hi)
                middle.flags = flags
                s.areas.insert(middle)
                if area.end > hi { s.areas.insert(area.slice(hi, area.end)) }
            }
        }
    }

    /// Unmaps everything and frees every frame and table but the root.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func clear() {
        mutate { s in
            for area in s.areas.all where area.window != nil { releaseWindow(&s, area) }
            for area in s.areas.all where area.backend.ownsFrames && area.window == nil {
                s.table.forEachLeaf(overlapping: GuestPhysAddr(area.start), GuestPhysAddr(area.end)) { leaf in
                    s.table.release(leaf.hpa, count: Int(leaf.pageSize.bytes / frameSize))
                }
            }
            // Whole leaves only, so no split and no allocation can happen.
            s.table.undoMap(GuestPhysAddr(0), size: UInt64(1) << UInt64(Format.guestAddressBits))
            _ = s.table.takePendingInvalidations()
            // With deferred release the frames wait for the invalidation of everything.
            if s.table.defersRelease { s.table.recordInvalidation(Invalidation(range: range, reason: .unmap)) }
            s.areas.removeAll()
            releaseReserve(&s)
        }
    }

    // MARK: Faults

    /// Resolves a nested page fault at `gpa` for `access` (READ, WRITE or
    /// EXECUTE). A lazy page is filled with a zeroed frame exactly once; a
    /// repeated fault never replaces or leaks a frame.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func handlePageFault(_ gpa: GuestPhysAddr, access: MappingFlags) -> PageFaultOutcome {
        guard range.contains(gpa) else { return .violation(.outsideRange(gpa)) }
        prefetchLeafSlot(gpa)
        return mutate { s -> PageFaultOutcome in
            var found = s.areas.area(rememberingContaining: gpa.raw)
            if found == nil, bugs.on(.offByOneAtAreaEnd), gpa.raw >= frameSize,
               let before = s.areas.area(containing: gpa.raw - frameSize), before.end == gpa.alignedDown(to: .size4K).raw {
                found = before
            }
            guard let area = found else { return .violation(.noArea(gpa)) }
            guard area.flags.isSuperset(of: access.intersection(.rwx)) else {
                return .violation(.accessNotAllowed(gpa, needed: access, area: area))
            }
            guard case .alloc = area.backend else { return .violation(.linearBackend(gpa, area: area)) }
            let page = gpa.alignedDown(to: .size4K)
            var filled: NestedPageTable<Format>.PageFill
            do throws(PageTableError) {
                filled = try fillLazy(&s, gpa, area)
                if case let .present(present) = filled {
                    guard bugs.on(.lazyFaultReplacesFrame), present.pageSize == .size4K else {
                        return .violation(.alreadyPresent(gpa, present))
                    }
                    s.table.undoMap(page, size: frameSize)  // the old frame is dropped, not freed
                    filled = try fillLazy(&s, gpa, area)
                }
            } catch {
                if case let .outOfFrames(e) = error { return .violation(.outOfFrames(gpa, e)) }
                preconditionFailure("mapping an absent lazy page failed: \(error)")
            }
            guard case let .filled(frame) = filled else { preconditionFailure("a lazy page at \(page) was not filled") }
            s.lazyFills += 1
            return .handled(Translation(hostAddress: HostPhysAddr(frame.raw | gpa.pageOffset(in: .size4K)),
                                        flags: area.flags, pageSize: .size4K, leafStart: page))
        }
    }

    /// Fills the lazy page at `gpa` of `area`: with its window's frame, or
    /// one from the reserve. When a page table cannot be had while the
    /// reserve holds frames, gives them back and tries once more (a failed
    /// fill leaves nothing behind).
    @inline(__always)
    private func fillLazy(_ s: inout State, _ gpa: GuestPhysAddr, _ area: Area) throws(PageTableError) -> NestedPageTable<Format>.PageFill {
        let result = faultTable._withUnsafeGuaranteedRef { table -> Result<NestedPageTable<Format>.PageFill, PageTableError> in
            func fill() -> Result<NestedPageTable<Format>.PageFill, PageTableError> {
                Result { () throws(PageTableError) in
                    try table.fillPage(gpa, flags: area.flags) { () throws(FrameError) -> HostPhysAddr in
                        // The window's frame was zeroed when reserved; only the guest can have written it since.
                        if let reserved = area.windowFrame(gpa.raw) { return HostPhysAddr(reserved) }
                        return try reservedFrame(&s)
                    }
                }
            }
            let first = fill()
            guard case .failure(.outOfFrames(.outOfMemory)) = first, !s.reserve.isEmpty else { return first }
            releaseReserve(&s)
            return fill()
        }
        return try result.get()
    }

    /// Records pages a guest filled on its own: `hostFrames` are frames of
    /// lazy windows that the host reports touched (a VMM sees them resident
    /// in the memory it gave the hypervisor). Each one still inside a
    /// window and not yet present becomes present with the area's flags,
    /// exactly as its first fault would have made it (the same frame, no
    /// zeroing: it holds what the guest wrote). Frames of no window (an
    /// area unmapped since) are ignored. One lock for the whole batch.
    ///
    /// - Returns: how many pages became present; stops early, keeping what
    ///   it did, when a page table cannot be had (the rest stay touched and
    ///   unrecorded, for a later call).
    @_specialize(exported: true, where Format == EPTFormat)
    public func recordWindowFills(_ hostFrames: [UInt64]) -> Int {
        guard !hostFrames.isEmpty else { return 0 }
        let sorted = hostFrames.sorted()
        return mutate { s -> Int in
            let windowed = s.areas.all.filter { $0.window != nil }.sorted { $0.window! < $1.window! }
            var filled = 0, next = 0
            for frame in sorted {
                while next < windowed.count, windowed[next].window! + windowed[next].size <= frame { next += 1 }
                guard next < windowed.count, windowed[next].window! <= frame else { continue }
                let area = windowed[next]
                let gpa = GuestPhysAddr(area.start + (frame & ~(frameSize - 1)) - area.window!)
                let result: NestedPageTable<Format>.PageFill
                do { result = try s.table.fillPage(gpa, flags: area.flags) { () throws(FrameError) in HostPhysAddr(area.windowFrame(gpa.raw)!) } } catch { break }
                if case .filled = result { filled += 1 }
            }
            s.lazyFills += filled
            return filled
        }
    }

    /// Starts loading the cache lines a fault at `gpa` will write (its leaf
    /// entry and its table's occupancy count) before the fault takes the
    /// lock, so the miss overlaps the locking and the area lookup. Reads the
    /// leaf-table index like the lock-free translate; a stale slot only
    /// prefetches a line of the window, which is harmless.
    @inline(__always)
    func prefetchLeafSlot(_ gpa: GuestPhysAddr) {
        guard let leaves = leafIndex.table(gpa.raw) else { return }
        hv_prefetch_for_write(leaves + Format.index(gpa.raw, level: 0))
        hv_prefetch_for_write(tableOccupancy + tableWindow.frameIndex(of: leaves))
    }

    // MARK: Queries

    /// What `gpa` maps to now, or nil (unmapped, or lazy and not yet present).
    ///
    /// Lock-free in the common case: the walk reads entries with relaxed
    /// atomic loads between two reads of `tableVersion`; if no writer was
    /// active and the version did not move, the answer is one the table held
    /// at a single instant, exactly what the locked walk would have returned.
    /// Otherwise it walks again under the lock. Table frames a racing writer
    /// frees stay readable: they remain in the allocator's window, which lives
    /// as long as the allocator this space holds. A 4 KiB page whose level-0
    /// table is indexed, or a 2 MiB page whose level-1 table is, costs two
    /// dependent loads (index slot, leaf entry); anything else walks from
    /// the root.
    @inlinable @inline(__always)
    public func translate(_ gpa: GuestPhysAddr) -> Translation? {
        #if DEBUG
        if let pause = walkPauseHook.pause.withLock({ $0 }) { return translate(gpa, observe: PausingWalk(pause: pause)) }
        #endif
        return translate(gpa, observe: SilentWalk())
    }

    /// The two-load path, small enough to inline into every caller; the
    /// rest is out of line.
    @inlinable @inline(__always)
    func translate<O: WalkObserver>(_ gpa: GuestPhysAddr, observe: O) -> Translation? {
        let before = tableVersion.load(ordering: .acquiring)
        if before & 1 == 0, let leaves = leafIndex.table(gpa.raw) {
            let found = NestedPageTable<Format>.shortWalk(table: leaves, level: 0, gpa.raw, observe: observe)
            if let answer = validated(found, since: before) { return answer }
        }
        return translateByWalk(gpa, observe: observe)
    }

    /// What a lock-free walk found, if no writer was active when it began
    /// (`before` even) and none has been since; nil when it must be redone.
    @inlinable @inline(__always)
    func validated(_ found: WalkResult, since before: UInt64) -> Translation?? {
        atomicMemoryFence(ordering: .acquiring)
        guard tableVersion.load(ordering: .relaxed) == before else { return nil }
        switch found {
        case let .mapped(t): return .some(t)
        case .unmapped: return .some(nil)
        case .torn: return nil
        }
    }

    /// Everything but an indexed 4 KiB page, out of line: a 2 MiB leaf
    /// through the level-1 table index, else the lock-free walk from the
    /// root (1 GiB leaves, holes, addresses past the indexes, or a writer in
    /// the way), then the walk under the lock if a writer got in the way.
    @usableFromInline @inline(never)
    func translateByWalk<O: WalkObserver>(_ gpa: GuestPhysAddr, observe: O) -> Translation? {
        let before = tableVersion.load(ordering: .acquiring)
        if before & 1 == 0, leafIndex.table(gpa.raw) == nil, let directory = directoryIndex.table(gpa.raw) {
            let found = NestedPageTable<Format>.shortWalk(table: directory, level: 1, gpa.raw, observe: observe)
            if let answer = validated(found, since: before) { return answer }
        }
        return translateFromRoot(gpa, since: before, observe: observe)
    }

    /// The lock-free walk from the root, then the locked one; out of line,
    /// so the registers the full walk needs are not saved and restored on
    /// the 2 MiB path above (11 instructions a translate).
    @usableFromInline @inline(never)
    func translateFromRoot<O: WalkObserver>(_ gpa: GuestPhysAddr, since before: UInt64, observe: O) -> Translation? {
        if before & 1 == 0 {
            let found = NestedPageTable<Format>.walk(rootTable: rootEntries, directMap: tableWindow, gpa.raw, observe: observe)
            if let answer = validated(found, since: before) { return answer }
        }
        return translateLocked(gpa)
    }

    /// The walk under the lock, when a writer got in the way (kept out of
    /// line so the lock-free path stays small).
    @usableFromInline @inline(never)
    func translateLocked(_ gpa: GuestPhysAddr) -> Translation? {
        state.withLock { $0.table.query(gpa) }
    }

    /// Runs `body` under the lock as a table writer: readers of the
    /// lock-free translate see the version odd for its whole duration.
    @inline(__always)
    func mutate<R: Sendable, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try state.withLock { (s: inout State) throws(E) -> R in
            let v = tableVersion.load(ordering: .relaxed)
            tableVersion.store(v &+ 1, ordering: .relaxed)
            atomicMemoryFence(ordering: .releasing)
            defer { tableVersion.store(v &+ 2, ordering: .releasing) }
            return try body(&s)
        }
    }

    /// `mutate` for an operation that gives the frame reserve back and runs
    /// once more when it ran short of frames while the reserve held some
    /// (`FrameReserve.swift`; the failed attempt left nothing behind). It
    /// repeats `mutate`'s four lines of version counting rather than call
    /// it: the extra closure cost every map and unmap 45 instructions.
    func mutateFallingBack(_ body: (inout State) throws(AddrSpaceError) -> Void) throws(AddrSpaceError) {
        try state.withLock { (s: inout State) throws(AddrSpaceError) in
            let v = tableVersion.load(ordering: .relaxed)
            tableVersion.store(v &+ 1, ordering: .relaxed)
            atomicMemoryFence(ordering: .releasing)
            defer { tableVersion.store(v &+ 2, ordering: .releasing) }
            do throws(AddrSpaceError) { try body(&s) } catch {
                guard !s.reserve.isEmpty, Self.isShortage(error) else { throw error }
                releaseReserve(&s)
                try body(&s)
            }
        }
    }

    @usableFromInline
    func withTable<R>(_ body: (NestedPageTable<Format>) -> sending R) -> sending R {
        state.withLock { s in body(s.table) }
    }

    public var areas: [Area] { state.withLock { $0.areas.all } }
    public var areaCount: Int { state.withLock { $0.areas.count } }
    public var lazyFillCount: Int { state.withLock { $0.lazyFills } }
    public var tableFrameCount: Int { withTable { $0.tableFrameCount } }
    /// Host addresses of every page-table frame of this space.
    public var tableFrameSet: Set<UInt64> {
        withTable { t in t.tableFrames.union((1..<max(Format.rootFrames, 1)).map { t.root.raw + UInt64($0) * frameSize }) }
    }
    public var leaves: [Leaf] { withTable { $0.leaves } }
    public func takePendingInvalidations() -> [Invalidation] { withTable { $0.takePendingInvalidations() } }

    // MARK: Deferred release

    /// When true, frames released by unmap, clear and rolled-back changes
    /// (data and page-table frames alike) are not reusable until the caller
    /// completes the `InvalidationToken` that `takeInvalidation()` hands
    /// out: for spaces a guest runs on, whose frames the allocator may hand
    /// to another space. Turning it off releases nothing already waiting.
    public var defersFrameRelease: Bool {
        get { withTable { $0.defersRelease } }
        set { withTable { $0.defersRelease = newValue } }
    }

    /// Frames released but waiting for an invalidation.
    public var quarantinedFrameCount: Int { withTable { $0.quarantinedFrameCount } }
    /// The waiting frames, as runs.
    public var quarantinedRuns: [FrameRun] { withTable { $0.quarantine } }

    /// Everything invalidated since the last token, with the frames waiting
    /// for it. Take it before the invalidation starts (before deriving
    /// memslots, before INVEPT), complete it after: frames released later
    /// wait for the next token.
    public func takeInvalidation() -> InvalidationToken {
        let (frames, invalidations) = withTable { t -> ([FrameRun], [Invalidation]) in
            defer { t.quarantine.removeAll() }
            return (t.quarantine, t.takePendingInvalidations())
        }
        let allocator = allocator
        return InvalidationToken(invalidations: invalidations, frames: frames, allocator: allocator) { [weak self] frames, invalidations in
            guard let self else {
                // The space and its table are gone, and with them the guest's reach.
                for run in frames { allocator.free(run.start, count: run.count) }
                return
            }
            self.withTable { t in
                t.quarantine.insert(contentsOf: frames, at: 0)
                let later = t.pendingInvalidations
                t.pendingInvalidations = []
                for invalidation in invalidations + later { t.recordInvalidation(invalidation) }
            }
        }
    }
    public var pendingInvalidations: [Invalidation] { withTable { $0.pendingInvalidations } }
    public func area(containing gpa: GuestPhysAddr) -> Area? { state.withLock { $0.areas.area(containing: gpa.raw) } }
    /// The root of the nested page table (for an EPT pointer, a VTTBR or hgatp).
    public var tableRoot: HostPhysAddr { withTable { $0.root } }
}

extension AddrSpace where Format == EPTFormat {
    public func eptPointer(accessedDirty: Bool = false) -> UInt64 { withTable { $0.eptPointer(accessedDirty: accessedDirty) } }
}

extension AddrSpace where Format: Stage2Layout {
    public func vttbr(vmid: UInt16) -> UInt64 { withTable { $0.vttbr(vmid: vmid) } }
}

extension AddrSpace where Format: RISCVGStageLayout {
    public func hgatp(vmid: UInt16) -> UInt64 { withTable { $0.hgatp(vmid: vmid) } }
}

public typealias EPTAddrSpace = AddrSpace<EPTFormat>

extension AddrSpace {
    /// Zeroes `(start, frames)` runs, merging physically consecutive ones:
    /// one large fill is much faster than many 4 KiB ones.
    func zeroRuns(_ runs: [(start: UInt64, count: Int)]) {
        var i = 0
        while i < runs.count {
            var count = runs[i].count
            var j = i + 1
            while j < runs.count, runs[j].start == runs[i].start + UInt64(count) * frameSize {
                count += runs[j].count
                j += 1
            }
            allocator.zero(HostPhysAddr(runs[i].start), count: count)
            i = j
        }
    }

    /// Zeroes frames that are about to be handed to the guest.
    @inline(__always)
    func zeroForGuest(_ start: HostPhysAddr, count: Int) {
        if zeroing == .always { allocator.zero(start, count: count) }
    }
}

#if DEBUG
/// Debug builds only: runs inside every lock-free walk after each entry
/// read, so a test can change the table in the middle of a walk.
@usableFromInline
final class WalkPauseHook: Sendable {
    @usableFromInline let pause = Mutex<(@Sendable (Int) -> Void)?>(nil)
    @usableFromInline init() {}
}
#endif

#if DEBUG
@usableFromInline
struct PausingWalk: WalkObserver {
    @usableFromInline let pause: @Sendable (Int) -> Void
    @inlinable init(pause: @escaping @Sendable (Int) -> Void) { self.pause = pause }
    @inlinable func entryRead(level: Int) { pause(level) }
}

extension AddrSpace {
    /// Debug builds only: `body` runs in the middle of every lock-free
    /// translate, after the entry at each level is read (nil removes it).
    /// It may call this space's writers, which a real concurrent writer
    /// could do at that moment.
    public func setPauseInLockFreeWalk(_ body: (@Sendable (_ level: Int) -> Void)?) {
        walkPauseHook.pause.withLock { $0 = body }
    }
}
#endif
