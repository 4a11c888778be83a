/// One bit per frame, set when the frame is allocated. Searches go a word
/// (64 frames) at a time. Every operation on a word is a proved kernel
/// (`Kernels.bitmapTakeLowest`, `bitmapRunMask`, `bitmapRunIsFree`,
/// `bitmapRunIsUsed`, `bitmapMark`; see Proofs/FrameBitmapTheorems).
struct FrameBitmap: ~Copyable {
    private var words: [UInt64]
    /// One bit per frame, set when the frame may hold data: it was freed
    /// after use, or the memory was not zero to begin with. A clear bit
    /// means the frame is still as the host gave it, zero.
    private var dirty: [UInt64]
    let frameCount: Int
    private(set) var usedCount = 0
    private var hint = 0  // first word that may have a free frame
    private var highHint: Int  // last word that may have a free frame

    init(frameCount: Int, zeroFilled: Bool = false) {
        self.frameCount = frameCount
        words = Array(repeating: 0, count: (frameCount + 63) / 64)
        dirty = Array(repeating: zeroFilled ? 0 : ~0, count: (frameCount + 63) / 64)
        highHint = words.count - 1
        // Bits past the end read as used so searches never return them.
        let tail = frameCount % 64
        if tail != 0 {
            words[words.count - 1] = ~((UInt64(1) << UInt64(tail)) - 1)
            dirty[dirty.count - 1] &= (UInt64(1) << UInt64(tail)) - 1   // no frames there, nothing to zero
        }
    }

    var freeCount: Int { frameCount - usedCount }

    func isUsed(_ frame: Int) -> Bool {
        let slot = Kernels.bitmapSlot(frame: UInt64(frame))
        return Kernels.bitmapBitIsSet(words[Int(slot.word)], bit: slot.bit)
    }

    /// The mask of frames `[f, f + n)` inside f's word (n <= 64 - f % 64).
    private static func runMask(_ f: Int, _ n: Int) -> UInt64 {
        Kernels.bitmapRunMask(bit: Kernels.bitmapSlot(frame: UInt64(f)).bit, count: UInt64(n))
    }

    /// Clears frame `f`'s dirty bit; true when it was set (the frame may
    /// hold data).
    mutating func takeDirtyBit(_ f: Int) -> Bool {
        let word = dirty[f >> 6], bit = UInt64(f & 63)
        guard Kernels.bitmapBitIsSet(word, bit: bit) else { return false }
        dirty[f >> 6] = Kernels.bitmapMark(word, mask: UInt64(1) << bit, used: false)
        return true
    }

    /// Takes `count` free frames (`count` <= `freeCount`), lowest first,
    /// writing `base + index * 4 KiB` of each into `out`, and clears their
    /// dirty bits a word at a time; `dirtyFrames` gets the addresses of
    /// those that may hold data. One pass, no call per frame: a fault
    /// reserve's refill.
    mutating func take(_ count: Int, base: UInt64, into out: UnsafeMutablePointer<UInt64>, dirtyFrames: inout [UInt64]) {
        precondition(count <= freeCount, "taking \(count) frames with \(freeCount) free")
        var remaining = count, n = 0
        var w = hint
        while remaining > 0 {
            var word = words[w], taken: UInt64 = 0
            while remaining > 0 {
                let take = Kernels.bitmapTakeLowest(word)
                if take.taken == 0 { break }
                word = take.word
                taken |= take.taken
                // SAFETY: n < count, the caller's capacity.
                out[n] = base &+ UInt64(w &* 64 &+ take.taken.trailingZeroBitCount) &* frameSize
                n &+= 1
                remaining &-= 1
            }
            if taken != 0 {
                words[w] = word
                var d = dirty[w] & taken
                if d != 0 {
                    dirty[w] = Kernels.bitmapMark(dirty[w], mask: d, used: false)
                    while d != 0 {
                        dirtyFrames.append(base &+ UInt64(w &* 64 &+ d.trailingZeroBitCount) &* frameSize)
                        d &= d &- 1
                    }
                }
            }
            if remaining > 0 { w += 1 }
        }
        usedCount += count
        hint = w
    }

