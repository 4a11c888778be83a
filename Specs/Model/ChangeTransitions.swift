import HVCore

extension SpecState {
    /// Drops the words of pages in `[lo, hi)` of space `s` (their frames are gone).
    mutating func forgetWords(_ s: Int, _ lo: UInt64, _ hi: UInt64) {
        words[s] = words[s]?.filter { $0.key < lo || $0.key >= hi }
    }

    /// The areas of space `s` with every area cut at `lo` and `hi`; the
    /// parts inside `[lo, hi)` are replaced by what `middle` makes of them
    /// (nil drops them). Areas keep their order.
    func reshaped(_ s: Int, _ lo: UInt64, _ hi: UInt64, middle: (SpecArea) -> SpecArea?) -> [SpecArea] {
        var areas: [SpecArea] = []
        for a in spaces[s].areas {
            guard a.start < hi && lo < a.end else { areas.append(a); continue }
            if a.start < lo { areas.append(a.slice(a.start, lo)) }
            if let m = middle(a.slice(lo, hi)) { areas.append(m) }
            if a.end > hi { areas.append(a.slice(hi, a.end)) }
        }
        return areas
    }

    /// unmap(gpa, size): may cover several areas and holes. Preconditions:
    /// 1. the range is valid and managed. Areas are cut at the edges, the
    /// frames of the range's present pages are freed, every page of the
    /// range becomes unmapped.
    public func unmap(_ s: Int, gpa: UInt64, size: UInt64) -> SpecResult {
        if let e = Preconditions.range(environment, s, gpa, size) { return .failure(e) }
        var next = self
        let lo = gpa, hi = gpa + size
        next.spaces[s].areas = reshaped(s, lo, hi) { _ in nil }
        for (page, token) in spaces[s].frames where page >= lo && page < hi {
            next.spaces[s].frames[page] = nil
            next.releaseOrQuarantine(s, token)
        }
        next.forgetWords(s, lo, hi)
        return .success(next)
    }

    /// True when unmapping `[gpa, gpa + size)` removes at least one present
    /// page: then the hardware must be told (an invalidation is due).
    public func unmapRemovesPresentPages(_ s: Int, gpa: UInt64, size: UInt64) -> Bool {
        let hi = gpa &+ size
        for a in spaces[s].areas(overlapping: gpa, hi) {
            switch a.backing {
            case .linear, .reserved: return true
            default: if spaces[s].frames.keys.contains(where: { $0 >= max(gpa, a.start) && $0 < min(hi, a.end) }) { return true }
            }
        }
        return false
    }

    /// protect(gpa, size, flags). Preconditions: 1. flags; 2. range. Holes
    /// are skipped; areas are cut at the edges and the middle gets the flags.
    public func protect(_ s: Int, gpa: UInt64, size: UInt64, flags: MappingFlags) -> SpecResult {
        if let e = Preconditions.flags(flags) ?? Preconditions.range(environment, s, gpa, size) { return .failure(e) }
        var next = self
        next.spaces[s].areas = reshaped(s, gpa, gpa + size) { middle in
            var m = middle
            m.flags = flags
            return m
        }
        return .success(next)
    }

    /// clear(): every area and frame of space `s` goes.
    public func clear(_ s: Int) -> SpecState {
        var next = self
        for token in spaces[s].frames.values { next.releaseOrQuarantine(s, token) }
        var empty = SpaceSpec()
        (empty.defersRelease, empty.quarantine) = (next.spaces[s].defersRelease, next.spaces[s].quarantine)
        empty.reservesWindows = next.spaces[s].reservesWindows
        next.spaces[s] = empty
        next.words[s] = nil
        return next
    }

    /// A token space `s` gives up: released, or quarantined while `s` defers.
    mutating func releaseOrQuarantine(_ s: Int, _ token: FrameToken) {
        if spaces[s].defersRelease { spaces[s].quarantine.append(token) } else { release(token) }
    }

