/// Mapping: single pages, regions with the largest leaves that fit, runs of
/// frames, and the lazy fault's one-walk fill; all or nothing.
extension NestedPageTable {
    // MARK: Map

    /// Maps one page of `size` at `gpa` to `hpa`.
    public func map(_ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: PageSize, flags: MappingFlags) throws(PageTableError) {
        if !gpa.isAligned(to: size) { throw .unaligned(what: "guest address", address: gpa.raw, alignment: size.bytes) }
        if !hpa.isAligned(to: size) { throw .unaligned(what: "host address", address: hpa.raw, alignment: size.bytes) }
        try mapRegion(gpa, to: hpa, size: size.bytes, flags: flags, largest: size, smallest: size)
    }

    /// Maps `[gpa, gpa + size)` to `[hpa, hpa + size)`, each step with the
    /// largest leaf that both sides' alignment and the bytes left allow
    /// (4 KiB only when `allowHuge` is false). All or nothing: on any error
    /// the table is exactly as before and no frame is kept.
    public func mapRegion(
        _ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: UInt64, flags: MappingFlags, allowHuge: Bool = true
    ) throws(PageTableError) {
        try mapRegion(gpa, to: hpa, size: size, flags: flags, largest: allowHuge ? .size1G : .size4K, smallest: .size4K)
    }