    /// Any free frame, or nil.
    mutating func takeOne() -> Int? {
        let found: Int? = words.withUnsafeMutableBufferPointer { words in
            var w = hint
            while w < words.count {
                let take = Kernels.bitmapTakeLowest(words[w])
                if take.taken != 0 {
                    words[w] = take.word
                    hint = w
                    return w &* 64 &+ take.taken.trailingZeroBitCount
                }
                w &+= 1
            }
            return nil
        }
        if found != nil { usedCount += 1 }
        return found
    }

    /// The highest free frame, or nil: page tables come from the top, so
    /// they stay together, away from the runs data areas take from the
    /// bottom (and their frames, rewritten often, stay resident).
    mutating func takeHighest() -> Int? {
        var w = min(highHint, words.count - 1)
        while w >= 0 {
            let free = ~words[w]
            if free != 0 {
                let bit = 63 - free.leadingZeroBitCount
                words[w] = Kernels.bitmapMark(words[w], mask: UInt64(1) << UInt64(bit), used: true)
                highHint = w
                usedCount += 1
                return w &* 64 &+ bit
            }
            w -= 1
        }
        highHint = 0
        return nil
    }

    /// Takes `count` free frames, lowest first, a word at a time, and hands
    /// each index to `body`. The caller has checked `freeCount >= count`.
    mutating func take(_ count: Int, _ body: (Int) -> Void) {
        precondition(count <= freeCount, "taking \(count) frames with \(freeCount) free")
        var remaining = count
        var w = hint
        words.withUnsafeMutableBufferPointer { words in
            while remaining > 0 {
                var word = words[w]
                while remaining > 0 {
                    let take = Kernels.bitmapTakeLowest(word)
                    if take.taken == 0 { break }
                    word = take.word
                    body(w &* 64 &+ take.taken.trailingZeroBitCount)
                    remaining -= 1
                }
                words[w] = word
                if remaining > 0 { w += 1 }
            }
        }
        usedCount += count
        hint = w
    }

    /// True when every frame of `[start, start + count)` is free.
    func isFree(_ start: Int, _ count: Int) -> Bool {
        guard start >= 0, count > 0, start + count <= frameCount else { return false }
        var f = start
        let end = start + count
        while f < end {
            let n = min(64 - (f & 63), end - f)
            if !Kernels.bitmapRunIsFree(words[f >> 6], mask: Self.runMask(f, n)) { return false }
            f += n
        }
        return true
    }

    /// True when every frame of the run is used.
    func isAllUsed(_ start: Int, _ count: Int) -> Bool {
        guard start >= 0, count > 0, start + count <= frameCount else { return false }
        var f = start
        let end = start + count
        while f < end {
            let n = min(64 - (f & 63), end - f)
            if !Kernels.bitmapRunIsUsed(words[f >> 6], mask: Self.runMask(f, n)) { return false }
            f += n
        }
        return true
    }

    /// Frees one used frame and marks it as possibly holding data, in one
    /// step (a batch of scattered frees); false, changing nothing, when the
    /// frame is not used.
    mutating func releaseOne(_ f: Int) -> Bool {
        guard f >= 0, f < frameCount else { return false }
        let w = f >> 6, mask = UInt64(1) << UInt64(f & 63)
        guard Kernels.bitmapRunIsUsed(words[w], mask: mask) else { return false }
        words[w] = Kernels.bitmapMark(words[w], mask: mask, used: false)
        dirty[w] = Kernels.bitmapMark(dirty[w], mask: mask, used: true)
        usedCount -= 1
        if w < hint { hint = w }
        if w > highHint { highHint = w }
        return true
    }

