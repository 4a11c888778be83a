/// The frames an unmap gives back, collected as runs (each frame merged
/// into the run before it when they touch) and handed to `sink` a batch at
/// a time: whenever the buffer fills, and at `flush`. A fixed buffer kept
/// for the owner's life, where an array sized for the unmap cost a 4 MiB
/// allocation per big unmap, and hundreds of host page faults to fill it
/// (perf: 100,000 runs after faults touched 400 fresh pages), and where
/// appending to an array paid a copy-on-write check per leaf. A class, so
/// the unmap's leaf closure captures a reference and still gets
/// specialised into the table walk (a captured non-copyable value stopped
/// that).
final class FrameRunList {
    /// Runs held before a batch goes to `sink` (64 KiB).
    static var batchCapacity: Int { 4096 }

    // SAFETY: owned by this object alone (handed out only for the length of a sink call), `count` runs initialised, freed in deinit.
    private let buffer: UnsafeMutablePointer<FrameRun>
    private let capacity: Int
    /// Where the runs go (the page table's release: to the allocator, or
    /// to the quarantine while releases are deferred).
    private let sink: (UnsafeBufferPointer<FrameRun>) -> Void
    // Used only under the owning space's lock: no dynamic exclusivity
    // check (three of them cost a small unmap about 230 instructions).
    @exclusivity(unchecked) private(set) var count = 0

    init(capacity: Int = FrameRunList.batchCapacity, sink: @escaping (UnsafeBufferPointer<FrameRun>) -> Void) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.sink = sink
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        precondition(count == 0, "frame runs dropped without a flush")
        buffer.deallocate()
    }

    /// Adds `frames` frames at `start`, merged into the last run when that
    /// one ends at `start`; a full buffer goes to the sink first.
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
        if count == capacity { flush() }
        // SAFETY: count < capacity after a flush.
        (buffer + count).initialize(to: FrameRun(start: HostPhysAddr(start), count: frames))
        count &+= 1
    }

    /// Hands the runs held to the sink and empties the list.
    @inline(never)
    func flush() {
        guard count > 0 else { return }
        let n = count
        count = 0
        sink(UnsafeBufferPointer(start: buffer, count: n))
    }
}
