/// A run of frames released by a change but not yet reusable.
public struct FrameRun: Equatable, Sendable {
    public let start: HostPhysAddr
    public let count: Int

    public init(start: HostPhysAddr, count: Int) {
        self.start = start
        self.count = count
    }
}

/// The invalidations a space's changes recorded, with the frames those
/// changes released (data frames and page-table frames): the frames stay
/// out of every allocator until `complete()` says the invalidation has
/// been carried out (memslots synced; on hardware INVEPT, TLBI or HFENCE
/// issued), so no one can be handed a frame a guest can still reach.
///
/// Owned and not copyable: exactly one holder can complete it. Dropped
/// without `complete()`, it gives its frames and invalidations back to the
/// space's quarantine, where the next token picks them up: nothing is
/// released early and nothing is lost.
public struct InvalidationToken: ~Copyable {
    public let invalidations: [Invalidation]
    public let frames: [FrameRun]
    let allocator: any FrameAllocator
    let giveBack: ([FrameRun], [Invalidation]) -> Void
    private var completed = false

    init(invalidations: [Invalidation], frames: [FrameRun], allocator: any FrameAllocator,
         giveBack: @escaping ([FrameRun], [Invalidation]) -> Void) {
        self.invalidations = invalidations
        self.frames = frames
        self.allocator = allocator
        self.giveBack = giveBack
    }

    /// Frames this token holds.
    public var frameCount: Int { frames.reduce(0) { $0 + $1.count } }

    /// The invalidation has been carried out: the frames go back to the allocator.
    public consuming func complete() {
        for run in frames { allocator.free(run.start, count: run.count) }
        completed = true
    }

    deinit {
        if !completed, !(frames.isEmpty && invalidations.isEmpty) { giveBack(frames, invalidations) }
    }
}
