import HVCore
import SMT

/// x86 linear-address translation as the SDM states it (Vol. 3A 4.3-4.7):
/// for each paging mode, the list of paging structures a walk passes
/// through, each described by its table's rows (which linear-address bits
/// index it, how wide its entries are, when an entry maps a page, which
/// bits are reserved, where the page's or next table's address is), then
/// the access rights of 4.6, access kind by access kind, and the error
/// code of 4.7. Written from bit positions with `extract`, not through the
/// walker's code; the theorems in `GuestWalkTheorems` prove the walker
/// equal to it.
struct X86PagingSpec {
    /// 2 (32-bit), 3 (PAE) or 4 (4-level).
    let mode: Int
    /// MAXPHYADDR.
    let m: Int

    /// One row of the SDM's paging-structure tables.
    struct Structure {
        let name: String
        /// Linear-address bits high...low index the structure.
        let index: (high: Int, low: Int)
        let entryBytes: Int
        /// Whether R/W, U/S and XD of its entries count towards the access rights.
        let carriesRights: Bool
        /// log2 of the page an entry maps here (nil: it never maps one).
        let pageShift: Int?
    }

    var structures: [Structure] {
        switch mode {
        case 2: return [Structure(name: "PDE", index: (31, 22), entryBytes: 4, carriesRights: true, pageShift: 22),
                        Structure(name: "PTE", index: (21, 12), entryBytes: 4, carriesRights: true, pageShift: 12)]
        case 3: return [Structure(name: "PDPTE", index: (31, 30), entryBytes: 8, carriesRights: false, pageShift: nil),
                        Structure(name: "PDE", index: (29, 21), entryBytes: 8, carriesRights: true, pageShift: 21),
                        Structure(name: "PTE", index: (20, 12), entryBytes: 8, carriesRights: true, pageShift: 12)]
        default: return [Structure(name: "PML4E", index: (47, 39), entryBytes: 8, carriesRights: true, pageShift: nil),
                         Structure(name: "PDPTE", index: (38, 30), entryBytes: 8, carriesRights: true, pageShift: 30),
                         Structure(name: "PDE", index: (29, 21), entryBytes: 8, carriesRights: true, pageShift: 21),
                         Structure(name: "PTE", index: (20, 12), entryBytes: 8, carriesRights: true, pageShift: 12)]
        }
    }

    func bit(_ e: SymBV, _ n: Int) -> SymBool { e.extract(n, n).equals(e.extract(n, n).number(1)) }
    /// Bits high...low of `e`, in place (the rest zero).
    func inPlace(_ e: SymBV, _ high: Int, _ low: Int) -> SymBV {
        let width = high - low + 1
        let v = width == 64 ? e : e.extract(high, low).zeroExtended(by: 64 - width)
        return low == 0 ? v : v.shiftedLeft(by: low)
    }
    /// The mask of bits high...low (empty when high < low).
    func bits(_ high: Int, _ low: Int) -> UInt64 {
        guard high >= low else { return 0 }
        return (high - low == 63 ? ~UInt64(0) : (UInt64(1) << UInt64(high - low + 1)) - 1) << UInt64(low)
    }
    func anySet(_ e: SymBV, _ mask: UInt64, _ c: SMTContext) -> SymBool { (e & c.c(mask)).equals(c.c(0)).negated }

    /// Whether a present entry of structure `i` maps a page (else it names a table).
    func maps(_ c: SMTContext, _ e: SymBV, _ i: Int, pse: SymBool, gigabytePages: SymBool) -> SymBool {
        let s = structures[i]
        if i == structures.count - 1 { return c.truth(true) }                          // a PTE always maps
        guard s.pageShift != nil else { return c.truth(false) }                         // PML4E, PAE PDPTE
        switch (mode, s.name) {
        case (2, _): return bit(e, 7).and(pse)                                          // 4 MiB with CR4.PSE
        case (4, "PDPTE"): return bit(e, 7).and(gigabytePages)                          // 1 GiB with PDPE1GB
        default: return bit(e, 7)                                                       // 2 MiB
        }
    }

