import HVCore
import SMT

/// Theorems over the AArch64 stage-2 and RISC-V G-stage kernels, as
/// `EPTEntryTheorems` states them for EPT. Two wrong variants are the
/// upstream bugs: S2AP read and write swapped, and an Sv39x4 root indexed
/// as 512 entries.
enum GStageTheorems {
    /// Valid leaf inputs: a host address below 2^hostBits aligned to the
    /// leaf, flags with known bits only, some access, no write without read.
    static func validLeaf(_ c: SMTContext, _ hpa: SymBV, _ flags: SymBV, level: Int, hostBits: Int) -> [SymBool] {
        let size = UInt64(1) << UInt64(12 + 9 * level)
        return [hpa.unsignedLess(than: c.c(1 << UInt64(hostBits))),
                Kernels.isAligned(hpa, mask: c.c(size - 1)),
                (flags & c.c(~MappingFlags.all.rawValue)).isZero,
                (flags & c.c(7)).isNonZero,
                (flags & c.c(3)).equals(c.c(2)).negated]
    }

    /// Upstream's stage-2 encoder: S2AP with read and write swapped.
    static func swappedS2AP<D: BitVectorDomain>(hpa: D, flags: D, level: Int) -> D {
        let e = Kernels.stage2EncodeLeaf(hpa: hpa, flags: flags, level: level) & .constant(~(Stage2Bits.s2apRead | Stage2Bits.s2apWrite))
        return e | (flags & .constant(1)).shiftedLeft(by: 7) | (flags & .constant(2)).shiftedLeft(by: 5)
    }

    static func stage2Leaf<D: BitVectorDomain>(hpa: D, flags: D, level: Int, _ variant: Variant) -> D {
        variant == .shipped ? Kernels.stage2EncodeLeaf(hpa: hpa, flags: flags, level: level) : swappedS2AP(hpa: hpa, flags: flags, level: level)
    }

    /// The root index; the wrong one is a plain 9-bit table index.
    static func rootIndex<D: BitVectorDomain>(_ x: D, level: Int, rootBits: Int, _ variant: Variant) -> D {
        variant == .shipped ? Kernels.rootIndex(x, level: level, rootBits: rootBits) : Kernels.tableIndex(x, level: level)
    }

    /// An address rebuilt from a root index (at `levels - 1`), the 9-bit
    /// indices below it and the page offset.
    static func recombine<D: BitVectorDomain>(_ x: D, root: D, levels: Int) -> D {
        (0..<(levels - 1)).reduce(root.shiftedLeft(by: 12 + 9 * (levels - 1)) | Kernels.pageOffset4K(x)) { acc, level in
            acc | Kernels.tableIndex(x, level: level).shiftedLeft(by: 12 + 9 * level)
        }
    }