    /// deferRelease: from now on space `s` quarantines what it releases.
    public func deferRelease(_ s: Int) -> SpecState {
        var next = self
        next.spaces[s].defersRelease = true
        return next
    }

    /// reserveWindows: lazy areas space `s` maps from now on may reserve windows.
    public func reserveWindows(_ s: Int) -> SpecState {
        var next = self
        next.spaces[s].reservesWindows = true
        return next
    }

    /// What the model cannot know, learnt from the implementation: whether
    /// the lazy area just mapped at `gpa` got a window. Nil when that is
    /// not allowed (the space does not reserve windows, or the area is not
    /// a lazy Alloc area): the caller reports it.
    public func learnWindow(_ s: Int, at gpa: UInt64, windowed: Bool) -> SpecState? {
        guard let i = spaces[s].areas.firstIndex(where: { $0.start == gpa }) else { return nil }
        if !windowed { return self }
        guard spaces[s].reservesWindows, spaces[s].areas[i].backing == .allocLazy else { return nil }
        var next = self
        next.spaces[s].areas[i].windowed = true
        return next
    }

    /// guestFill(gpa): the guest touched `gpa` through the host (a lazy
    /// window's memslot) and the VMM records it. In a windowed area a page
    /// not yet present gets a fresh zero frame, as at a fault; anywhere
    /// else nothing happens (there is no window to touch). Returns whether
    /// a page was filled.
    public func guestFill(_ s: Int, gpa: UInt64) -> (SpecState, Bool) {
        let page = gpa & ~0xFFF
        guard let a = spaces[s].area(containing: gpa), a.windowed, spaces[s].frames[page] == nil else { return (self, false) }
        var next = self
        next.spaces[s].frames[page] = next.newToken(owner: s)
        return (next, true)
    }

    /// completeInvalidation: the invalidation is done; the quarantine is released.
    public func completeInvalidation(_ s: Int) -> SpecState {
        var next = self
        for token in spaces[s].quarantine { next.release(token) }
        next.spaces[s].quarantine = []
        return next
    }

    /// handlePageFault(gpa, access). Checked in order: 1. inside the managed
    /// range; 2. inside an area; 3. the area allows the access; 4. the area
    /// is Alloc (other backings are always present); 5. the page is absent.
    /// Then the page gets a fresh zero frame.
    public func fault(_ s: Int, gpa: UInt64, access: MappingFlags) -> (SpecState, SpecFault) {
        let managed = environment.managed[s]
        guard managed.contains(GuestPhysAddr(gpa)) else { return (self, .outsideRange) }
        guard let a = spaces[s].area(containing: gpa) else { return (self, .noArea) }
        guard a.flags.isSuperset(of: access.intersection(.rwx)) else { return (self, .accessNotAllowed) }
        switch a.backing {
        case .allocEager, .allocLazy: break
        default: return (self, .linearBackend)
        }
        let page = gpa & ~0xFFF
        if spaces[s].frames[page] != nil { return (self, .alreadyPresent) }
        var next = self
        next.spaces[s].frames[page] = next.newToken(owner: s)
        return (next, .handled)
    }
}

/// The model's answer to a page fault, compared with the implementation's
/// `PageFaultOutcome` case by case.
public enum SpecFault: String, Equatable, Sendable {
    case handled, outsideRange, noArea, accessNotAllowed, linearBackend, alreadyPresent
}

extension PageFaultOutcome {
    /// The model's name for this outcome; nil for an allocation failure.
    public var specFault: SpecFault? {
        switch self {
        case .handled: .handled
        case let .violation(v):
            switch v {
            case .outsideRange: .outsideRange
            case .noArea: .noArea
            case .accessNotAllowed: .accessNotAllowed
            case .linearBackend: .linearBackend
            case .alreadyPresent: .alreadyPresent
            case .outOfFrames: nil
            }
        }
    }
}
