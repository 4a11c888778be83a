import HVCore

/// The checker's random source: SplitMix64 with the few helpers the
/// generator needs.
public struct CheckerRandom: Sendable {
    var base: SplitMix64
    public init(seed: UInt64) { base = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { base.next() }
    public mutating func below(_ n: Int) -> Int { Int(base.below(UInt64(n))) }
    public mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
}

/// Generates operation sequences that go where mapping bugs live: page,
/// 2 MiB and 1 GiB boundaries, the end of the managed range, adjacent and
/// overlapping requests, addresses inside what was just mapped, invalid
/// flags and sizes, and injected allocation failures.
public struct OpGenerator {
    static let kib4: UInt64 = 0x1000, mib2: UInt64 = 0x20_0000, gib: UInt64 = 0x4000_0000
    static let anchors: [UInt64] = [
        0, kib4, mib2 - kib4, mib2, 2 * mib2, gib - mib2, gib, gib + kib4, 2 * gib - kib4, 3 * gib,
        CheckerSetup.managedSize - mib2, CheckerSetup.managedSize - kib4, CheckerSetup.managedSize,
    ]
    static let sizes: [UInt64] = [kib4 - 1, kib4, 2 * kib4, 3 * kib4, mib2 - kib4, mib2, mib2 + kib4, 2 * mib2, gib]
    static let smallSizes: [UInt64] = [kib4, 2 * kib4, 3 * kib4, mib2 - kib4, mib2, mib2 + kib4]
    static let flagChoices: [MappingFlags] = [
        .readWrite, .readWrite, .readWrite, [.read], [.read], .rwx, .rwx, [.read, .execute],
        [.read, .write, .device], [.read, .write, .user], [.write], [], [.execute], MappingFlags(rawValue: 0x41),
    ]

    public let spaces: Int
    var rng: CheckerRandom
    var recent: [(space: Int, gpa: UInt64, size: UInt64)] = []
    var written: [(space: Int, gpa: UInt64)] = []

    let seed: UInt64

    public init(spaces: Int, seed: UInt64) {
        self.spaces = spaces
        self.seed = seed
        rng = CheckerRandom(seed: seed)
    }

    mutating func anchor() -> UInt64 {
        let base = rng.pick(Self.anchors)
        let offset: UInt64 = rng.pick([0, 0, 0, Self.kib4, 2 * Self.kib4, Self.mib2])
        let unaligned: UInt64 = rng.chance(3) ? 0x10 : 0
        return base &+ offset &+ unaligned
    }

    /// An address near something mapped before (its start, its last page,
    /// just past it, or inside it), or a fresh anchor.
    mutating func target(_ space: Int) -> UInt64 {
        let mine = recent.filter { $0.space == space }
        guard !mine.isEmpty, rng.chance(75) else { return anchor() }
        let r = rng.pick(mine)
        let lastPage = r.size >= Self.kib4 ? (r.size - 1) & ~(Self.kib4 - 1) : 0
        let choices: [UInt64] = [0, Self.kib4, lastPage, r.size, lastPage / 2 & ~(Self.kib4 - 1)]
        return r.gpa &+ rng.pick(choices)
    }

    mutating func flags() -> MappingFlags { rng.pick(Self.flagChoices) }

