import HVCore
import SMT
import Testing

@Suite("SMT wrapper over the Z3 C API")
struct SMTWrapperTests {
    @Test func provedAndCounterexampleWithModelValues() {
        let c = SMTContext()
        c.with {
            let x = c.bitVector("x")
            let s1 = SMTSolver(c)
            s1.assert((x &+ c.number(1)).equals(c.number(0)))
            guard case let .counterexample(model) = s1.check() else { Issue.record("x + 1 == 0 is satisfiable"); return }
            #expect(model.value(x) == UInt64.max)

            let s2 = SMTSolver(c, logic: "QF_BV")
            s2.assert(x.unsignedLess(than: c.number(5)).and(c.number(10).unsignedLess(than: x)))
            if case .proved = s2.check() {} else { Issue.record("x < 5 and x > 10 is unsatisfiable") }
        }
    }

    @Test func kernelsRunSymbolically() {
        let c = SMTContext()
        c.with {
            // The shipped alignDown on a symbolic input, evaluated back in a model.
            let x = c.bitVector("x")
            let s = SMTSolver(c)
            s.assert(x.equals(c.number(0x1234_5678)))
            let down = Kernels.alignDown(x, mask: SymBV.constant(0xFFF))
            guard case let .counterexample(model) = s.check() else { Issue.record("satisfiable"); return }
            #expect(model.value(down) == 0x1234_5000)
            #expect(model.value(Kernels.isAligned(down, mask: SymBV.constant(0xFFF))))
        }
    }

    @Test func unsatCoreNamesTheConflictingAssumptions() {
        let c = SMTContext()
        c.with {
            let x = c.bitVector("x"), y = c.bitVector("y")
            let s = SMTSolver(c)
            let small = s.assert(x.unsignedLess(than: c.number(5)), named: "x_small")
            let large = s.assert(c.number(10).unsignedLess(than: x), named: "x_large")
            let other = s.assert(y.equals(c.number(3)), named: "y_three")
            guard case .proved = s.check(assuming: [small, large, other]) else { Issue.record("unsat expected"); return }
            let core = Set(s.unsatCore())
            #expect(core.isSuperset(of: ["x_small", "x_large"]))
            #expect(!core.contains("y_three"))
        }
    }

    @Test func narrowVectorsAndExport() {
        let c = SMTContext()
        c.with {
            let b = c.bitVector("b", bits: 8)
            let s = SMTSolver(c)
            s.assert((b &+ b.number(1)).equals(b.number(0)))
            guard case let .counterexample(model) = s.check() else { Issue.record("sat"); return }
            #expect(model.value(b) == 0xFF)
            let text = s.smtLib()
            #expect(text.contains("(declare-fun b () (_ BitVec 8))"))
            #expect(text.hasSuffix("(check-sat)\n"))
        }
    }

    @Test func manyTermsComeAndGo() {
        // Every handle takes and drops its own reference; a miscount aborts Z3.
        let c = SMTContext()
        c.with {
            var acc = c.bitVector("seed")
            for i in 0..<5000 { acc = (acc &+ c.number(UInt64(i))) ^ acc.shiftedRight(by: 1) }
            let s = SMTSolver(c)
            s.assert(acc.equals(c.number(42)))
            #expect(s.smtLib().contains("seed"))
        }
    }
}
