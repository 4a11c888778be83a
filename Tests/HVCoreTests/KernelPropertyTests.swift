import HVCore
import PropertyBased
import Testing
import TestSupport

/// Each kernel against a plain reference formula, on random inputs biased to
/// the edge values, and exhaustively on the edge values themselves.
@Suite("Kernels against reference formulas")
struct KernelPropertyTests {
    // Reference formulas in 128-bit arithmetic: no wrap is possible there.
    static func refAlignUp(_ x: UInt64, _ size: UInt64) -> UInt128 { (UInt128(x) + UInt128(size) - 1) / UInt128(size) * UInt128(size) }

    static func checkAlignment(_ x: UInt64, _ mask: UInt64) {
        let size = mask + 1
        #expect(Kernels.alignDown(x, mask: mask) == x - x % size)
        #expect(Kernels.isAligned(x, mask: mask) == (x % size == 0))
        let (up, fits) = Kernels.alignUp(x, mask: mask)
        let ref = refAlignUp(x, size)
        #expect(fits == (ref <= UInt128(UInt64.max)), "alignUp fits for \(hex(x)) / \(hex(size))")
        if fits { #expect(UInt128(up) == ref, "alignUp(\(hex(x)), \(hex(size)))") }
    }

    @Test func alignmentOnEdges() {
        for x in EdgeValues.addresses { for mask in EdgeValues.masks { Self.checkAlignment(x, mask) } }
    }

    @Test func alignmentProperty() async {
        await propertyCheck(count: 500, input: edgyUInt64, pageMask) { x, mask in Self.checkAlignment(x, mask) }
    }

    @Test func alignUpOverflowIsReported() {
        let (_, fits) = Kernels.alignUp(UInt64.max - 4094, mask: 0xFFF)
        #expect(!fits)
        let (value, fits2) = Kernels.alignUp(UInt64.max - 4095, mask: 0xFFF)
        #expect(fits2 && value == UInt64.max - 4095)
    }

    static func checkIndexSplit(_ x: UInt64) {
        for level in 0..<4 {
            let ref = (x >> UInt64(12 + 9 * level)) % 512
            #expect(Kernels.tableIndex(x, level: level) == ref)
        }
        #expect(Kernels.pageOffset4K(x) == x % 4096)
        let fits = x < (1 << 48)
        #expect(Kernels.fitsIn48Bits(x) == fits)
        let recombined = Kernels.recombine(
            Kernels.tableIndex(x, level: 3), Kernels.tableIndex(x, level: 2),
            Kernels.tableIndex(x, level: 1), Kernels.tableIndex(x, level: 0), offset: Kernels.pageOffset4K(x))
        // Recombination is the identity exactly on 48-bit addresses; above
        // that the split drops bits, which is why the table rejects them.
        #expect((recombined == x) == fits, "recombine \(hex(x))")
    }

    @Test func indexSplitOnEdges() { for x in EdgeValues.addresses { Self.checkIndexSplit(x) } }

    @Test func indexSplitProperty() async {
        await propertyCheck(count: 500, input: edgyUInt64) { x in Self.checkIndexSplit(x) }
    }

    @Test func recombineMasksEveryField() async {
        await propertyCheck(count: 300, input: Gen<UInt64>.uint64(), Gen<UInt64>.uint64(), Gen<UInt64>.uint64()) { a, b, c in
            let r = Kernels.recombine(a, b, c, a ^ b, offset: c)
            #expect(r < (1 << 48))
            #expect(Kernels.tableIndex(r, level: 3) == a & 0x1FF)
            #expect(Kernels.tableIndex(r, level: 2) == b & 0x1FF)
            #expect(Kernels.tableIndex(r, level: 1) == c & 0x1FF)
            #expect(Kernels.tableIndex(r, level: 0) == (a ^ b) & 0x1FF)
            #expect(Kernels.pageOffset4K(r) == c & 0xFFF)
        }
    }

    static func checkEPTLeaf(_ rawHPA: UInt64, _ flags: MappingFlags, _ level: Int) {
        let size = UInt64(1) << UInt64(12 + 9 * level)
        let hpa = rawHPA & ((1 << 52) - 1) & ~(size - 1)
        let e = Kernels.eptEncodeLeaf(hpa: hpa, flags: flags.rawValue, level: level)
        #expect(Kernels.eptLeafAddress(e, level: level) == hpa)
        #expect(Kernels.eptLeafFlags(e) == flags.rawValue)
        #expect(Kernels.eptIsPresent(e))
        #expect(Kernels.eptIsLeaf(e, level: level))
        #expect(!Kernels.eptWriteWithoutRead(e))
        #expect(Kernels.eptLeafWellFormed(e, level: level), "entry \(hex(e)) level \(level)")
        // Hardware view: R/W/X bits and memory type.
        #expect(e & 7 == flags.rawValue & 7)
        let memoryType = (e >> 3) & 7
        #expect(memoryType == (flags.isDisjoint(with: [.device, .uncached]) ? 6 : 0))
        #expect((e & (1 << 7) != 0) == (level > 0))
    }

    @Test func eptLeafRoundTripOnEdges() {
        for hpa in EdgeValues.addresses {
            for raw in UInt64(0)...0x3F where raw & 3 != 2 && raw & 7 != 0 {
                for level in 0...2 { Self.checkEPTLeaf(hpa, MappingFlags(rawValue: raw), level) }
            }
        }
    }

    @Test func eptLeafRoundTripProperty() async {
        await propertyCheck(count: 500, input: edgyUInt64, mappableFlags, Gen<Int>.int(in: 0...2)) { hpa, flags, level in
            Self.checkEPTLeaf(hpa, flags, level)
        }
    }

    @Test func eptWellFormedRejectsBadEntries() {
        let good = Kernels.eptEncodeLeaf(hpa: 0x20_0000, flags: MappingFlags.readWrite.rawValue, level: 1)
        #expect(Kernels.eptLeafWellFormed(good, level: 1))
        #expect(!Kernels.eptLeafWellFormed(good & ~1, level: 1), "write without read")
        #expect(!Kernels.eptLeafWellFormed(good | 0x1000, level: 1), "reserved bit 12 in a 2 MiB leaf")
        #expect(!Kernels.eptLeafWellFormed(good & ~(1 << 7), level: 1), "2 MiB leaf without bit 7")
        #expect(!Kernels.eptLeafWellFormed((good & ~0x38) | (2 << 3), level: 1), "memory type 2")
        #expect(!Kernels.eptLeafWellFormed((good & ~0x38) | (7 << 3), level: 1), "memory type 7")
        #expect(!Kernels.eptLeafWellFormed(good, level: 3), "leaf at the root level")
        #expect(!Kernels.eptLeafWellFormed(good | (1 << 63), level: 1), "suppress-#VE is never written")
        let table = Kernels.eptEncodeTable(tableHPA: UInt64(0x1234_5000))
        #expect(Kernels.eptTableWellFormed(table))
        #expect(!Kernels.eptTableWellFormed(table | (1 << 7)))
        #expect(!Kernels.eptTableWellFormed(table | (6 << 3)))
    }

    static func checkHuge(_ g: UInt64, _ h: UInt64, _ remaining: UInt64, _ mask: UInt64) {
        let size = mask + 1
        let ref = g % size == 0 && h % size == 0 && remaining >= size
        #expect(Kernels.hugePageEligible(gpa: g, hpa: h, remaining: remaining, mask: mask) == ref)
    }

    @Test func hugePageEligibilityOnEdges() {
        for g in EdgeValues.addresses { for r in EdgeValues.addresses { for m in EdgeValues.masks {
            Self.checkHuge(g, g &+ 0x4000_0000, r, m)
        } } }
    }

    @Test func hugePageEligibilityProperty() async {
        await propertyCheck(count: 500, input: edgyUInt64, edgyUInt64, edgyUInt64, pageMask) { g, h, r, m in
            Self.checkHuge(g, h, r, m)
        }
    }

    /// Half-open ranges as 128-bit intervals, whose end may be 2^64.
    static func checkRanges(_ a: UInt64, _ aSizeRaw: UInt64, _ b: UInt64, _ bSizeRaw: UInt64) {
        // Clamp sizes so the true end is at most 2^64, the domain the kernels serve.
        let aSize = min(aSizeRaw, a == 0 ? UInt64.max : (UInt64.max - a) + 1)
        let bSize = min(bSizeRaw, b == 0 ? UInt64.max : (UInt64.max - b) + 1)
        let aEnd = UInt128(a) + UInt128(aSize), bEnd = UInt128(b) + UInt128(bSize)
        let refOverlap = max(UInt128(a), UInt128(b)) < min(aEnd, bEnd)
        #expect(Kernels.rangesOverlap(a, aSize, b, bSize) == refOverlap,
                "overlap [\(hex(a)) +\(hex(aSize))) [\(hex(b)) +\(hex(bSize)))")
        let refContains = UInt128(b) >= UInt128(a) && bEnd <= aEnd
        #expect(Kernels.rangeContains(outerStart: a, outerSize: aSize, innerStart: b, innerSize: bSize) == refContains,
                "contains [\(hex(a)) +\(hex(aSize))) [\(hex(b)) +\(hex(bSize)))")
        #expect(Kernels.rangeContainsAddress(start: a, size: aSize, address: b) == (UInt128(b) >= UInt128(a) && UInt128(b) < aEnd))
    }

    @Test func rangesOnEdges() {
        let sizes: [UInt64] = [0, 1, 4096, 0x20_0000, 0x4000_0000, 1 << 48, UInt64.max]
        for a in EdgeValues.addresses { for b in EdgeValues.addresses { for s in sizes { for t in sizes {
            Self.checkRanges(a, s, b, t)
        } } } }
    }

    @Test func rangesProperty() async {
        await propertyCheck(count: 1000, input: edgyUInt64, edgyUInt64, edgyUInt64, edgyUInt64) { a, s, b, t in
            Self.checkRanges(a, s, b, t)
        }
    }

    @Test func rangeEndingAt2To64() {
        let top = UInt64.max - 0xFFF  // [2^64 - 4096, 2^64)
        #expect(Kernels.rangesOverlap(top, 0x1000, UInt64.max, 1))
        #expect(!Kernels.rangesOverlap(top, 0x1000, 0, 0x1000), "no wrap into address 0")
        #expect(Kernels.rangeContains(outerStart: top, outerSize: 0x1000, innerStart: UInt64.max, innerSize: 1))
    }

    @Test func eptPointerFields() async {
        await propertyCheck(count: 300, input: edgyUInt64, Gen<Bool>.bool) { root, ad in
            let p = Kernels.eptPointer(root: root, memoryType: EPTBits.memoryTypeWB, walkLength: 4, accessedDirty: ad)
            #expect(p & 7 == 6)
            #expect((p >> 3) & 7 == 3)
            #expect((p >> 6) & 1 == (ad ? 1 : 0))
            #expect(p & Kernels.eptpReservedLow == 0)
            #expect(p & ~EPTBits.addressMask & ~0x7F == 0, "nothing above bit 51 or in 11:7")
            #expect(p & EPTBits.addressMask == root & EPTBits.addressMask)
        }
    }
}
