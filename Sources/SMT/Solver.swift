import CZ3

/// The answer to "is there an input that violates this?".
public enum CheckResult: CustomStringConvertible {
    /// No input violates it (the negated property is unsatisfiable).
    case proved
    /// An input that violates it.
    case counterexample(SMTModel)
    /// Z3 gave up (time-out, resource limit); the reason in Z3's words.
    case unknown(String)

    public var description: String {
        switch self {
        case .proved: "proved"
        case .counterexample: "refuted"
        case let .unknown(reason): "unknown (\(reason))"
        }
    }
}

/// A satisfying assignment; values are read back as UInt64.
public final class SMTModel {
    let context: SMTContext
    let raw: Z3_model

    init(_ context: SMTContext, _ raw: Z3_model) {
        self.context = context
        self.raw = raw
        Z3_model_inc_ref(context.raw, raw)
    }

    deinit { Z3_model_dec_ref(context.raw, raw) }

    /// The value of `term` in this model (unconstrained bits read as 0).
    public func value(_ term: SymBV) -> UInt64 {
        var out: Z3_ast?
        guard Z3_model_eval(context.raw, raw, term.raw, true, &out), let out else { return 0 }
        let owned = Term(context, out)
        var v: UInt64 = 0
        _ = Z3_get_numeral_uint64(context.raw, owned.raw, &v)
        return v
    }

    public func value(_ term: SymBool) -> Bool {
        var out: Z3_ast?
        guard Z3_model_eval(context.raw, raw, term.raw, true, &out), let out else { return false }
        let owned = Term(context, out)
        return Z3_get_bool_value(context.raw, owned.raw) == Z3_L_TRUE
    }
}

/// A Z3 solver with a per-query time-out.
public final class SMTSolver {
    let context: SMTContext
    let raw: Z3_solver
    private var held: [SymBool] = []

    /// - Parameter logic: an SMT-LIB logic such as "QF_BV" selects Z3's
    ///   solver for it (bit-vector queries bit-blast much faster than with
    ///   the general incremental solver); nil takes the general one.
    public init(_ context: SMTContext, timeoutMilliseconds: UInt32 = 2000, logic: String? = nil) {
        self.context = context
        if let logic {
            raw = Z3_mk_solver_for_logic(context.raw, Z3_mk_string_symbol(context.raw, logic))
        } else {
            raw = Z3_mk_solver(context.raw)
        }
        Z3_solver_inc_ref(context.raw, raw)
        let params = Z3_mk_params(context.raw)!
        Z3_params_inc_ref(context.raw, params)
        Z3_params_set_uint(context.raw, params, Z3_mk_string_symbol(context.raw, "timeout"), timeoutMilliseconds)
        Z3_solver_set_params(context.raw, raw, params)
        Z3_params_dec_ref(context.raw, params)
        context.checkError("making a solver")
    }

    deinit { Z3_solver_dec_ref(context.raw, raw) }

    public func assert(_ fact: SymBool) {
        held.append(fact)
        Z3_solver_assert(context.raw, raw, fact.raw)
    }

    /// Asserts `fact` guarded by the fresh literal `name`, so an unsat core
    /// can name it.
    public func assert(_ fact: SymBool, named name: String) -> SymBool {
        let literal = context.boolean(name)
        assert(literal.implies(fact))
        return literal
    }

    /// Checks the assertions; sat means a counterexample.
    public func check(assuming assumptions: [SymBool] = []) -> CheckResult {
        var raws: [Z3_ast?] = assumptions.map(\.raw)
        let answer = Z3_solver_check_assumptions(context.raw, raw, UInt32(raws.count), &raws)
        switch answer {
        case Z3_L_FALSE: return .proved
        case Z3_L_TRUE: return .counterexample(SMTModel(context, Z3_solver_get_model(context.raw, raw)!))
        default: return .unknown(String(cString: Z3_solver_get_reason_unknown(context.raw, raw)))
        }
    }

    /// After `.proved` with assumptions: the names of those that were needed.
    public func unsatCore() -> [String] {
        let vector = Z3_solver_get_unsat_core(context.raw, raw)!
        Z3_ast_vector_inc_ref(context.raw, vector)
        defer { Z3_ast_vector_dec_ref(context.raw, vector) }
        return (0..<Z3_ast_vector_size(context.raw, vector)).map { i in
            Term(context, Z3_ast_vector_get(context.raw, vector, i)).description
        }
    }

    /// The query as SMT-LIB 2: declarations, assertions and `(check-sat)`.
    public func smtLib() -> String {
        String(cString: Z3_solver_to_string(context.raw, raw)) + "(check-sat)\n"
    }
}