    static var stage2: [Theorem] {
        let leaves = (0...2).map { level in
            Theorem("stage2_leaf_roundtrip_l\(level)",
                    "encoding a valid level-\(level) stage-2 leaf and decoding it returns the same output address and flags; the descriptor is valid, a \(level == 0 ? "page" : "block"), well formed, S2AP bit 6 is read and bit 7 write, XN is set exactly without EXECUTE, and memory is Device-nGnRE exactly for DEVICE or UNCACHED",
                    wrong: "upstream's S2AP with read and write swapped") { c, variant in
                let hpa = c.bv("hpa"), flags = c.bv("flags")
                let e = stage2Leaf(hpa: hpa, flags: flags, level: level, variant)
                let device = (flags & c.c(MappingFlags.device.rawValue | MappingFlags.uncached.rawValue)).isNonZero
                let claim = allOf(
                    Kernels.stage2LeafAddress(e, level: level).equals(hpa),
                    Kernels.stage2LeafFlags(e).equals(flags),
                    Kernels.stage2IsPresent(e),
                    Kernels.stage2IsLeaf(e, level: level),
                    Kernels.stage2LeafWellFormed(e, level: level),
                    (e & c.c(Stage2Bits.s2apRead)).isNonZero.iff((flags & c.c(MappingFlags.read.rawValue)).isNonZero),
                    (e & c.c(Stage2Bits.s2apWrite)).isNonZero.iff((flags & c.c(MappingFlags.write.rawValue)).isNonZero),
                    (e & c.c(Stage2Bits.executeNever)).isNonZero.iff((flags & c.c(MappingFlags.execute.rawValue)).isZero),
                    (e & c.c(Stage2Bits.memAttrMask)).equals(c.c(Stage2Bits.memAttrDeviceNGnRE)).iff(device))
                return Query(inputs: [("hpa", hpa), ("flags", flags)], assumptions: validLeaf(c, hpa, flags, level: level, hostBits: 48), claim: claim) { model in
                    // What the two encoders' entries decode to.
                    let h = model.value(hpa), f = model.value(flags)
                    return .computation(shipped: Kernels.stage2LeafFlags(stage2Leaf(hpa: h, flags: f, level: level, .shipped)),
                                        wrong: Kernels.stage2LeafFlags(stage2Leaf(hpa: h, flags: f, level: level, .wrong)))
                }
            }
        }
        let table = Theorem("stage2_table_entry", "a table descriptor for a 4 KiB-aligned table below 2^48 is valid, not a block at levels 1 and 2, well formed, and holds the table's address",
                            wrong: "clears bit 1, which makes it a block") { c, variant in
            let t = c.bv("table")
            var e = Kernels.stage2EncodeTable(tableHPA: t)
            if variant == .wrong { e = e & c.c(~Stage2Bits.tableOrPage) }
            let claim = allOf(Kernels.stage2IsPresent(e), Kernels.stage2TableWellFormed(e), Kernels.stage2IsLeaf(e, level: 1).negated,
                              Kernels.stage2IsLeaf(e, level: 2).negated, (e & c.c(Stage2Bits.addressMask)).equals(t))
            return Query(inputs: [("table", t)], assumptions: [t.unsignedLess(than: c.c(1 << 48)), Kernels.isAligned(t, mask: c.c(0xFFF))], claim: claim) { model in
                let e = Kernels.stage2EncodeTable(tableHPA: model.value(t))
                return .computation(shipped: Kernels.stage2IsLeaf(e, level: 1), wrong: Kernels.stage2IsLeaf(e & ~Stage2Bits.tableOrPage, level: 1))
            }
        }
        let root = Theorem("stage2_ipa40_root_index", "for every 40-bit IPA, the 10-bit index of the concatenated level-1 root, the level-2 and level-3 indices and the offset recombine to it",
                           wrong: "a 9-bit root index, as for one unconcatenated table (IPA bit 39 lost)") { c, variant in
            let x = c.bv("ipa")
            return Query(inputs: [("ipa", x)], assumptions: [x.shiftedRight(by: 40).isZero],
                         claim: recombine(x, root: rootIndex(x, level: 2, rootBits: 10, variant), levels: 3).equals(x)) { model in
                let v = model.value(x)
                return .computation(shipped: recombine(v, root: rootIndex(v, level: 2, rootBits: 10, .shipped), levels: 3),
                                    wrong: recombine(v, root: rootIndex(v, level: 2, rootBits: 10, .wrong), levels: 3))
            }
        }
        // The other IPA widths: partial roots and eight concatenated tables.
        let widths = [(32, 3, 2), (36, 3, 6), (42, 3, 12), (44, 4, 5)].map { bits, levels, rootBits in
            Theorem("stage2_ipa\(bits)_root_index", "an IPA recombines from its \(rootBits)-bit root index, the 9-bit indices below it and its offset exactly when it fits in \(bits) bits: every IPA of the width is resolved, and none past it is folded into the root",
                    wrong: "a 9-bit root index, as for one full table") { c, variant in
                let x = c.bv("ipa")
                func rebuilt<D: BitVectorDomain>(_ x: D, _ variant: Variant) -> D {
                    recombine(x, root: rootIndex(x, level: levels - 1, rootBits: rootBits, variant), levels: levels)
                }
                return Query(inputs: [("ipa", x)], claim: rebuilt(x, variant).equals(x).iff(x.shiftedRight(by: bits).isZero)) { model in
                    let v = model.value(x)
                    return .computation(shipped: rebuilt(v, .shipped), wrong: rebuilt(v, .wrong))
                }
            }
        }
        let vttbr = Theorem("vttbr_fields", "VTTBR_EL2 holds the root's address in BADDR and the VMID in bits 63:48, nothing else",
                            wrong: "puts the VMID at bit 47, over the address") { c, variant in
            let r = c.bv("root"), vmid = c.bv("vmid")
            func register<D: BitVectorDomain>(_ r: D, _ vmid: D, _ variant: Variant) -> D {
                variant == .shipped ? Kernels.vttbr(root: r, vmid: vmid) : (r & .constant(Stage2Bits.addressMask)) | vmid.shiftedLeft(by: 47)
            }
            let v = register(r, vmid, variant)
            let claim = allOf((v & c.c(Stage2Bits.addressMask)).equals(r), v.shiftedRight(by: 48).equals(vmid), (v & c.c(0xFFF)).isZero)
            return Query(inputs: [("root", r), ("vmid", vmid)],
                         assumptions: [r.unsignedLess(than: c.c(1 << 48)), Kernels.isAligned(r, mask: c.c(0x1FFF)), vmid.unsignedLess(than: c.c(1 << 16))],
                         claim: claim) { model in
                .computation(shipped: register(model.value(r), model.value(vmid), .shipped), wrong: register(model.value(r), model.value(vmid), .wrong))
            }
        }
        return leaves + [table, root] + widths + [vttbr]
    }

