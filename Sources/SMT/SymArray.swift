import CZ3

/// A symbolic array from 64-bit indices to booleans or bit-vectors: the
/// shape of "for an arbitrary frame f" statements, which quantify over one
/// symbolic index instead of enumerating slots.
public struct SymArray {
    let term: Term
    /// Bits of each element; 0 for booleans.
    public let elementBits: Int

    var context: SMTContext { term.context }

    public func select(_ index: SymBV) -> SymBV {
        precondition(elementBits > 0, "boolean array read as a bit-vector")
        return SymBV(Term(context, Z3_mk_select(context.raw, term.raw, index.raw)), bits: elementBits)
    }

    public func selectBool(_ index: SymBV) -> SymBool {
        precondition(elementBits == 0, "bit-vector array read as a boolean")
        return SymBool(Term(context, Z3_mk_select(context.raw, term.raw, index.raw)))
    }

    public func storing(_ value: SymBV, at index: SymBV) -> SymArray {
        SymArray(term: Term(context, Z3_mk_store(context.raw, term.raw, index.raw, value.raw)), elementBits: elementBits)
    }

    public func storing(_ value: SymBool, at index: SymBV) -> SymArray {
        SymArray(term: Term(context, Z3_mk_store(context.raw, term.raw, index.raw, value.raw)), elementBits: elementBits)
    }
}

extension SMTContext {
    /// A fresh array variable indexed by 64-bit values; `elementBits` 0
    /// makes a boolean array.
    public func array(_ name: String, elementBits: Int) -> SymArray {
        let range = elementBits == 0 ? boolSort : bvSort(elementBits)
        let sort = Z3_mk_array_sort(raw, bvSort(64), range)!
        let sortTerm = Term(self, Z3_sort_to_ast(raw, sort))
        _ = sortTerm
        return SymArray(term: Term(self, Z3_mk_const(raw, Z3_mk_string_symbol(raw, name), sort)), elementBits: elementBits)
    }
}
