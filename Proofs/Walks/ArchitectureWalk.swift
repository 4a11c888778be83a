import HVCore
import SMT

/// A format's translation function as the architecture manual states it,
/// written from descriptor bits with `extract` (not through HVKit's entry
/// kernels), as one formula over the entries on a guest address's path.
/// Only the leaf's MappingFlags come from the format's decoder, whose
/// round trip with the encoder the `*_leaf_roundtrip_*` theorems prove.
///
/// Levels count from the leaves as in `PageTableFormat`.
struct ArchitectureWalk {
    enum Kind { case ept, stage2, riscv }
    let kind: Kind
    let levels: Int
    let guestBits: Int
    /// Levels the architecture allows a leaf at that HVKit never writes
    /// (the Sv48x4 512 GiB leaf): the walk must refuse them as torn.
    let unsupportedLeafLevels: Set<Int>

    /// The outcome codes of `Answer.outcome`.
    static let unmapped: UInt64 = 0, mapped: UInt64 = 1, outsideWindow: UInt64 = 2
    /// An encoding the architecture rejects (a misconfiguration or a fault
    /// that is not "not present"); HVKit never writes one (its invariant
    /// check verifies every entry), and the walk theorem says nothing there.
    static let architectureFault: UInt64 = 3
    /// A leaf the architecture allows but HVKit does not support.
    static let unsupported: UInt64 = 4

    struct Answer {
        let outcome: SymBV
        let host: SymBV
        let leafEntry: SymBV
        let level: SymBV
    }

    static func of<F: PageTableFormat>(_: F.Type) -> ArchitectureWalk {
        let name = F.name
        let kind: Kind = name.hasPrefix("x86") ? .ept : name.hasPrefix("AArch64") ? .stage2 : .riscv
        return ArchitectureWalk(kind: kind, levels: F.levels, guestBits: F.guestAddressBits,
                                unsupportedLeafLevels: kind == .riscv && F.levels == 4 ? [3] : [])
    }

    func bit(_ e: SymBV, _ n: Int) -> SymBool { e.extract(n, n).equals(e.extract(n, n).number(1)) }
    func field(_ e: SymBV, _ high: Int, _ low: Int) -> SymBV { e.extract(high, low) }
    /// Bits high...low of `e`, in place (the rest zero).
    func inPlace(_ e: SymBV, _ high: Int, _ low: Int) -> SymBV {
        let width = high - low + 1
        let v = width == 64 ? e : e.extract(high, low).zeroExtended(by: 64 - width)
        return low == 0 ? v : v.shiftedLeft(by: low)
    }
    func shift(_ level: Int) -> Int { 12 + 9 * level }

    /// The index a guest address selects at `level`: bits shift+8...shift,
    /// or up to the top address bit at the root.
    func index(_ gpa: SymBV, level: Int) -> SymBV {
        let high = level == levels - 1 ? guestBits - 1 : shift(level) + 8
        return gpa.extract(high, shift(level)).zeroExtended(by: 63 - (high - shift(level)))
    }

    func present(_ e: SymBV) -> SymBool {
        switch kind {
        case .ept: return field(e, 2, 0).equals(field(e, 2, 0).number(0)).negated   // any of R, W, X (SDM 29.3.2)
        case .stage2, .riscv: return bit(e, 0)                                       // valid bit
        }
    }

    /// A descriptor that maps memory at `level` (page or block), as opposed to one naming a table.
    func isLeaf(_ e: SymBV, level: Int) -> SymBool {
        let c = e.number(0)
        switch kind {
        case .ept: return level == 0 ? c.equals(c) : bit(e, 7)                      // PS; PTEs always map
        case .stage2: return level == 0 ? bit(e, 1) : bit(e, 1).negated             // 0b11 page at level 3; 0b01 block above
        case .riscv: return bit(e, 1).or(bit(e, 3))                                 // R or X
        }
    }

    /// Encodings the architecture rejects at `level` for a present entry.
    func fault(_ e: SymBV, level: Int) -> SymBool {
        let no = e.number(0).equals(e.number(1))
        let leaf = isLeaf(e, level: level)
        switch kind {
        case .ept:
            // PS is reserved in a PML4E; a huge leaf's address bits below its size are reserved.
            if level == 3 { return bit(e, 7) }
            if level == 0 { return no }
            return leaf.and(field(e, shift(level) - 1, 12).equals(field(e, shift(level) - 1, 12).number(0)).negated)
        case .stage2:
            // 0b01 at the page level is reserved; no blocks at the 512 GiB level; block output bits below the size are RES0.
            if level == 0 { return leaf.negated }
            if level == 3 { return leaf }
            return leaf.and(field(e, shift(level) - 1, 12).equals(field(e, shift(level) - 1, 12).number(0)).negated)
        case .riscv:
            // W without R; a pointer at the last level; a misaligned superpage; U or A clear in a G-stage leaf.
            var f = bit(e, 2).and(bit(e, 1).negated)
            if level == 0 { f = f.or(leaf.negated) }
            if level > 0 { f = f.or(leaf.and(field(e, 9 + 9 * level, 10).equals(field(e, 9 + 9 * level, 10).number(0)).negated)) }
            return f.or(leaf.and(bit(e, 4).negated.or(bit(e, 6).negated)))
        }
    }