    func mapRegion(
        _ gpa: GuestPhysAddr, to hpa: HostPhysAddr, size: UInt64, flags: MappingFlags,
        largest: PageSize, smallest: PageSize
    ) throws(PageTableError) {
        try validate(flags)
        try checkRange(gpa, size)
        if !hpa.isAligned(to: .size4K) { throw .unaligned(what: "host address", address: hpa.raw, alignment: frameSize) }
        let hostLimit = UInt64(1) << UInt64(Format.hostAddressBits)
        if hpa.raw >= hostLimit || size > hostLimit - hpa.raw {
            throw .hostAddressOutOfRange(start: hpa, size: size, addressBits: Format.hostAddressBits)
        }
        if size == frameSize, smallest == .size4K { return try mapOnePage(gpa.raw, to: hpa.raw, flags: flags) }

        var done: UInt64 = 0
        // The last table written into, reused while the next leaf falls in it.
        var cached: (table: EntryTable, level: Int, start: UInt64, end: UInt64)?
        do throws(PageTableError) {
            while done < size {
                let g = gpa.raw + done, h = hpa.raw + done, remaining = size - done
                var level = largest.level
                while level > smallest.level {
                    let mask = Format.span(level: level) - 1
                    if Format.leafAllowed(level: level),
                       Kernels.hugePageEligible(gpa: g, hpa: h, remaining: remaining, mask: mask) { break }
                    level -= 1
                }
                let t: EntryTable
                if let c = cached, c.level == level, g >= c.start, g < c.end {
                    t = c.table
                } else {
                    t = try walkCreating(g, to: level)
                    let tableSpan = Format.span(level: level + 1)
                    let start = g & ~(tableSpan - 1)
                    cached = (t, level, start, start + tableSpan)
                }
                var slot = Format.index(g, level: level)
                if t[slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(g)) }
                t[slot] = Format.encodeLeaf(hpa: h, flags: flags, level: level)
                let span = Format.span(level: level)
                done += span
                // The rest of this table takes leaves of the same size: both
                // sides stay aligned, and a larger leaf could only start where
                // the next table does. Stops at the table's end or the bytes'.
                slot += 1
                while size - done >= span, Format.index(gpa.raw + done, level: level) == slot {
                    if t[slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(gpa.raw + done)) }
                    t[slot] = Format.encodeLeaf(hpa: hpa.raw + done, flags: flags, level: level)
                    done += span
                    slot += 1
                }
            }
        } catch {
            // Everything in [gpa, gpa + done) was empty before and is whole
            // leaves now, so removing it cannot need a split (or a frame).
            if done > 0 { removeRange(gpa.raw, gpa.raw + done) }
            pruneEmptyTables(along: gpa.raw + done)
            throw error
        }
    }

    /// One 4 KiB leaf at `g` (checked, aligned): `mapRegion` of one page
    /// (small regions, device pages) as one walk and one store, without
    /// the leaf-size choice and the table cache. All or nothing.
    private func mapOnePage(_ g: UInt64, to h: UInt64, flags: MappingFlags) throws(PageTableError) {
        do throws(PageTableError) {
            let t = try walkCreating(g, to: 0)
            let slot = Format.index(g, level: 0)
            if t[slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(g)) }
            t[slot] = Format.encodeLeaf(hpa: h, flags: flags, level: 0)
        } catch {
            pruneEmptyTables(along: g)
            throw error
        }
    }

    /// Maps consecutive 4 KiB pages from `gpa` to the given frames, one
    /// frame per page, in one pass that reuses the leaf table while it can.
    /// All or nothing, like `mapRegion`.
    public func mapFrames(_ gpa: GuestPhysAddr, frames: UnsafeBufferPointer<UInt64>, flags: MappingFlags) throws(PageTableError) {
        try validate(flags)
        try checkRange(gpa, UInt64(frames.count) * frameSize)
        let hostLimit = UInt64(1) << UInt64(Format.hostAddressBits)
        for f in frames where f & (frameSize - 1) != 0 || f >= hostLimit {
            throw f >= hostLimit ? .hostAddressOutOfRange(start: HostPhysAddr(f), size: frameSize, addressBits: Format.hostAddressBits)
                : .unaligned(what: "host address", address: f, alignment: frameSize)
        }
        var done = 0
        var leafTable: EntryTable?
        do throws(PageTableError) {
            while done < frames.count {
                let g = gpa.raw + UInt64(done) * frameSize
                let slot = Format.index(g, level: 0)
                if leafTable == nil || slot == 0 { leafTable = try walkCreating(g, to: 0) }
                if leafTable![slot] != 0 { throw PageTableError.alreadyMapped(GuestPhysAddr(g)) }
                leafTable![slot] = Format.encodeLeaf(hpa: frames[done], flags: flags, level: 0)
                done += 1
            }
        } catch {
            if done > 0 { removeRange(gpa.raw, gpa.raw + UInt64(done) * frameSize) }
            pruneEmptyTables(along: gpa.raw + UInt64(done) * frameSize)
            throw error
        }
    }

    /// What placing one lazily filled 4 KiB page found.
    public enum PageFill {
        /// The page now maps this frame, the one `frame` returned.
        case filled(HostPhysAddr)
        /// Something already maps the page (a 4 KiB or a huge leaf); no
        /// frame was asked for.
        case present(Translation)
    }

    /// Maps the 4 KiB page holding `gpa` to a frame `frame` supplies, in one
    /// walk that creates the tables on the way: the fault path's map. If the
    /// page is already mapped, `frame` is not called and the answer is what
    /// `gpa` translates to. If `frame` (or a table) cannot be had, the tables
    /// this call created are freed again and the table is exactly as before.
    public func fillPage(_ gpa: GuestPhysAddr, flags: MappingFlags,
                         frame: () throws(FrameError) -> HostPhysAddr) throws(PageTableError) -> PageFill {
        precondition(gpa.raw >> UInt64(Format.guestAddressBits) == 0, "fillPage needs an address inside the format's range")
        let page = gpa.raw & ~(frameSize - 1)
        let t: EntryTable
        do { t = try walkCreating(page, to: 0) } catch {
            if case .alreadyMapped = error, let present = query(gpa) { return .present(present) }
            pruneEmptyTables(along: page)
            throw error
        }
        let slot = Format.index(page, level: 0)
        if t[slot] != 0, let present = query(gpa) { return .present(present) }
        let hpa: HostPhysAddr
        do { hpa = try frame() } catch {
            pruneEmptyTables(along: page)
            throw .outOfFrames(error)
        }
        t[slot] = Format.encodeLeaf(hpa: hpa.raw, flags: flags, level: 0)
        return .filled(hpa)
    }

    /// Removes mappings this caller just made and nobody has used, without
    /// recording an invalidation: the undo of a map inside one operation.
    /// `[gpa, gpa + size)` must consist of whole leaves.
    public func undoMap(_ gpa: GuestPhysAddr, size: UInt64) {
        removeRange(gpa.raw, gpa.raw + size)
    }

    /// The table at `level` on the path of `gpa`, creating missing tables.
    /// Throws `alreadyMapped` when a leaf above `level` covers `gpa`.
    func walkCreating(_ gpa: UInt64, to level: Int) throws(PageTableError) -> EntryTable {
        if level == 0, let leaves = leafTables.view.table(gpa) { return table(at: leaves) }
        var hpa = root.raw
        var l = rootLevel
        while l > level {
            let t = table(hpa)
            let slot = Format.index(gpa, level: l)
            let e = t[slot]
            if !Format.isPresent(e) {
                let child = try newTable(level: l - 1, base: gpa & ~(Format.span(level: l) - 1))
                t[slot] = Format.encodeTable(child)
                hpa = child
            } else if Format.isLeaf(e, level: l) {
                throw .alreadyMapped(GuestPhysAddr(gpa & ~(Format.span(level: l) - 1)))
            } else {
                hpa = Format.tableAddress(e)
            }
            l -= 1
        }
        return table(hpa)
    }

    /// Frees the empty non-root tables on the path of `gpa`, bottom up.
    func pruneEmptyTables(along gpa: UInt64) {
        guard gpa >> UInt64(Format.guestAddressBits) == 0 else { return }
        // Free the deepest table on the path while it is empty (no list of
        // the path: the walk is a few cache-hot loads, an array a malloc).
        while true {
            var parent = root.raw, hpa = root.raw, slot = 0, level = rootLevel
            while level > 0 {
                let s = Format.index(gpa, level: level)
                let e = table(hpa)[s]
                guard Format.isPresent(e), !Format.isLeaf(e, level: level) else { break }
                (parent, slot, hpa) = (hpa, s, Format.tableAddress(e))
                level -= 1
            }
            guard hpa != root.raw, isEmpty(hpa) else { return }
            table(parent)[slot] = 0
            freeTable(hpa, level: level, base: gpa & ~(Format.span(level: level + 1) - 1))
        }
    }
}