    /// Whether a present entry sets a reserved bit (Tables 4-4 to 4-20).
    func reserved(_ c: SMTContext, _ e: SymBV, _ i: Int, maps: SymBool, nxe: SymBool, gigabytePages: SymBool) -> SymBool {
        let s = structures[i]
        let no = c.truth(false)
        switch mode {
        case 2:
            // Only a 4 MiB PDE has reserved bits: 21, and the PSE-36 address
            // bits 20:13 (physical bits 39:32) at or above MAXPHYADDR.
            guard s.name == "PDE" else { return no }
            return maps.and(anySet(e, bits(21, 21) | bits(20, 13 + min(m, 40) - 32), c))
        case 3:
            if s.name == "PDPTE" { return anySet(e, bits(2, 1) | bits(8, 5) | bits(63, m), c) }
            var r = anySet(e, bits(62, m), c).or(nxe.negated.and(bit(e, 63)))
            if s.name == "PDE" { r = r.or(maps.and(anySet(e, bits(20, 13), c))) }
            return r
        default:
            var r = anySet(e, bits(51, m), c).or(nxe.negated.and(bit(e, 63)))
            switch s.name {
            case "PML4E": r = r.or(bit(e, 7))
            case "PDPTE": r = r.or(gigabytePages.negated.and(bit(e, 7))).or(maps.and(anySet(e, bits(29, 13), c)))
            case "PDE": r = r.or(maps.and(anySet(e, bits(20, 13), c)))
            default: break
            }
            return r
        }
    }

    /// The physical address of the page a mapping entry of structure `i` maps.
    func pageAddress(_ e: SymBV, _ i: Int) -> SymBV {
        let shift = structures[i].pageShift!
        if mode == 2 && shift == 22 {
            // PSE-36: bits 31:22 of the address from the PDE's 31:22, bits 39:32 from its 20:13.
            return inPlace(e, 31, 22) | inPlace(e, 20, 13).shiftedLeft(by: 19)
        }
        return inPlace(e, mode == 2 ? 31 : m - 1, shift)
    }

    /// The physical address of the table an entry of structure `i` names.
    func tableAddress(_ e: SymBV) -> SymBV { inPlace(e, mode == 2 ? 31 : m - 1, 12) }

    /// Where structure `i`'s entry for `gva` is read, given its table.
    func entryAddress(_ table: SymBV, _ gva: SymBV, _ i: Int) -> SymBV {
        let s = structures[i]
        let index = gva.extract(s.index.high, s.index.low).zeroExtended(by: 63 - (s.index.high - s.index.low))
        return table &+ index.shiftedLeft(by: s.entryBytes == 4 ? 2 : 3)
    }

    /// The first table: CR3's page directory (32-bit), PDPT (PAE, 32-byte
    /// aligned) or PML4 (4-level).
    func firstTable(_ cr3: SymBV) -> SymBV {
        switch mode {
        case 2: return inPlace(cr3, 31, 12)
        case 3: return inPlace(cr3, 31, 5)
        default: return inPlace(cr3, m - 1, 12)
        }
    }

    /// 4.6: whether the access is allowed, by access kind, for a page whose
    /// path gives U/S, R/W and XD. SMAP is taken with EFLAGS.AC clear.
    static func permitted(user: SymBool, write: SymBool, fetch: SymBool, pageUser: SymBool, pageWritable: SymBool, xd: SymBool,
                          nxe: SymBool, wp: SymBool, smep: SymBool, smap: SymBool) -> SymBool {
        let executable = nxe.and(xd).negated
        let read = write.negated.and(fetch.negated)
        let userRule = allOf(pageUser, write.implies(pageWritable), fetch.implies(executable))
        let supervisorRule = allOf(read.implies(smap.and(pageUser).negated),
                                   write.implies(smap.and(pageUser).negated.and(wp.implies(pageWritable))),
                                   fetch.implies(smep.and(pageUser).negated.and(executable)))
        return user.and(userRule).or(user.negated.and(supervisorRule))
    }

