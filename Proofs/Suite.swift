import HVCore
import SMT

/// Every theorem, in the order `hvkit prove` runs them.
public enum ProofSuite {
    public static var theorems: [Theorem] {
        AlignmentTheorems.all + PageIndexTheorems.all + EPTEntryTheorems.all + GStageTheorems.all + RangeTheorems.all + FrameBitmapTheorems.all + BitmapTheorems.all + WalkTheorems.all + GuestWalkTheorems.all
    }

    /// The theorems whose name contains `filter`.
    public static func theorems(matching filter: String?) -> [Theorem] {
        theorems.filter { t in filter.map { f in f.isEmpty || t.name.contains(f) } ?? true }
    }
}
