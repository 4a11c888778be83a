import HVCore
import SMT

/// Theorems about the page-table walk every translate, query and fault runs
/// (`PageTableFormat.walk`), for every format the core has: the shipped
/// walk, run on a symbolic table memory, against the architecture's
/// translation function (`ArchitectureWalk`), for all table contents.
enum WalkTheorems {
    /// A frame-aligned offset below a frame-aligned size leaves a whole frame.
    static let frameBelowEnd = Lemma("frame_below_end", "an aligned d below an aligned size has a whole frame after it: d + 4096 <= size, without wrapping",
                                     variables: ["d", "size"]) { c, v in
        ([Kernels.isAligned(v[0], mask: c.c(0xFFF)), Kernels.isAligned(v[1], mask: c.c(0xFFF)), v[0].unsignedLess(than: v[1])],
         (v[0] &+ c.c(4096)).unsignedLessOrEqual(to: v[1]).and(v[0].unsignedLessOrEqual(to: v[0] &+ c.c(4096))))
    }
    /// An offset inside a block that fits below the end stays below it.
    static let offsetBelowBound = Lemma("offset_below_bound", "if d + bound <= size without wrapping and off < bound, then d + off < size",
                                        variables: ["d", "off", "size", "bound"]) { c, v in
        ([(v[0] &+ v[3]).unsignedLessOrEqual(to: v[2]), v[0].unsignedLessOrEqual(to: v[0] &+ v[3]), v[1].unsignedLess(than: v[3])],
         (v[0] &+ v[1]).unsignedLess(than: v[2]))
    }

    static var all: [Theorem] {
        formats(EPTFormat.self, "ept") + formats(Stage2IPA32Format.self, "stage2_ipa32") + formats(Stage2IPA36Format.self, "stage2_ipa36")
            + formats(Stage2IPA40Format.self, "stage2_ipa40") + formats(Stage2IPA42Format.self, "stage2_ipa42")
            + formats(Stage2IPA44Format.self, "stage2_ipa44") + formats(Stage2IPA48Format.self, "stage2_ipa48")
            + formats(Sv39x4Format.self, "sv39x4") + formats(Sv48x4Format.self, "sv48x4")
    }

    /// The symbolic state every walk theorem ranges over (with the path's
    /// entries, `PathTableMemory`): a root, a window, an address.
    struct State {
        let gpa: SymBV, root: SymBV, base: SymBV, size: SymBV

        init(_ c: SMTContext) {
            gpa = c.bv("gpa")
            root = c.bv("root")
            base = c.bv("window_base")
            size = c.bv("window_size")
        }

        var inputs: [(name: String, value: SymBV)] { [("gpa", gpa), ("root", root), ("window_base", base), ("window_size", size)] }

        /// The window is whole frames and does not wrap around.
        func windowIsFrames(_ c: SMTContext) -> [SymBool] {
            [Kernels.isAligned(base, mask: c.c(0xFFF)), Kernels.isAligned(size, mask: c.c(0xFFF)), base.unsignedLessOrEqual(to: base &+ size)]
        }

        /// Each level's word from the model, wherever the walk reads it.
        func concrete(_ model: SMTModel, _ m: PathTableMemory) -> ConcreteTableMemory {
            let entries = m.entries.map { model.value($0) }
            return ConcreteTableMemory(base: model.value(base), size: model.value(size)) { _, level in entries[level] }
        }
        /// The given words at their addresses, 0 elsewhere.
        func concrete(_ model: SMTModel, words: [UInt64: UInt64]) -> ConcreteTableMemory {
            ConcreteTableMemory(base: model.value(base), size: model.value(size)) { address, _ in words[address] ?? 0 }
        }
    }

