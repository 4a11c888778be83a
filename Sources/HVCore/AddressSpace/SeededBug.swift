/// Known mapping bugs (most of them the upstream crates' own) that can be
/// switched on in a debug build, one per address space, to check that the
/// model-based checker catches them. In a release build they cannot be
/// switched on: the setter does not exist and every check is `false`.
public enum SeededBug: String, CaseIterable, Sendable {
    case populateNotZeroed
    case lazyFaultReplacesFrame
    case buffersCheckAreaSizeNotEnd
    case noRollbackOnPartialFailure
    case emptyTablesNeverFreed
    case noInvalidationAfterUnmap
    case writeWithoutReadAccepted
    case partialUnmapDropsHugePage
    case offByOneAtAreaEnd
    case adjacentAreasOverlap
    case overlapMissesContainment
    case unmapFreesLinearHostPages
    case releaseBeforeInvalidation
    case windowLeakedOnUnmap

    /// True in builds where seeded bugs can be switched on.
    public static var available: Bool {
        #if DEBUG
        true
        #else
        false
        #endif
    }

    public var summary: String {
        switch self {
        case .populateNotZeroed: "frames handed out by eager populate are not zeroed"
        case .lazyFaultReplacesFrame: "a repeated lazy fault replaces (and leaks) the page's frame"
        case .buffersCheckAreaSizeNotEnd: "translatedBuffers checks the length against the area's size, not its end"
        case .noRollbackOnPartialFailure: "an eager populate that fails midway keeps what it mapped"
        case .emptyTablesNeverFreed: "page tables that become empty are never freed"
        case .noInvalidationAfterUnmap: "unmap records no invalidation"
        case .writeWithoutReadAccepted: "write-without-read flags are accepted"
        case .partialUnmapDropsHugePage: "unmapping part of a huge leaf drops the whole leaf"
        case .offByOneAtAreaEnd: "a fault one page past an area's end is taken as inside it"
        case .adjacentAreasOverlap: "the overlap check treats adjacent areas as overlapping"
        case .overlapMissesContainment: "the overlap check misses an existing area inside the request"
        case .unmapFreesLinearHostPages: "unmap frees the host pages of linear areas"
        case .releaseBeforeInvalidation: "a deferring space releases unmapped frames at once, before the invalidation (the upstream behaviour)"
        case .windowLeakedOnUnmap: "unmapping a lazy window's pages never returns the window's frames"
        }
    }
}

/// Where a component keeps the seeded bug it was built with (nil always in
/// release builds).
@usableFromInline
struct SeededBugSwitch: Sendable {
    @usableFromInline let bug: SeededBug?

    @usableFromInline init(_ bug: SeededBug?) { self.bug = bug }

    @inlinable @inline(__always)
    func on(_ b: SeededBug) -> Bool {
        #if DEBUG
        return bug == b
        #else
        return false
        #endif
    }
}
