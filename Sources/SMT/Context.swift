import CZ3

/// One Z3 context, made with `Z3_mk_context_rc`: every term, solver and
/// model handle is reference-counted by a Swift owner that takes its
/// reference the moment Z3 returns it and drops it in `deinit`.
///
/// Not thread-safe (Z3 contexts are not); use one per thread or task.
public final class SMTContext: @unchecked Sendable {
    let raw: Z3_context
    /// Sorts by width (0 = bool), each kept alive by its term.
    private var sorts: [Int: (sort: Z3_sort, term: Term)] = [:]

    /// The context symbolic kernel constants are made in (see `SymBV.constant`).
    @TaskLocal public static var current: SMTContext?

    public init() {
        let config = Z3_mk_config()
        Z3_set_param_value(config, "model", "true")
        raw = Z3_mk_context_rc(config)
        Z3_del_config(config)
        // No handler: Z3 records errors instead of aborting; `checkError` reads them.
        Z3_set_error_handler(raw, nil)
    }

    deinit {
        sorts.removeAll()
        Z3_del_context(raw)
    }

    /// Asks the C allocator to keep freed memory for reuse (glibc): for a
    /// process that makes and frees many contexts, as `hvkit prove` does.
    public static func keepFreedMemory() { hvkit_keep_freed_memory() }

    /// Runs `body` with this context as the one symbolic constants use.
    public func with<R>(_ body: () throws -> R) rethrows -> R {
        try SMTContext.$current.withValue(self, operation: body)
    }

    /// Traps with Z3's message if the last call failed: a malformed term is
    /// a bug in this wrapper, not a condition to recover from.
    func checkError(_ what: @autoclosure () -> String) {
        let code = Z3_get_error_code(raw)
        if code != Z3_OK {
            preconditionFailure("Z3 error in \(what()): \(String(cString: Z3_get_error_msg(raw, code)))")
        }
    }

    func bvSort(_ bits: Int) -> Z3_sort {
        if let s = sorts[bits] { return s.sort }
        let sort = Z3_mk_bv_sort(raw, UInt32(bits))!
        sorts[bits] = (sort, Term(self, Z3_sort_to_ast(raw, sort)))
        return sort
    }

    var boolSort: Z3_sort {
        if let s = sorts[0] { return s.sort }
        let sort = Z3_mk_bool_sort(raw)!
        sorts[0] = (sort, Term(self, Z3_sort_to_ast(raw, sort)))
        return sort
    }

    /// A fresh bit-vector variable.
    public func bitVector(_ name: String, bits: Int = 64) -> SymBV {
        let symbol = Z3_mk_string_symbol(raw, name)
        return SymBV(Term(self, Z3_mk_const(raw, symbol, bvSort(bits))), bits: bits)
    }

    /// A bit-vector numeral.
    public func number(_ value: UInt64, bits: Int = 64) -> SymBV {
        SymBV(Term(self, Z3_mk_unsigned_int64(raw, value, bvSort(bits))), bits: bits)
    }

    /// A fresh boolean variable (used for named assumptions).
    public func boolean(_ name: String) -> SymBool {
        SymBool(Term(self, Z3_mk_const(raw, Z3_mk_string_symbol(raw, name), boolSort)))
    }

    public func truth(_ value: Bool) -> SymBool {
        SymBool(Term(self, value ? Z3_mk_true(raw) : Z3_mk_false(raw)))
    }
}

/// An owned reference to one Z3 AST.
final class Term {
    let context: SMTContext
    let raw: Z3_ast

    /// Takes a reference at once, as `Z3_mk_context_rc` requires.
    init(_ context: SMTContext, _ raw: Z3_ast?) {
        context.checkError("making a term")
        guard let raw else { preconditionFailure("Z3 returned no term") }
        self.context = context
        self.raw = raw
        Z3_inc_ref(context.raw, raw)
    }

    deinit { Z3_dec_ref(context.raw, raw) }

    var description: String { String(cString: Z3_ast_to_string(context.raw, raw)) }
}
