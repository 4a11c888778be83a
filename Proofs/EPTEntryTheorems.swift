import HVCore
import SMT

enum EPTEntryTheorems {
    /// Valid leaf inputs: a host address below 2^52 aligned to the leaf,
    /// flags with known bits only, some access, and no write without read.
    /// Valid leaf inputs: a host address below 2^52 aligned to the leaf,
    /// flags with known bits only, some access, and no write without read.
    static func validLeaf<D: BitVectorDomain>(_ hpa: D, _ flags: D, level: Int, alignment: Bool) -> [D.Condition] {
        let size = UInt64(1) << UInt64(12 + 9 * level)
        var facts = [hpa.unsignedLess(than: .constant(1 << 52)),
                     (flags & .constant(~MappingFlags.all.rawValue)).isZero,
                     (flags & .constant(7)).isNonZero,
                     (flags & .constant(3)).equals(.constant(2)).negated]
        if alignment { facts.append(Kernels.isAligned(hpa, mask: .constant(size - 1))) }
        return facts
    }

    /// The mutated encoder: host address bits 51:48 dropped, as if every
    /// host had a 48-bit physical address space.
    static func encodeLeaf<D: BitVectorDomain>(_ hpa: D, _ flags: D, level: Int, _ variant: Variant) -> D {
        let e = Kernels.eptEncodeLeaf(hpa: hpa, flags: flags, level: level)
        return variant == .mutated ? e & .constant(~(UInt64(0xF) << 48)) : e
    }

    /// The entry decodes to the same host address and flags and is a well-formed leaf.
    static func leafClaim<D: BitVectorDomain>(_ e: D, _ hpa: D, _ flags: D, level: Int) -> D.Condition {
        let memoryType = e.shiftedRight(by: 3) & .constant(7)
        return allOf(
            Kernels.eptLeafAddress(e, level: level).equals(hpa),
            Kernels.eptLeafFlags(e).equals(flags),
            Kernels.eptIsPresent(e),
            Kernels.eptIsLeaf(e, level: level),
            Kernels.eptLeafWellFormed(e, level: level),
            Kernels.eptWriteWithoutRead(e).negated,
            memoryType.equals(.constant(0)).or(memoryType.equals(.constant(6))),
            (e & .constant(EPTBits.largePage)).equals(.constant(level > 0 ? EPTBits.largePage : 0)))
    }

    /// The EPT pointer; the wrong one encodes the walk length without subtracting one.
    static func pointer<D: BitVectorDomain>(_ root: D, _ type: D, _ walk: D, _ ad: D.Condition, _ variant: Variant) -> D {
        if variant == .shipped { return Kernels.eptPointer(root: root, memoryType: type, walkLength: walk, accessedDirty: ad) }
        return (root & .constant(EPTBits.addressMask)) | (type & .constant(7)) | (walk & .constant(7)).shiftedLeft(by: 3)
            | D.select(ad, .constant(1 << 6), .constant(0))
    }

    /// Huge-leaf eligibility; the wrong one compares the bytes left with <= mask.
    static func eligible<D: BitVectorDomain>(_ g: D, _ h: D, _ r: D, mask: UInt64, _ variant: Variant) -> D.Condition {
        variant == .shipped
            ? Kernels.hugePageEligible(gpa: g, hpa: h, remaining: r, mask: .constant(mask))
            : Kernels.isAligned(g, mask: .constant(mask)).and(Kernels.isAligned(h, mask: .constant(mask))).and(D.constant(mask).unsignedLessOrEqual(to: r))
    }