    static func formats<F: PageTableFormat>(_: F.Type, _ label: String) -> [Theorem] {
        let arch = ArchitectureWalk.of(F.self)
        let concatenated = F.rootEntries > 512
        let lemmas = (0..<F.levels).map { arch.agreement(F.self, level: $0, label: label) }
        @Sendable func agreements(_ m: PathTableMemory, _ gpa: SymBV) -> [LemmaUse] {
            m.entries.enumerated().map { LemmaUse(lemmas[$0.offset], [$0.element, gpa]) }
        }
        /// One case per level the architecture's path stops at (and one for
        /// addresses too wide): together they cover every input.
        @Sendable func stops(_ c: SMTContext, _ s: State, _ m: PathTableMemory) -> [SymBool] {
            let reaches = (0..<F.levels).map { level in
                arch.pathTable(c, root: s.root, base: s.base, size: s.size, s.gpa, level: level) { l, _ in m.entries[l] }.1
            }
            return [reaches[F.levels - 1].negated] + (1..<F.levels).map { reaches[$0].and(reaches[$0 - 1].negated) } + [reaches[0]]
        }
        /// The path's entries as a concrete memory: each at the address the
        /// architecture reads it from, in the model (deepest level first, so
        /// a collision keeps the root's word, which the walk reads first).
        @Sendable func pathWords(_ model: SMTModel, _ m: PathTableMemory, _ addresses: [Int: SymBV]) -> [UInt64: UInt64] {
            var words: [UInt64: UInt64] = [:]
            for (level, address) in addresses.sorted(by: { $0.key < $1.key }) { words[model.value(address)] = model.value(m.entries[level]) }
            return words
        }
        /// Every read the walk makes at a level the architecture's path
        /// reached is at the architecture's address for that level.
        @Sendable func sameAddresses(_ reads: [PathTableMemory.Read], _ addresses: [Int: SymBV]) -> SymBool {
            reads.compactMap { r in addresses[r.level].map { r.active.implies(r.address.equals($0)) } }.reduce(.constant(true)) { $0.and($1) }
        }
        let spec = Theorem("walk_spec_\(label)",
                           "for all table contents, roots, windows and addresses, the walk's answer (mapped with host address, flags and level; unmapped; torn) is the \(F.name) translation function's, unless an entry on the path is an encoding the architecture rejects",
                           wrong: concatenated ? "upstream's root indexed with 9 bits" : "a 2 MiB block read as a table pointer") { c, variant in
            let s = State(c)
            var m = PathTableMemory(c, levels: F.levels, base: s.base, size: s.size)
            func run<V: PageTableFormat>(_: V.Type) -> WalkAnswer<SymBV> { V.walkFromRoot(&m, root: s.root, s.gpa) }
            let walk = variant == .shipped ? run(F.self) : concatenated ? run(NineBitRoot<F>.self) : run(BlockAsTable<F>.self)
            var addresses: [Int: SymBV] = [:]
            let a = arch.translate(c, root: s.root, base: s.base, size: s.size, s.gpa) { level, address in
                addresses[level] = address
                return m.entries[level]
            }
            let o = a.outcome
            let mapped = o.equals(c.c(ArchitectureWalk.mapped))
            let torn = o.equals(c.c(ArchitectureWalk.outsideWindow)).or(o.equals(c.c(ArchitectureWalk.unsupported)))
            let claim = o.equals(c.c(ArchitectureWalk.architectureFault)).or(allOf(
                walk.mapped.iff(mapped), walk.torn.iff(torn), sameAddresses(m.reads, addresses),
                mapped.implies(allOf(walk.hostAddress.equals(a.host), walk.flags.equals(F.leafFlagBits(a.leafEntry)), walk.level.equals(a.level)))))
            let entries = m.entries.enumerated().map { ("entry_l\($0.offset)", $0.element) }
            return Query(inputs: s.inputs + entries, assumptions: [s.base.unsignedLessOrEqual(to: s.base &+ s.size)], claim: claim,
                         cases: stops(c, s, m), lemmas: agreements(m, s.gpa)) { [m] model in
                let words = pathWords(model, m, addresses)
                // The answer and the addresses read: a mutant may read the
                // wrong entry and still reach the same answer.
                func replay<V: PageTableFormat>(_: V.Type) -> String {
                    var d = s.concrete(model, words: words)
                    let answer = ConcreteWalk(V.walkFromRoot(&d, root: model.value(s.root), model.value(s.gpa)))
                    return "\(answer), reading \(d.readAddresses.map(hex))"
                }
                return .computation(shipped: replay(F.self), wrong: concatenated ? replay(NineBitRoot<F>.self) : replay(BlockAsTable<F>.self))
            }
        }

        let window = Theorem("walk_window_\(label)",
                             "with the root inside a window of whole frames, every entry the walk reads lies inside the window, at an index below its table's entries",
                             wrong: "keeps entry bits 11:3 in a table address") { c, variant in
            let s = State(c)
            var m = PathTableMemory(c, levels: F.levels, base: s.base, size: s.size)
            _ = variant == .shipped ? F.walkFromRoot(&m, root: s.root, s.gpa) : UnalignedTable<F>.walkFromRoot(&m, root: s.root, s.gpa)
            // One part per read: each is its own query.
            let claims = m.reads.map { r in
                r.active.implies((r.address &- s.base).unsignedLess(than: s.size).and(r.index.unsignedLess(than: c.c(UInt64(F.entries(level: r.level))))))
            }
            let rootInside = [Kernels.isAligned(s.root, mask: c.c(F.rootBytes - 1)), s.base.unsignedLessOrEqual(to: s.root),
                              ((s.root &- s.base) &+ c.c(F.rootBytes)).unsignedLessOrEqual(to: s.size), s.root.unsignedLessOrEqual(to: s.root &+ c.c(F.rootBytes))]
            let entries = m.entries.enumerated().map { ("entry_l\($0.offset)", $0.element) }
            let top = F.levels - 1
            let bounds = m.reads.flatMap { r in
                let d = r.table &- s.base, off = r.index.shiftedLeft(by: 3)
                return r.level == top ? [LemmaUse(offsetBelowBound, [d, off, s.size, c.c(F.rootBytes)])]
                    : [LemmaUse(frameBelowEnd, [d, s.size]), LemmaUse(offsetBelowBound, [d, off, s.size, c.c(4096)])]
            }
            return Query(inputs: s.inputs + entries, assumptions: s.windowIsFrames(c) + rootInside, claims: claims, lemmas: bounds) { [path = m] model in
                func outside<V: PageTableFormat>(_: V.Type) -> Int {
                    var m = s.concrete(model, path)
                    _ = V.walkFromRoot(&m, root: model.value(s.root), model.value(s.gpa))
                    return m.readAddresses.filter { $0 &- m.base >= m.size }.count
                }
                return .computation(shipped: outside(F.self), wrong: outside(UnalignedTable<F>.self))
            }
        }

        let width = Theorem("walk_width_\(label)",
                            "an address at or above 2^\(F.guestAddressBits) is unmapped, never torn, and the walk reads no entry for it",
                            wrong: "accepts one address bit more") { c, variant in
            let s = State(c)
            var m = PathTableMemory(c, levels: F.levels, base: s.base, size: s.size)
            let walk = variant == .shipped ? F.walkFromRoot(&m, root: s.root, s.gpa) : OneBitWider<F>.walkFromRoot(&m, root: s.root, s.gpa)
            let noRead = m.reads.map(\.active.negated).reduce(c.truth(true)) { $0.and($1) }
            return Query(inputs: s.inputs + m.entries.enumerated().map { ("entry_l\($0.offset)", $0.element) },
                         assumptions: [c.c(UInt64(1) << UInt64(F.guestAddressBits)).unsignedLessOrEqual(to: s.gpa)],
                         claim: allOf(walk.mapped.negated, walk.torn.negated, noRead)) { [path = m] model in
                func reads<V: PageTableFormat>(_: V.Type) -> Int {
                    var m = s.concrete(model, path)
                    _ = V.walkFromRoot(&m, root: model.value(s.root), model.value(s.gpa))
                    return m.readAddresses.count
                }
                return .computation(shipped: reads(F.self), wrong: reads(OneBitWider<F>.self))
            }
        }

        let short = [0, 1].map { level in
            Theorem("walk_indexed_l\(level)_\(label)",
                    level == 0
                        ? "when the level-0 index slot holds the level-0 table the path for an address reaches, the two-load path returns exactly what the full walk returns"
                        : "when the level-1 index slot holds the level-1 table the path reaches, the two-load path returns what the full walk returns, or torn (and the caller walks from the root)",
                    wrong: "the indexed path sets bit 11 of the leaf address") { c, variant in
                let s = State(c)
                var m = PathTableMemory(c, levels: F.levels, base: s.base, size: s.size)
                var addresses: [Int: SymBV] = [:]
                let (slot, current) = arch.pathTable(c, root: s.root, base: s.base, size: s.size, s.gpa, level: level) { level, address in
                    addresses[level] = address
                    return m.entries[level]
                }
                let full = F.walkFromRoot(&m, root: s.root, s.gpa)
                // The indexed path's read is answered from the same path entries.
                var n = m
                func shortWalk<V: PageTableFormat>(_: V.Type) -> WalkAnswer<SymBV> {
                    V.walk(&n, from: slot, level: level, through: level, s.gpa, when: c.truth(true))
                }
                let indexed = variant == .shipped ? shortWalk(F.self) : shortWalk(LeafAddressBit11<F>.self)
                let read = n.reads.last!, fullRead = m.reads.first { $0.level == level }!
                let same = allOf(indexed.mapped.iff(full.mapped), indexed.torn.iff(full.torn),
                                 fullRead.active, read.address.equals(fullRead.address), sameAddresses(m.reads, addresses),
                                 full.mapped.implies(allOf(indexed.hostAddress.equals(full.hostAddress), indexed.flags.equals(full.flags),
                                                           indexed.level.equals(full.level))))
                let entries = m.entries.enumerated().map { ("entry_l\($0.offset)", $0.element) }
                return Query(inputs: s.inputs + entries, assumptions: [current], claim: level == 0 ? same : indexed.torn.or(same),
                             lemmas: agreements(m, s.gpa)) { [m] model in
                    var words = pathWords(model, m, addresses)
                    words[model.value(fullRead.address)] = model.value(m.entries[level])
                    func replay<V: PageTableFormat>(_: V.Type) -> ConcreteWalk {
                        var d = s.concrete(model, words: words)
                        return ConcreteWalk(V.walk(&d, from: model.value(slot), level: level, through: level, model.value(s.gpa), when: true))
                    }
                    return .computation(shipped: replay(F.self), wrong: replay(LeafAddressBit11<F>.self))
                }
            }
        }
        return [spec, window, width] + short
    }
}
