/// Bit layout of RISC-V G-stage page-table entries (privileged
/// specification, "Two-Stage Address Translation" and the Sv39/Sv48 PTE
/// format; PBMT from the Svpbmt extension).
public enum RISCVBits {
    public static let valid: UInt64 = 1 << 0
    public static let read: UInt64 = 1 << 1
    public static let write: UInt64 = 1 << 2
    public static let execute: UInt64 = 1 << 3
    /// G-stage accesses are all treated as user-mode: every leaf has U = 1.
    public static let user: UInt64 = 1 << 4
    public static let global: UInt64 = 1 << 5
    /// A and D are set on every leaf (D when writable), so the hardware
    /// never has to update them (it need not).
    public static let accessed: UInt64 = 1 << 6
    public static let dirty: UInt64 = 1 << 7
    /// RSW, bits 9:8, reserved for software: HVKit's USER flag in bit 8,
    /// and bit 9 marks UNCACHED when DEVICE also holds (PBMT keeps one).
    public static let softwareUser: UInt64 = 1 << 8
    public static let softwareUncached: UInt64 = 1 << 9
    /// PPN, bits 53:10: the physical page number.
    public static let ppnMask: UInt64 = 0x003F_FFFF_FFFF_FC00
    /// PBMT, bits 62:61: 0 PMA, 1 NC (non-cacheable), 2 IO.
    public static let pbmtNC: UInt64 = 1 << 61
    public static let pbmtIO: UInt64 = 2 << 61
    public static let pbmtMask: UInt64 = 3 << 61
    public static let permissions: UInt64 = read | write | execute
    public static let leafBits: UInt64 = valid | permissions | user | accessed | dirty | softwareUser | softwareUncached | ppnMask | pbmtMask
}

extension Kernels {
    /// The PPN bits a leaf at `level` may use: a megapage (level 1) or
    /// gigapage (level 2) has its low PPN fields zero.
    @inlinable @inline(__always)
    public static func riscvLeafPPNMask(level: Int) -> UInt64 {
        RISCVBits.ppnMask & ~((UInt64(1) << UInt64(10 + 9 * level)) - 1)
    }

    /// Encodes a G-stage leaf mapping `hpa` with MappingFlags `flags` (raw
    /// bits) at `level`: R/W/X as given, U and A always, D with W; USER in
    /// RSW bit 8; DEVICE as PBMT IO, UNCACHED alone as PBMT NC, both as IO
    /// with RSW bit 9. Callers validate flags and alignment first.
    @inlinable @inline(__always)
    public static func riscvEncodeLeaf<D: BitVectorDomain>(hpa: D, flags: D, level: Int) -> D {
        let ppn = hpa.shiftedRight(by: 2) & .constant(riscvLeafPPNMask(level: level))
        let rwx = (flags & .constant(0b111)).shiftedLeft(by: 1)
        let dirty = (flags & .constant(MappingFlags.write.rawValue)).shiftedLeft(by: 6)
        let user = (flags & .constant(MappingFlags.user.rawValue)).shiftedLeft(by: 5)
        let device = (flags & .constant(MappingFlags.device.rawValue)).isNonZero
        let uncached = (flags & .constant(MappingFlags.uncached.rawValue)).isNonZero
        let pbmt = D.select(device, .constant(RISCVBits.pbmtIO), D.select(uncached, .constant(RISCVBits.pbmtNC), .constant(0)))
        let both = D.select(device.and(uncached), .constant(RISCVBits.softwareUncached), .constant(0))
        return ppn | rwx | dirty | user | pbmt | both | .constant(RISCVBits.valid | RISCVBits.user | RISCVBits.accessed)
    }

    @inlinable @inline(__always)
    public static func riscvLeafAddress<D: BitVectorDomain>(_ entry: D, level: Int) -> D {
        (entry & .constant(riscvLeafPPNMask(level: level))).shiftedLeft(by: 2)
    }

