import HVCore
import SMT

enum EPTEntryTheorems {
    /// Valid leaf inputs: a host address below 2^52 aligned to the leaf,
    /// flags with known bits only, some access, and no write without read.
    static func validLeaf(_ c: SMTContext, _ hpa: SymBV, _ flags: SymBV, level: Int, alignment: Bool) -> [SymBool] {
        let size = UInt64(1) << UInt64(12 + 9 * level)
        var facts = [hpa.unsignedLess(than: c.c(1 << 52)),
                     (flags & c.c(~MappingFlags.all.rawValue)).isZero,
                     (flags & c.c(7)).isNonZero,
                     (flags & c.c(3)).equals(c.c(2)).negated]
        if alignment { facts.append(Kernels.isAligned(hpa, mask: c.c(size - 1))) }
        return facts
    }

    static var all: [Theorem] {
        let leaves = (0...2).map { level in
            Theorem("ept_leaf_roundtrip_l\(level)",
                    "encoding a valid level-\(level) leaf and decoding it returns the same host address and flags; the entry is present, a leaf, well formed (no write-without-read, no reserved bits, memory type UC or WB, bit 7 set exactly for huge leaves)",
                    wrong: "drops the alignment precondition on the host address") { c, variant in
                let hpa = c.bv("hpa"), flags = c.bv("flags")
                let e = Kernels.eptEncodeLeaf(hpa: hpa, flags: flags, level: level)
                let memoryType = e.shiftedRight(by: 3) & c.c(7)
                let claim = allOf(
                    Kernels.eptLeafAddress(e, level: level).equals(hpa),
                    Kernels.eptLeafFlags(e).equals(flags),
                    Kernels.eptIsPresent(e),
                    Kernels.eptIsLeaf(e, level: level),
                    Kernels.eptLeafWellFormed(e, level: level),
                    Kernels.eptWriteWithoutRead(e).negated,
                    memoryType.equals(c.c(0)).or(memoryType.equals(c.c(6))),
                    (e & c.c(EPTBits.largePage)).equals(c.c(level > 0 ? EPTBits.largePage : 0)))
                return Query(inputs: [("hpa", hpa), ("flags", flags)],
                             assumptions: validLeaf(c, hpa, flags, level: level, alignment: variant == .shipped), claim: claim)
            }
        }
        let table = Theorem("ept_table_entry", "a table entry for a 4 KiB-aligned table below 2^52 is present, not a leaf at levels 1-3, and well formed (R|W|X, memory type and bit 7 clear)",
                            wrong: "sets bit 7 in a table entry") { c, variant in
            let t = c.bv("table")
            var e = Kernels.eptEncodeTable(tableHPA: t)
            if variant == .wrong { e = e | c.c(EPTBits.largePage) }
            let claim = allOf(Kernels.eptIsPresent(e), Kernels.eptTableWellFormed(e), Kernels.eptIsLeaf(e, level: 1).negated,
                            Kernels.eptIsLeaf(e, level: 2).negated, (e & c.c(EPTBits.addressMask)).equals(t))
            return Query(inputs: [("table", t)],
                         assumptions: [t.unsignedLess(than: c.c(1 << 52)), Kernels.isAligned(t, mask: c.c(0xFFF))], claim: claim)
        }
        let eptp = Theorem("eptp_fields", "the EPT pointer holds exactly the memory type (UC or WB), walk length - 1, the A/D bit and the root; bits 11:7 and 63:52 are clear",
                           wrong: "encodes the walk length without subtracting one") { c, variant in
            let root = c.bv("root"), type = c.bv("memory_type"), walk = c.bv("walk_length"), ad = c.boolean("accessed_dirty")
            var p = Kernels.eptPointer(root: root, memoryType: type, walkLength: walk, accessedDirty: ad)
            if variant == .wrong {
                p = (root & c.c(EPTBits.addressMask)) | (type & c.c(7)) | (walk & c.c(7)).shiftedLeft(by: 3)
                    | SymBV.select(ad, c.c(1 << 6), c.c(0))
            }
            let claim = allOf((p & c.c(7)).equals(type), (p.shiftedRight(by: 3) & c.c(7)).equals(walk &- c.c(1)),
                            (p & c.c(1 << 6)).isNonZero.iff(ad), (p & c.c(Kernels.eptpReservedLow)).isZero,
                            p.shiftedRight(by: 52).isZero, (p & c.c(EPTBits.addressMask)).equals(root))
            return Query(inputs: [("root", root), ("memory_type", type), ("walk_length", walk)],
                         assumptions: [type.equals(c.c(0)).or(type.equals(c.c(6))), walk.equals(c.c(4)).or(walk.equals(c.c(5))),
                                       root.unsignedLess(than: c.c(1 << 52)), Kernels.isAligned(root, mask: c.c(0xFFF))],
                         claim: claim)
        }
        let huge = [("2m", UInt64(0x1F_FFFF)), ("1g", UInt64(0x3FFF_FFFF))].map { label, mask in
            Theorem("huge_page_eligible_\(label)", "a \(label) leaf is chosen only when guest and host are both aligned to it and the whole leaf lies inside the request",
                    wrong: "compares the bytes left with <= mask (one byte short)") { c, variant in
                let g = c.bv("gpa"), h = c.bv("hpa"), r = c.bv("remaining")
                let eligible = variant == .shipped
                    ? Kernels.hugePageEligible(gpa: g, hpa: h, remaining: r, mask: c.c(mask))
                    : Kernels.isAligned(g, mask: c.c(mask)).and(Kernels.isAligned(h, mask: c.c(mask))).and(c.c(mask).unsignedLessOrEqual(to: r))
                let claim = eligible.implies(allOf(Kernels.isAligned(g, mask: c.c(mask)), Kernels.isAligned(h, mask: c.c(mask)),
                                                 c.c(mask + 1).unsignedLessOrEqual(to: r)))
                return Query(inputs: [("gpa", g), ("hpa", h), ("remaining", r)], claim: claim)
            }
        }
        // The converse: a kernel that always answers false passes the one above.
        let hugeComplete = [("2m", UInt64(0x1F_FFFF)), ("1g", UInt64(0x3FFF_FFFF))].map { label, mask in
            Theorem("huge_page_eligible_complete_\(label)", "whenever guest and host are both aligned to \(label) and the whole leaf lies inside the request, a \(label) leaf is chosen",
                    wrong: "a kernel that never chooses a huge leaf") { c, variant in
                let g = c.bv("gpa"), h = c.bv("hpa"), r = c.bv("remaining")
                let eligible = variant == .shipped ? Kernels.hugePageEligible(gpa: g, hpa: h, remaining: r, mask: c.c(mask)) : c.truth(false)
                let fits = allOf(Kernels.isAligned(g, mask: c.c(mask)), Kernels.isAligned(h, mask: c.c(mask)), c.c(mask + 1).unsignedLessOrEqual(to: r))
                return Query(inputs: [("gpa", g), ("hpa", h), ("remaining", r)], claim: fits.implies(eligible))
            }
        }
        return leaves + [table, eptp] + huge + hugeComplete
    }
}