    /// The output address of a leaf at `level` (its low bits zero).
    func output(_ e: SymBV, level: Int) -> SymBV {
        switch kind {
        case .ept: return inPlace(e, 51, shift(level))
        case .stage2: return inPlace(e, 47, shift(level))
        case .riscv:   // PPN bits 53:10, the page number from bit 12 up
            let ppn = e.extract(53, 10 + 9 * level).zeroExtended(by: 64 - (44 - 9 * level))
            return ppn.shiftedLeft(by: shift(level))
        }
    }

    /// The next table's address named by a table descriptor.
    func nextTable(_ e: SymBV) -> SymBV {
        switch kind {
        case .ept: return inPlace(e, 51, 12)
        case .stage2: return inPlace(e, 47, 12)
        case .riscv: return e.extract(53, 10).zeroExtended(by: 20).shiftedLeft(by: 12)
        }
    }

    /// The architecture's answer for `gpa`, reading `words` from `root`;
    /// tables outside `[base, base + size)` are outside HVKit's window.
    /// `entries` receives each level's entry and table address on the path.
    /// `read(level, address)` gives the entry at `address` (an array
    /// read, or a path variable).
    func translate(_ c: SMTContext, root: SymBV, base: SymBV, size: SymBV, _ gpa: SymBV,
                   read: (Int, SymBV) -> SymBV) -> Answer {
        func code(_ v: UInt64) -> SymBV { c.number(v) }
        func at(_ level: Int, _ table: SymBV) -> Answer {
            let e = read(level, table &+ index(gpa, level: level).shiftedLeft(by: 3))
            let leaf = isLeaf(e, level: level)
            let mapped = Answer(outcome: code(unsupportedLeafLevels.contains(level) ? Self.unsupported : Self.mapped),
                                host: output(e, level: level) | (gpa & c.number((UInt64(1) << UInt64(shift(level))) - 1)),
                                leafEntry: e, level: c.number(UInt64(level)))
            let below: Answer
            if level == 0 {
                below = mapped   // the fault rule covers non-leaves here
            } else {
                let next = nextTable(e)
                let inside = (next &- base).unsignedLess(than: size)
                let deeper = at(level - 1, next)
                below = choose(leaf, mapped, choose(inside, deeper, Answer(outcome: code(Self.outsideWindow), host: c.number(0), leafEntry: e, level: c.number(0))))
            }
            return choose(present(e).negated, Answer(outcome: code(Self.unmapped), host: c.number(0), leafEntry: e, level: c.number(0)),
                          choose(fault(e, level: level), Answer(outcome: code(Self.architectureFault), host: c.number(0), leafEntry: e, level: c.number(0)), below))
        }
        let fits = gpa.unsignedLess(than: c.number(UInt64(1) << UInt64(guestBits)))
        return choose(fits, at(levels - 1, root), Answer(outcome: code(Self.unmapped), host: c.number(0), leafEntry: c.number(0), level: c.number(0)))
    }

    func choose(_ condition: SymBool, _ a: Answer, _ b: Answer) -> Answer {
        Answer(outcome: .select(condition, a.outcome, b.outcome), host: .select(condition, a.host, b.host),
               leafEntry: .select(condition, a.leafEntry, b.leafEntry), level: .select(condition, a.level, b.level))
    }

    /// The table of `level` the path for `gpa` reaches, and whether it
    /// does (every entry above present, a table, no fault, inside the window).
    func pathTable(_ c: SMTContext, root: SymBV, base: SymBV, size: SymBV, _ gpa: SymBV, level target: Int,
                   read: (Int, SymBV) -> SymBV) -> (SymBV, SymBool) {
        var table = root
        var reaches = gpa.unsignedLess(than: c.number(UInt64(1) << UInt64(guestBits)))
        for level in stride(from: levels - 1, to: target, by: -1) {
            let e = read(level, table &+ index(gpa, level: level).shiftedLeft(by: 3))
            let next = nextTable(e)
            reaches = allOf(reaches, present(e), isLeaf(e, level: level).negated, fault(e, level: level).negated,
                            (next &- base).unsignedLess(than: size))
            table = next
        }
        return (table, reaches)
    }
}

extension ArchitectureWalk {
    /// The format's entry kernels agree with the architecture's bits for
    /// one entry at `level` and one address: proved once over fresh
    /// variables, then assumed for each path entry, so a walk query is left
    /// with the walk's structure.
    func agreement<F: PageTableFormat>(_: F.Type, level: Int, label: String) -> Lemma {
        Lemma("entry_agrees_\(label)_l\(level)",
              "at level \(level), the format's presence, leaf, address, table-address and index kernels agree with the architecture's bits for every entry that is not a rejected encoding",
              variables: ["entry", "gpa"]) { c, v in
            let e = v[0], gpa = v[1]
            let ok = present(e).and(fault(e, level: level).negated)
            let mask = c.number((UInt64(1) << UInt64(shift(level))) - 1)
            var facts = [F.isPresent(e).iff(present(e)), F.tableAddress(e).equals(nextTable(e)),
                         F.entryIndex(gpa, level: level).equals(index(gpa, level: level)),
                         ok.implies(F.isLeaf(e, level: level).iff(isLeaf(e, level: level)))]
            if F.leafAllowed(level: level) {
                facts.append(ok.and(isLeaf(e, level: level)).implies((F.leafAddress(e, level: level) | (gpa & mask)).equals(output(e, level: level) | (gpa & mask))))
            }
            return ([], facts.dropFirst().reduce(facts[0]) { $0.and($1) })
        }
    }
}
