/// x86 guest paging's access-rights decision (the SDM's section 4.6), for
/// a translation whose path gives `pageUser` (U/S set at every level),
/// `pageWritable` (R/W set at every level) and `pageExecutable` (no XD at
/// any level, with NXE). Supervisor data accesses to user pages are those
/// SMAP forbids with EFLAGS.AC clear (the walker models explicit accesses
/// with AC clear). Proved equal to the SDM's rules, written access kind by
/// access kind, in Proofs/GuestPaging.
extension Kernels {
    @inlinable @inline(__always)
    public static func x86AccessDenied<D: BitVectorDomain>(
        _: D.Type, user: D.Condition, write: D.Condition, fetch: D.Condition,
        pageUser: D.Condition, pageWritable: D.Condition, pageExecutable: D.Condition,
        wp: D.Condition, smep: D.Condition, smap: D.Condition
    ) -> D.Condition {
        let supervisor = user.negated
        return user.and(pageUser.negated)
            .or(write.and(pageWritable.negated).and(user.or(wp)))
            .or(fetch.and(pageExecutable.negated))
            .or(supervisor.and(pageUser).and(fetch).and(smep))
            .or(supervisor.and(pageUser).and(fetch.negated).and(smap))
    }

    /// The page-fault error code's access bits: W/R for a write, U/S for a
    /// user access, and I/D for an instruction fetch when SMEP is on or
    /// when NXE is on in a mode with 64-bit entries (PAE or 4-level; 32-bit
    /// paging has no XD bit, so NXE alone does not report fetches there).
    @inlinable @inline(__always)
    public static func x86FaultAccessBits<D: BitVectorDomain>(
        user: D.Condition, write: D.Condition, fetch: D.Condition, nxe: D.Condition, smep: D.Condition, wideEntries: Bool
    ) -> D {
        let reportsFetch = fetch.and(smep.or(wideEntries ? nxe : .constant(false)))
        return D.select(write, .constant(1 << 1), .constant(0)) | D.select(user, .constant(1 << 2), .constant(0))
            | D.select(reportsFetch, .constant(1 << 4), .constant(0))
    }
}