    /// The MappingFlags raw bits a G-stage leaf was encoded with.
    @inlinable @inline(__always)
    public static func riscvLeafFlags<D: BitVectorDomain>(_ entry: D) -> D {
        let rwx = entry.shiftedRight(by: 1) & .constant(0b111)
        let user = entry.shiftedRight(by: 5) & .constant(MappingFlags.user.rawValue)
        let pbmt = entry & .constant(RISCVBits.pbmtMask)
        let device = D.select(pbmt.equals(.constant(RISCVBits.pbmtIO)), .constant(MappingFlags.device.rawValue), .constant(0))
        let uncached = D.select(pbmt.equals(.constant(RISCVBits.pbmtNC)).or((entry & .constant(RISCVBits.softwareUncached)).isNonZero),
                                .constant(MappingFlags.uncached.rawValue), .constant(0))
        return rwx | user | device | uncached
    }

    /// A non-leaf entry: V and the next table's PPN; R, W, X, U, A, D clear.
    @inlinable
    public static func riscvEncodeTable<D: BitVectorDomain>(tableHPA: D) -> D {
        (tableHPA.shiftedRight(by: 2) & .constant(RISCVBits.ppnMask)) | .constant(RISCVBits.valid)
    }

    @inlinable @inline(__always)
    public static func riscvTableAddress<D: BitVectorDomain>(_ entry: D) -> D {
        (entry & .constant(RISCVBits.ppnMask)).shiftedLeft(by: 2)
    }

    @inlinable @inline(__always)
    public static func riscvIsPresent<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & .constant(RISCVBits.valid)).isNonZero
    }

    /// A valid entry with any of R, W, X is a leaf, at whatever level.
    @inlinable @inline(__always)
    public static func riscvIsLeaf<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        (entry & .constant(RISCVBits.permissions)).isNonZero
    }

    /// A leaf HVKit could have written: V, U and A set, D exactly with W,
    /// no W without R (reserved), no PBMT value 3 (reserved), RSW bit 9
    /// only with PBMT IO, the PPN aligned to the leaf's size, nothing else.
    @inlinable
    public static func riscvLeafWellFormed<D: BitVectorDomain>(_ entry: D, level: Int) -> D.Condition {
        let must = D.constant(RISCVBits.valid | RISCVBits.user | RISCVBits.accessed)
        let writeWithoutRead = (entry & .constant(RISCVBits.read | RISCVBits.write)).equals(.constant(RISCVBits.write))
        let dirtyMatchesWrite = (entry & .constant(RISCVBits.dirty)).shiftedRight(by: 5).equals(entry & .constant(RISCVBits.write))
        let pbmt = entry & .constant(RISCVBits.pbmtMask)
        let bit9Alone = (entry & .constant(RISCVBits.softwareUncached)).isNonZero.and(pbmt.equals(.constant(RISCVBits.pbmtIO)).negated)
        let belowPage = RISCVBits.ppnMask & ~riscvLeafPPNMask(level: level)
        return (entry & must).equals(must)
            .and(riscvIsLeaf(entry, level: level))
            .and(writeWithoutRead.negated)
            .and(dirtyMatchesWrite)
            .and(pbmt.equals(.constant(RISCVBits.pbmtMask)).negated)
            .and(bit9Alone.negated)
            .and((entry & .constant(belowPage | ~RISCVBits.leafBits)).isZero)
            .and(.constant(level <= 2))
    }

    /// A non-leaf entry is V and a PPN, nothing else.
    @inlinable
    public static func riscvTableWellFormed<D: BitVectorDomain>(_ entry: D) -> D.Condition {
        (entry & ~D.constant(RISCVBits.ppnMask)).equals(.constant(RISCVBits.valid))
    }

    /// hgatp: MODE in bits 63:60 (8 Sv39x4, 9 Sv48x4), VMID in 57:44, the
    /// root's PPN in 43:0 (the root is 16 KiB aligned, so PPN bits 1:0 are zero).
    @inlinable
    public static func hgatp<D: BitVectorDomain>(root: D, vmid: D, mode: UInt64) -> D {
        D.constant(mode << 60) | (vmid & .constant(0x3FFF)).shiftedLeft(by: 44) | (root.shiftedRight(by: 12) & .constant(0xFFF_FFFF_FFFF))
    }
}
