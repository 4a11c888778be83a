/// A growing list of frame runs that merges each frame into the run before
/// it when they touch: what an unmap collects before giving frames back in
/// one batch. A plain buffer rather than an Array, so appending on the
/// unmap's per-leaf path has no copy-on-write check (about 20 instructions
/// a frame after 100,000 scattered faults; callgrind). A class, so the
/// unmap's leaf closure captures a reference and still gets specialised
/// into the table walk (a captured non-copyable value stopped that).
final class FrameRunList {
    // SAFETY: owned by this object alone (never handed out past withRuns), `count` runs initialised, freed in deinit.
    // Used only under the owning space's lock: no dynamic exclusivity
    // checks (three of them cost a small unmap about 230 instructions).
    @exclusivity(unchecked) private var buffer: UnsafeMutablePointer<FrameRun>
    @exclusivity(unchecked) private var capacity: Int
    @exclusivity(unchecked) private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 4)
        buffer = .allocate(capacity: self.capacity)
    }

    deinit { buffer.deallocate() }

    /// Adds `frames` frames at `start`, merged into the last run when that
    /// one ends at `start`.
    @inline(__always)
    func append(_ start: UInt64, frames: Int) {
        if count > 0 {
            // SAFETY: count - 1 < count, an initialised run.
            let last = buffer[count &- 1]
            if last.start.raw &+ UInt64(truncatingIfNeeded: last.count) &* frameSize == start {
                buffer[count &- 1] = FrameRun(start: last.start, count: last.count &+ frames)
                return
            }
        }
        if count == capacity { grow() }
        // SAFETY: count < capacity after grow.
        (buffer + count).initialize(to: FrameRun(start: HostPhysAddr(start), count: frames))
        count &+= 1
    }

    @inline(never)
    private func grow() {
        let bigger = UnsafeMutablePointer<FrameRun>.allocate(capacity: capacity * 2)
        // SAFETY: both hold at least count runs; FrameRun is trivial, so a move is a copy.
        bigger.moveInitialize(from: buffer, count: count)
        buffer.deallocate()
        buffer = bigger
        capacity *= 2
    }

    /// Empties the list, with room for `capacity` runs. A list grown past
    /// `keptCapacity` by a big unmap gives that memory back.
    func reset(reserving capacity: Int) {
        count = 0
        let wanted = max(capacity, 4)
        guard wanted > self.capacity || (self.capacity > Self.keptCapacity && wanted <= Self.keptCapacity) else { return }
        buffer.deallocate()
        buffer = .allocate(capacity: wanted)
        self.capacity = wanted
    }

    /// The most runs a list keeps room for between uses (64 KiB).
    static var keptCapacity: Int { 4096 }

    /// The runs, in the order appended.
    func withRuns<R>(_ body: (UnsafeBufferPointer<FrameRun>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: buffer, count: count))
    }
}
