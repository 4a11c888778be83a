import HVCore
import SMT

/// Every theorem, in the order `hvkit prove` runs them.
public enum ProofSuite {
    public static var theorems: [Theorem] {
        AlignmentTheorems.all + PageIndexTheorems.all + EPTEntryTheorems.all + RangeTheorems.all + LedgerTheorems.all + BitmapTheorems.all
    }

    /// The theorems whose name contains `filter`; slow ones only when asked.
    public static func theorems(matching filter: String?, includeSlow: Bool = false) -> [Theorem] {
        theorems.filter { t in
            (includeSlow || !t.slow) && (filter.map { f in f.isEmpty || t.name.contains(f) } ?? true)
        }
    }
}