    public mutating func next() -> SpecOp {
        let s = rng.below(spaces)
        let roll = rng.below(100)
        switch roll {
        case 0..<20:
            let gpa = rng.chance(50) ? target(s) : anchor()
            let size = rng.pick(Self.smallSizes + [Self.kib4 - 1])
            let eager = rng.chance(60)
            let op = SpecOp.mapAlloc(space: s, gpa: gpa, size: eager ? size : rng.pick(Self.sizes), flags: flags(), eager: eager)
            if case let .mapAlloc(_, g, sz, _, _) = op { recent.append((s, g, sz)) }
            return op
        case 20..<30:
            let gpa = rng.chance(50) ? target(s) : anchor()
            let size = rng.pick(Self.sizes)
            // Host offsets keep 2 MiB alignment for big regions, so they map
            // with huge leaves and a case stays small.
            let hostOffset: UInt64 = size >= Self.gib ? rng.pick([0, Self.mib2, Self.gib]) : rng.pick([0, 0, Self.kib4, Self.mib2, Self.gib])
            recent.append((s, gpa, size))
            return .mapLinear(space: s, gpa: gpa, hpa: CheckerSetup.linearHostBase + (gpa & (4 * Self.gib - 1)) + hostOffset,
                              size: size, flags: flags())
        case 30..<37:
            let gpa = CheckerSetup.identityBase + rng.pick([0, 1, 2, 512, 513, 1024, 2047]) * Self.kib4
            let size = rng.pick(Self.smallSizes)
            recent.append((s, gpa, size))
            return .mapIdentical(space: s, gpa: gpa, size: size, flags: flags())
        case 37..<42:
            let gpa = rng.pick([0xFEC0_0000, 0xFEE0_0000, 0xE000_0000, Self.gib - Self.mib2, 3 * Self.gib])
            let size = rng.pick(Self.sizes)
            recent.append((s, gpa, size))
            return .mapReserved(space: s, gpa: gpa, size: size, flags: flags())
        case 42..<56:
            return .unmap(space: s, gpa: target(s), size: rng.pick(Self.sizes))
        case 56..<63:
            return .protect(space: s, gpa: target(s), size: rng.pick(Self.sizes), flags: flags())
        case 63..<73:
            return .fault(space: s, gpa: target(s) &+ UInt64(rng.below(512)) * 8, access: rng.pick([.read, .write, .execute, .readWrite]))
        case 73..<81:
            let gpa = target(s) &+ rng.pick([0, 8, 0xFF8])
            written.append((s, gpa))
            return .write(space: s, gpa: gpa, value: rng.next() | 1)
        case 81..<88:
            // Reading back where something was written finds stale and lost data.
            if let w = written.last(where: { $0.space == s }), rng.chance(60) {
                // Where it was written, or at the same offset in the newest
                // Alloc region (which may have been given that frame again).
                if rng.chance(50), let fresh = recent.last(where: { $0.space == s }) {
                    return .read(space: s, gpa: fresh.gpa &+ (w.gpa & 0xFFF))
                }
                return .read(space: s, gpa: w.gpa)
            }
            return .read(space: s, gpa: target(s) &+ rng.pick([0, 8, 0xFF8]))
        case 88..<93:
            return .buffers(space: s, gpa: target(s) &+ rng.pick([0, 0x800]),
                            length: rng.pick([1, 8, 0x800, 0x1000, 0x1001, 0x2000, Self.mib2]), access: rng.pick([.read, .write]))
        case 93..<95:
            return .clear(space: s)
        default:
            return .failAllocation(k: 1 + rng.below(6))
        }
    }

    public mutating func sequence(length: Int) -> [SpecOp] {
        var ops = (0..<length).map { _ in next() }
        // Extra operations come from streams of their own, so the other
        // operations of a seed stay what they were.
        windows(&ops, length)
        // Half the cases defer frame release in some spaces, early on, and
        // complete their invalidations now and then.
        var extra = CheckerRandom(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B)
        guard extra.chance(50) else { return ops }
        for s in 0..<spaces where extra.chance(70) {
            ops.insert(.deferRelease(space: s), at: extra.below(max(1, ops.count / 3)))
        }
        for _ in 0..<(1 + length / 6) {
            ops.insert(.completeInvalidation(space: extra.below(spaces)), at: extra.below(ops.count + 1))
        }
        return ops
    }

    /// Half the cases reserve lazy windows in some spaces from the
    /// start, and add guest fills after lazy maps: in the pages just
    /// mapped (first, last, middle) or just past them.
    private func windows(_ ops: inout [SpecOp], _ length: Int) {
        var extra = CheckerRandom(seed: seed ^ 0x3C6E_F372_FE94_F82B)
        guard extra.chance(50) else { return }
        let reserving = (0..<spaces).filter { _ in extra.chance(85) }
        var i = 0
        while i < ops.count {
            if case let .mapAlloc(s, g, size, _, false) = ops[i], reserving.contains(s) {
                for _ in 0..<(1 + extra.below(3)) {
                    let pages = max(size / Self.kib4, 1)
                    let page = extra.pick([0, pages - 1, pages / 2, pages, UInt64(extra.below(Int(min(pages, 1 << 20))))])
                    ops.insert(.guestFill(space: s, gpa: g &+ page * Self.kib4 &+ UInt64(extra.below(512)) * 8), at: min(ops.count, i + 1 + extra.below(4)))
                }
            }
            i += 1
        }
        for s in reserving.reversed() { ops.insert(.reserveWindows(space: s), at: 0) }
    }
}
