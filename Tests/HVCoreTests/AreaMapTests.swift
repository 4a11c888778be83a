@testable import HVCore
import PropertyBased
import Testing
import TestSupport

/// The chunked ordered map against a plain sorted array, through enough
/// inserts and removes to split and drop many chunks.
@Suite("AreaMap against a sorted array")
struct AreaMapTests {
    static func area(_ page: UInt64, _ pages: UInt64) -> Area {
        Area(start: page * kib4, size: pages * kib4, flags: .read, backend: .alloc(populate: .lazy))
    }

    static func check(_ map: AreaMap, _ model: [Area], _ probes: [UInt64]) -> String? {
        if map.all != model { return "order differs: \(map.all.count) vs \(model.count) areas" }
        if !map.invariantViolations().isEmpty { return "\(map.invariantViolations())" }
        for p in probes {
            let g = p * kib4 + 7
            let expected = model.first { $0.contains(g) }
            if map.area(containing: g) != expected { return "area(containing: \(hex(g)))" }
            let lo = p * kib4, hi = lo + 5 * kib4
            let overlapping = model.filter { $0.start < hi && lo < $0.end }
            if map.areas(overlapping: lo, hi) != overlapping { return "areas(overlapping: \(hex(lo)), \(hex(hi)))" }
            if map.overlapsAny(lo, hi) != !overlapping.isEmpty { return "overlapsAny(\(hex(lo)), \(hex(hi)))" }
            if map.firstArea(overlapping: lo, hi) != overlapping.first { return "firstArea(overlapping: \(hex(lo)), \(hex(hi)))" }
        }
        return nil
    }

    @Test func randomInsertRemoveAgreesWithSortedArray() async {
        let ops = zip(Gen<Bool>.bool(0.65), Gen<UInt64>.uint64(in: 0...4000), Gen<UInt64>.uint64(in: 1...3)).array(of: 1...600)
        await propertyCheck(count: 40, input: ops) { ops in
            var map = AreaMap()
            var model: [Area] = []
            var probes: [UInt64] = []
            for (insert, page, pages) in ops {
                probes.append(page)
                if insert {
                    let a = Self.area(page, pages)
                    // The one search a map does: the first area in the way, or the slot.
                    let inTheWay = model.first { $0.start < a.end && a.start < $0.end }
                    switch map.placement(a.start, a.end) {
                    case let .taken(found): #expect(found == inTheWay)
                    case let .free(slot):
                        #expect(inTheWay == nil)
                        map.insert(a, at: slot)
                        model.append(a)
                        model.sort { $0.start < $1.start }
                    }
                } else if let victim = model.first(where: { $0.start >= page * kib4 }) {
                    #expect(map.remove(startingAt: victim.start) == victim)
                    model.removeAll { $0 == victim }
                }
            }
            #expect(map.count == model.count)
            #expect(Self.check(map, model, probes.suffix(50) + [0, 4001, 1 << 30]) == nil)
        }
    }

    /// The branch-free search against a linear count, on every length up
    /// to a few chunks' worth and keys below, between, on and above.
    @Test func searchesCountKeysAtOrBelow() {
        var rng = SplitMix64(seed: 11)
        for n in 0...200 {
            let starts = (0..<n).map { UInt64($0) * 8 + 8 }
            var map = AreaMap()
            for s in starts.shuffled(using: &rng) { map.insert(Area(start: s * kib4, size: kib4, flags: .read, backend: .reserved)) }
            #expect(map.all.map { $0.start / kib4 } == starts, "n \(n): inserted out of order")
            for key in stride(from: UInt64(0), through: UInt64(n) * 8 + 16, by: 3) {
                let hit = starts.contains(key) ? Area(start: key * kib4, size: kib4, flags: .read, backend: .reserved) : nil
                #expect(map.area(containing: key * kib4) == hit, "n \(n) key \(key)")
            }
            #expect(map.invariantViolations().isEmpty)
        }
    }

    /// A slot found before a change cannot be used after it.
    @Test func aSlotFromBeforeAChangeTraps() async {
        await #expect(processExitsWith: .failure) {
            var map = AreaMap()
            guard case let .free(slot) = map.placement(0, kib4) else { return }
            map.insert(Area(start: 8 * kib4, size: kib4, flags: .read, backend: .reserved))
            map.insert(Area(start: 0, size: kib4, flags: .read, backend: .reserved), at: slot)
        }
    }

    @Test func manyAreasSplitChunks() {
        var map = AreaMap()
        var model: [Area] = []
        var rng = SplitMix64(seed: 7)
        for page in (0..<3000).map({ UInt64($0) * 2 }).shuffled(using: &rng) {
            map.insert(Self.area(page, 1))
            model.append(Self.area(page, 1))
        }
        model.sort { $0.start < $1.start }
        #expect(Self.check(map, model, [0, 1, 2, 2999, 5998, 5999, 7000]) == nil)
        for a in model.shuffled(using: &rng).prefix(2900) {
            #expect(map.remove(startingAt: a.start) == a)
            model.removeAll { $0 == a }
        }
        #expect(map.remove(startingAt: 12345 * kib4) == nil)
        #expect(Self.check(map, model, model.map { $0.start / kib4 }) == nil)
    }
}