    static var riscv: [Theorem] {
        let leaves = (0...2).map { level in
            Theorem("sv_leaf_roundtrip_l\(level)",
                    "encoding a valid level-\(level) G-stage leaf and decoding it returns the same address and flags; the PTE is valid, a leaf, well formed, with U and A set and D exactly when writable, and PBMT IO exactly for DEVICE",
                    wrong: "leaves U clear, which a G-stage leaf must have set") { c, variant in
                let hpa = c.bv("hpa"), flags = c.bv("flags")
                var e = Kernels.riscvEncodeLeaf(hpa: hpa, flags: flags, level: level)
                if variant == .wrong { e = e & c.c(~RISCVBits.user) }
                let claim = allOf(
                    Kernels.riscvLeafAddress(e, level: level).equals(hpa),
                    Kernels.riscvLeafFlags(e).equals(flags),
                    Kernels.riscvIsPresent(e),
                    Kernels.riscvIsLeaf(e, level: level),
                    Kernels.riscvLeafWellFormed(e, level: level),
                    (e & c.c(RISCVBits.user | RISCVBits.accessed)).equals(c.c(RISCVBits.user | RISCVBits.accessed)),
                    (e & c.c(RISCVBits.dirty)).isNonZero.iff((flags & c.c(MappingFlags.write.rawValue)).isNonZero),
                    (e & c.c(RISCVBits.pbmtMask)).equals(c.c(RISCVBits.pbmtIO)).iff((flags & c.c(MappingFlags.device.rawValue)).isNonZero))
                return Query(inputs: [("hpa", hpa), ("flags", flags)], assumptions: validLeaf(c, hpa, flags, level: level, hostBits: 56), claim: claim) { model in
                    let e = Kernels.riscvEncodeLeaf(hpa: model.value(hpa), flags: model.value(flags), level: level)
                    return .computation(shipped: e, wrong: e & ~RISCVBits.user)
                }
            }
        }
        let table = Theorem("sv_table_entry", "a non-leaf PTE for a 4 KiB-aligned table below 2^56 is valid, not a leaf, well formed (R, W, X, U, A, D clear), and holds the table's address",
                            wrong: "sets A in the non-leaf entry (reserved there)") { c, variant in
            let t = c.bv("table")
            var e = Kernels.riscvEncodeTable(tableHPA: t)
            if variant == .wrong { e = e | c.c(RISCVBits.accessed) }
            let claim = allOf(Kernels.riscvIsPresent(e), Kernels.riscvTableWellFormed(e), Kernels.riscvIsLeaf(e, level: 1).negated,
                              Kernels.riscvTableAddress(e).equals(t))
            return Query(inputs: [("table", t)], assumptions: [t.unsignedLess(than: c.c(1 << 56)), Kernels.isAligned(t, mask: c.c(0xFFF))], claim: claim) { model in
                let e = Kernels.riscvEncodeTable(tableHPA: model.value(t))
                return .computation(shipped: e, wrong: e | RISCVBits.accessed)
            }
        }
        let sv39 = Theorem("sv39x4_root_index", "for every 41-bit GPA, the 11-bit root index, the two 9-bit indices and the offset recombine to it",
                           wrong: "upstream's 512-entry Sv39 root in Sv39x4 mode (GPA bits 40:39 lost)") { c, variant in
            let x = c.bv("gpa")
            func rebuilt<D: BitVectorDomain>(_ x: D, _ variant: Variant) -> D {
                recombine(x, root: rootIndex(x, level: 2, rootBits: 11, variant), levels: 3)
            }
            return Query(inputs: [("gpa", x)], assumptions: [x.shiftedRight(by: 41).isZero], claim: rebuilt(x, variant).equals(x)) { model in
                let v = model.value(x)
                return .computation(shipped: rebuilt(v, .shipped), wrong: rebuilt(v, .wrong))
            }
        }
        let sv48 = Theorem("sv48x4_root_index", "for every 50-bit GPA, the 11-bit root index, the three 9-bit indices and the offset recombine to it",
                           wrong: "a 512-entry root (GPA bits 49:48 lost)") { c, variant in
            let x = c.bv("gpa")
            func rebuilt<D: BitVectorDomain>(_ x: D, _ variant: Variant) -> D {
                recombine(x, root: rootIndex(x, level: 3, rootBits: 11, variant), levels: 4)
            }
            return Query(inputs: [("gpa", x)], assumptions: [x.shiftedRight(by: 50).isZero], claim: rebuilt(x, variant).equals(x)) { model in
                let v = model.value(x)
                return .computation(shipped: rebuilt(v, .shipped), wrong: rebuilt(v, .wrong))
            }
        }
        let hgatp = Theorem("hgatp_fields", "hgatp holds MODE 8 in bits 63:60, the VMID in 57:44 and the root's PPN in 43:0, with bits 59:58 clear",
                            wrong: "puts the root's address, not its PPN, in the PPN field") { c, variant in
            let r = c.bv("root"), vmid = c.bv("vmid")
            func register<D: BitVectorDomain>(_ r: D, _ vmid: D, _ variant: Variant) -> D {
                variant == .shipped ? Kernels.hgatp(root: r, vmid: vmid, mode: 8)
                    : D.constant(8 << 60) | vmid.shiftedLeft(by: 44) | (r & .constant(0xFFF_FFFF_FFFF))
            }
            let h = register(r, vmid, variant)
            let claim = allOf(h.shiftedRight(by: 60).equals(c.c(8)), (h.shiftedRight(by: 44) & c.c(0x3FFF)).equals(vmid),
                              (h & c.c(0xFFF_FFFF_FFFF)).shiftedLeft(by: 12).equals(r), (h & c.c(0b11 << 58)).isZero)
            return Query(inputs: [("root", r), ("vmid", vmid)],
                         assumptions: [r.unsignedLess(than: c.c(1 << 56)), Kernels.isAligned(r, mask: c.c(0x3FFF)), vmid.unsignedLess(than: c.c(1 << 14))],
                         claim: claim) { model in
                .computation(shipped: register(model.value(r), model.value(vmid), .shipped), wrong: register(model.value(r), model.value(vmid), .wrong))
            }
        }
        return leaves + [table, sv39, sv48, hgatp]
    }

    static var all: [Theorem] { stage2 + riscv }
}