    static var all: [Theorem] {
        let leaves = (0...2).map { level in
            Theorem("ept_leaf_roundtrip_l\(level)",
                    "encoding a valid level-\(level) leaf and decoding it returns the same host address and flags; the entry is present, a leaf, well formed (no write-without-read, no reserved bits, memory type UC or WB, bit 7 set exactly for huge leaves)",
                    wrong: "drops the alignment precondition on the host address",
                    mutated: "an encoder that drops host address bits 51:48, with the shipped preconditions") { c, variant in
                let hpa = c.bv("hpa"), flags = c.bv("flags")
                let e = encodeLeaf(hpa, flags, level: level, variant)
                return Query(inputs: [("hpa", hpa), ("flags", flags)],
                             assumptions: validLeaf(hpa, flags, level: level, alignment: variant != .wrong),
                             claim: leafClaim(e, hpa, flags, level: level)) { model in
                    let h = model.value(hpa), f = model.value(flags)
                    let shipped = encodeLeaf(h, f, level: level, .shipped)
                    if variant == .wrong {
                        return .assumption(shippedAssumptionsHold: conjunction(validLeaf(h, f, level: level, alignment: true)),
                                           claimHolds: leafClaim(shipped, h, f, level: level))
                    }
                    return .computation(shipped: shipped, wrong: encodeLeaf(h, f, level: level, .mutated))
                }
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
                         assumptions: [t.unsignedLess(than: c.c(1 << 52)), Kernels.isAligned(t, mask: c.c(0xFFF))], claim: claim) { model in
                let e = Kernels.eptEncodeTable(tableHPA: model.value(t))
                return .computation(shipped: e, wrong: e | EPTBits.largePage)
            }
        }
        let eptp = Theorem("eptp_fields", "the EPT pointer holds exactly the memory type (UC or WB), walk length - 1, the A/D bit and the root; bits 11:7 and 63:52 are clear",
                           wrong: "encodes the walk length without subtracting one") { c, variant in
            let root = c.bv("root"), type = c.bv("memory_type"), walk = c.bv("walk_length"), ad = c.boolean("accessed_dirty")
            let p = pointer(root, type, walk, ad, variant)
            let claim = allOf((p & c.c(7)).equals(type), (p.shiftedRight(by: 3) & c.c(7)).equals(walk &- c.c(1)),
                            (p & c.c(1 << 6)).isNonZero.iff(ad), (p & c.c(Kernels.eptpReservedLow)).isZero,
                            p.shiftedRight(by: 52).isZero, (p & c.c(EPTBits.addressMask)).equals(root))
            return Query(inputs: [("root", root), ("memory_type", type), ("walk_length", walk)],
                         assumptions: [type.equals(c.c(0)).or(type.equals(c.c(6))), walk.equals(c.c(4)).or(walk.equals(c.c(5))),
                                       root.unsignedLess(than: c.c(1 << 52)), Kernels.isAligned(root, mask: c.c(0xFFF))],
                         claim: claim) { model in
                let inputs = (model.value(root), model.value(type), model.value(walk), model.value(ad))
                return .computation(shipped: pointer(inputs.0, inputs.1, inputs.2, inputs.3, .shipped),
                                    wrong: pointer(inputs.0, inputs.1, inputs.2, inputs.3, .wrong))
            }
        }
        let huge = [("2m", UInt64(0x1F_FFFF)), ("1g", UInt64(0x3FFF_FFFF))].map { label, mask in
            Theorem("huge_page_eligible_\(label)", "a \(label) leaf is chosen only when guest and host are both aligned to it and the whole leaf lies inside the request",
                    wrong: "compares the bytes left with <= mask (one byte short)") { c, variant in
                let g = c.bv("gpa"), h = c.bv("hpa"), r = c.bv("remaining")
                let claim = eligible(g, h, r, mask: mask, variant).implies(allOf(Kernels.isAligned(g, mask: c.c(mask)), Kernels.isAligned(h, mask: c.c(mask)),
                                                                                 c.c(mask + 1).unsignedLessOrEqual(to: r)))
                return Query(inputs: [("gpa", g), ("hpa", h), ("remaining", r)], claim: claim) { model in
                    let x = (model.value(g), model.value(h), model.value(r))
                    return .computation(shipped: eligible(x.0, x.1, x.2, mask: mask, .shipped), wrong: eligible(x.0, x.1, x.2, mask: mask, .wrong))
                }
            }
        }
        // The converse: a kernel that always answers false passes the one above.
        let hugeComplete = [("2m", UInt64(0x1F_FFFF)), ("1g", UInt64(0x3FFF_FFFF))].map { label, mask in
            Theorem("huge_page_eligible_complete_\(label)", "whenever guest and host are both aligned to \(label) and the whole leaf lies inside the request, a \(label) leaf is chosen",
                    wrong: "a kernel that never chooses a huge leaf") { c, variant in
                let g = c.bv("gpa"), h = c.bv("hpa"), r = c.bv("remaining")
                let chosen = variant == .shipped ? Kernels.hugePageEligible(gpa: g, hpa: h, remaining: r, mask: c.c(mask)) : c.truth(false)
                let fits = allOf(Kernels.isAligned(g, mask: c.c(mask)), Kernels.isAligned(h, mask: c.c(mask)), c.c(mask + 1).unsignedLessOrEqual(to: r))
                return Query(inputs: [("gpa", g), ("hpa", h), ("remaining", r)], claim: fits.implies(chosen)) { model in
                    .computation(shipped: Kernels.hugePageEligible(gpa: model.value(g), hpa: model.value(h), remaining: model.value(r), mask: mask),
                                 wrong: false)
                }
            }
        }
        return leaves + [table, eptp] + huge + hugeComplete
    }
}
