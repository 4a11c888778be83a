/// One bit per frame, set when the frame is allocated. Searches go a word
/// (64 frames) at a time.
struct FrameBitmap: ~Copyable {
    private var words: [UInt64]
    let frameCount: Int
    private(set) var usedCount = 0
    private var hint = 0  // first word that may have a free frame

    init(frameCount: Int) {
        self.frameCount = frameCount
        words = Array(repeating: 0, count: (frameCount + 63) / 64)
        // Bits past the end read as used so searches never return them.
        let tail = frameCount % 64
        if tail != 0 { words[words.count - 1] = ~((UInt64(1) << UInt64(tail)) - 1) }
    }

    var freeCount: Int { frameCount - usedCount }

    func isUsed(_ frame: Int) -> Bool { words[frame >> 6] & (1 << UInt64(frame & 63)) != 0 }

    /// Any free frame, or nil.
    mutating func takeOne() -> Int? {
        let found: Int? = words.withUnsafeMutableBufferPointer { words in
            var w = hint
            while w < words.count {
                let free = ~words[w]
                if free != 0 {
                    let bit = free.trailingZeroBitCount
                    words[w] |= 1 << UInt64(bit)
                    hint = w
                    return w &* 64 &+ bit
                }
                w &+= 1
            }
            return nil
        }
        if found != nil { usedCount += 1 }
        return found
    }

    /// Takes `count` free frames, lowest first, a word at a time, and hands
    /// each index to `body`. The caller has checked `freeCount >= count`.
    mutating func take(_ count: Int, _ body: (Int) -> Void) {
        precondition(count <= freeCount, "taking \(count) frames with \(freeCount) free")
        var remaining = count
        var w = hint
        words.withUnsafeMutableBufferPointer { words in
            while remaining > 0 {
                var free = ~words[w]
                var taken: UInt64 = 0
                while free != 0, remaining > 0 {
                    let bit = free.trailingZeroBitCount
                    let mask = UInt64(1) << UInt64(bit)
                    free &= free - 1
                    taken |= mask
                    body(w &* 64 &+ bit)
                    remaining -= 1
                }
                words[w] |= taken
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
            let bit = f & 63
            let n = min(64 - bit, end - f)
            let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << UInt64(n)) - 1) << UInt64(bit)
            if words[f >> 6] & mask != 0 { return false }
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
            let bit = f & 63
            let n = min(64 - bit, end - f)
            let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << UInt64(n)) - 1) << UInt64(bit)
            if words[f >> 6] & mask != mask { return false }
            f += n
        }
        return true
    }

    mutating func set(_ start: Int, _ count: Int, used: Bool) {
        var f = start
        let end = start + count
        while f < end {
            let bit = f & 63
            let n = min(64 - bit, end - f)
            let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << UInt64(n)) - 1) << UInt64(bit)
            if used { words[f >> 6] |= mask } else { words[f >> 6] &= ~mask }
            f += n
        }
        usedCount += used ? count : -count
        if !used { hint = min(hint, start >> 6) }
    }

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