    /// `releaseOne` for the frame of each one-frame run of `runs` (frame
    /// addresses, frame 0 at `base`), in one pass over the storage (no
    /// copy-on-write or bounds check per frame): the batch free of an unmap
    /// after faults. Longer runs are left to the caller. Returns nil when it
    /// released them all; else it stopped at the first run whose frame is
    /// not one of the bitmap's or not used, changing nothing for it and the
    /// rest, and returns that run's position (the ones before it are
    /// released).
    mutating func releaseSingleFrames(of runs: UnsafeBufferPointer<FrameRun>, base: UInt64) -> Int? {
        var released = 0, low = hint, high = highHint
        let count = UInt64(frameCount)
        var stopped: Int?
        words.withUnsafeMutableBufferPointer { words in
            dirty.withUnsafeMutableBufferPointer { dirty in
                for (position, run) in runs.enumerated() where run.count == 1 {
                    // Below base wraps to a huge offset: out of range like one past the end.
                    let offset = run.start.raw &- base
                    guard offset & (frameSize - 1) == 0, offset &>> 12 < count else { stopped = position; return }
                    let f = Int(truncatingIfNeeded: offset &>> 12)
                    let w = f &>> 6, mask = UInt64(1) &<< UInt64(f & 63)
                    guard Kernels.bitmapRunIsUsed(words[w], mask: mask) else { stopped = position; return }
                    words[w] = Kernels.bitmapMark(words[w], mask: mask, used: false)
                    dirty[w] = Kernels.bitmapMark(dirty[w], mask: mask, used: true)
                    if w < low { low = w }
                    if w > high { high = w }
                    released &+= 1
                }
            }
        }
        usedCount -= released
        hint = low
        highHint = high
        return stopped
    }

    mutating func set(_ start: Int, _ count: Int, used: Bool) {
        var f = start
        let end = start + count
        while f < end {
            let n = min(64 - (f & 63), end - f)
            words[f >> 6] = Kernels.bitmapMark(words[f >> 6], mask: Self.runMask(f, n), used: used)
            f += n
        }
        usedCount += used ? count : -count
        if !used {
            hint = min(hint, start >> 6)
            highHint = max(highHint, (end - 1) >> 6)
        }
    }

    /// Marks the run as possibly holding data (it was freed after use).
    mutating func markDirty(_ start: Int, _ count: Int) {
        var f = start
        let end = start + count
        while f < end {
            let n = min(64 - (f & 63), end - f)
            dirty[f >> 6] = Kernels.bitmapMark(dirty[f >> 6], mask: Self.runMask(f, n), used: true)
            f += n
        }
    }

    /// The frames of the run that may hold data, as runs, marked clean: the
    /// caller zeroes exactly those.
    mutating func takeDirty(_ start: Int, _ count: Int) -> [(start: Int, count: Int)] {
        var runs: [(start: Int, count: Int)] = []
        var f = start
        let end = start + count
        while f < end {
            let n = min(64 - (f & 63), end - f)
            let mask = Self.runMask(f, n)
            let word = dirty[f >> 6]
            if !Kernels.bitmapRunIsFree(word, mask: mask) {
                // Frame by frame within the word: dirty runs are usually whole.
                for i in f..<(f + n) where Kernels.bitmapBitIsSet(word, bit: UInt64(i & 63)) {
                    if let last = runs.last, last.start + last.count == i { runs[runs.count - 1].count += 1 } else { runs.append((i, 1)) }
                }
                dirty[f >> 6] = Kernels.bitmapMark(word, mask: mask, used: false)
            }
            f += n
        }
        return runs
    }

    /// Free frames that may hold data, up to `limit` of them, as runs:
    /// marked used (so no one takes them while they are scrubbed) and
    /// clean. The caller scrubs them and gives them back with `set(used: false)`.
    mutating func takeDirtyFree(limit: Int) -> [(start: Int, count: Int)] {
        var runs: [(start: Int, count: Int)] = []
        var taken = 0
        for w in dirty.indices where taken < limit {
            let candidates = dirty[w] & ~words[w]
            if candidates == 0 { continue }
            for b in 0..<64 where taken < limit && Kernels.bitmapBitIsSet(candidates, bit: UInt64(b)) {
                let f = w * 64 + b
                if let last = runs.last, last.start + last.count == f { runs[runs.count - 1].count += 1 } else { runs.append((f, 1)) }
                taken += 1
            }
        }
        for run in runs {
            set(run.start, run.count, used: true)
            var f = run.start
            while f < run.start + run.count {
                let n = min(64 - (f & 63), run.start + run.count - f)
                dirty[f >> 6] = Kernels.bitmapMark(dirty[f >> 6], mask: Self.runMask(f, n), used: false)
                f += n
            }
        }
        return runs
    }

    /// Frames whose contents are known to be zero.
    var cleanCount: Int { frameCount - dirty.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The first free run of `count` frames starting at a multiple of `alignment` frames.
    func findRun(_ count: Int, alignment: Int) -> Int? {
        var start = 0
        while start + count <= frameCount {
            if isFree(start, count) { return start }
            start += alignment
        }
        return nil
    }
}
