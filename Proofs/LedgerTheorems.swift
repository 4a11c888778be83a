import HVCore
import SMT

/// Ownership lemmas in arbitrary-index form: one symbolic frame `f` stands
/// for every frame, so the query never enumerates slots (Hyperkernel style).
/// The state is two ownership maps, one per address space.
enum LedgerTheorems {
    struct Ledger {
        let a: SymArray, b: SymArray
        /// Isolation for frame f: no frame is owned by both spaces.
        func isolated(_ f: SymBV) -> SymBool { a.selectBool(f).and(b.selectBool(f)).negated }
        func free(_ g: SymBV) -> SymBool { a.selectBool(g).negated.and(b.selectBool(g).negated) }
    }

    static var all: [Theorem] {
        [
            Theorem("isolation_allocate", "allocating a free frame g to space A keeps every frame f owned by at most one space",
                    wrong: "checks only that A does not own g already", logic: "QF_ABV") { c, variant in
                let l = Ledger(a: c.array("owned_a", elementBits: 0), b: c.array("owned_b", elementBits: 0))
                let f = c.bv("f"), g = c.bv("g")
                let pre = variant == .shipped ? l.free(g) : l.a.selectBool(g).negated
                let after = Ledger(a: l.a.storing(c.truth(true), at: g), b: l.b)
                return Query(inputs: [("f", f), ("g", g)], assumptions: [l.isolated(f), l.isolated(g), pre], claim: after.isolated(f))
            },
            Theorem("raii_allocate", "allocation hands g to exactly one owner and leaves every other frame's owners unchanged",
                    wrong: "allocates without checking that g is free", logic: "QF_ABV") { c, variant in
                let l = Ledger(a: c.array("owned_a", elementBits: 0), b: c.array("owned_b", elementBits: 0))
                let f = c.bv("f"), g = c.bv("g")
                let after = Ledger(a: l.a.storing(c.truth(true), at: g), b: l.b)
                let others = f.equals(g).or(after.a.selectBool(f).iff(l.a.selectBool(f)).and(after.b.selectBool(f).iff(l.b.selectBool(f))))
                return Query(inputs: [("f", f), ("g", g)],
                             assumptions: [l.isolated(f), l.isolated(g)] + (variant == .shipped ? [l.free(g)] : []),
                             claim: allOf(after.a.selectBool(g), after.b.selectBool(g).negated, others))
            },
            Theorem("raii_free", "space A may free g only if it owns g; afterwards g is owned by no one and every frame keeps at most one owner",
                    wrong: "lets A free a frame it does not own", logic: "QF_ABV") { c, variant in
                let l = Ledger(a: c.array("owned_a", elementBits: 0), b: c.array("owned_b", elementBits: 0))
                let f = c.bv("f"), g = c.bv("g")
                // The shipped free succeeds only for the owner; the wrong one for anyone.
                let allowed = variant == .shipped ? l.a.selectBool(g) : c.truth(true)
                let after = Ledger(a: l.a.storing(c.truth(false), at: g), b: l.b)
                return Query(inputs: [("f", f), ("g", g)], assumptions: [l.isolated(f), l.isolated(g), allowed],
                             claim: allOf(after.free(g), after.isolated(f), l.a.selectBool(g)))
            },
        ]
    }
}