    /// What the spec says of one address's walk.
    struct Outcome {
        let translated: SymBool
        let gpa: SymBV, pageSize: SymBV
        let writable: SymBool, user: SymBool, executable: SymBool
        let errorCode: SymBV
        /// Where each structure's entry is read, and whether the walk gets there.
        let reads: [(address: SymBV, reached: SymBool)]
        /// The structure the walk stops at (fault or page), one condition each.
        let stopsAt: [SymBool]
    }

    /// The translation of `gva`, with `entry(i)` the entry of structure `i`
    /// on its path and `mapped(i)` whether guest memory holds it.
    func translate(_ c: SMTContext, gva: SymBV, cr3: SymBV, controls k: GuestPagingControls<SymBV>,
                   entry: (Int) -> SymBV, mapped: (Int) -> SymBool) -> Outcome {
        var reach = c.truth(true)
        var table = firstTable(cr3)
        var notPresent = c.truth(false), reservedBit = c.truth(false), page = c.truth(false)
        var gpa = c.c(0), size = c.c(0)
        var u = c.truth(true), w = c.truth(true), xd = c.truth(false)
        var pageUser = c.truth(false), pageWritable = c.truth(false), pageXD = c.truth(false)
        var reads: [(SymBV, SymBool)] = []
        var stops: [SymBool] = []
        for i in structures.indices {
            let s = structures[i]
            reads.append((entryAddress(table, gva, i), reach))
            let e = s.entryBytes == 4 ? entry(i) & c.c(0xFFFF_FFFF) : entry(i)
            let present = mapped(i).and(bit(e, 0))
            let mapsHere = maps(c, e, i, pse: k.pse, gigabytePages: k.gigabytePages)
            let bad = reserved(c, e, i, maps: mapsHere, nxe: k.nxe, gigabytePages: k.gigabytePages)
            if s.carriesRights {
                u = u.and(bit(e, 2))
                w = w.and(bit(e, 1))
                if s.entryBytes == 8 { xd = xd.or(bit(e, 63)) }
            }
            notPresent = notPresent.or(reach.and(present.negated))
            reservedBit = reservedBit.or(reach.and(present).and(bad))
            let here = allOf(reach, present, bad.negated, mapsHere)
            stops.append(reach.and(present.negated.or(bad).or(mapsHere)))
            if let shift = s.pageShift {
                gpa = SymBV.select(here, pageAddress(e, i) | inPlace(gva, shift - 1, 0), gpa)
                size = SymBV.select(here, c.c(UInt64(1) << UInt64(shift)), size)
                pageUser = here.and(u).or(here.negated.and(pageUser))
                pageWritable = here.and(w).or(here.negated.and(pageWritable))
                pageXD = here.and(xd).or(here.negated.and(pageXD))
            }
            page = page.or(here)
            reach = allOf(reach, present, bad.negated, mapsHere.negated)
            table = tableAddress(e)
        }
        let allowed = Self.permitted(user: k.user, write: k.write, fetch: k.fetch, pageUser: pageUser, pageWritable: pageWritable, xd: pageXD,
                                     nxe: k.nxe, wp: k.wp, smep: k.smep, smap: k.smap)
        // 4.7: P is clear only for a not-present entry; I/D reports a fetch
        // when SMEP is on, or NXE with PAE or 4-level paging.
        let id = k.fetch.and(k.smep.or(mode == 2 ? c.truth(false) : k.nxe))
        func flag(_ b: SymBool, _ v: UInt64) -> SymBV { SymBV.select(b, c.c(v), c.c(0)) }
        let code = flag(notPresent.negated, 1) | flag(k.write, 2) | flag(k.user, 4) | flag(reservedBit, 8) | flag(id, 16)
        return Outcome(translated: page.and(allowed), gpa: gpa, pageSize: size, writable: pageWritable, user: pageUser,
                       executable: k.nxe.and(pageXD).negated, errorCode: code, reads: reads, stopsAt: stops)
    }
}
