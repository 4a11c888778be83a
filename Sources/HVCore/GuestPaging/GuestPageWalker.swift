/// How a guest is translating: its paging mode and the access being made.
public struct GuestPageWalkInfo: Equatable, Sendable {
    /// CR3: the top table (page directory, PDPT or PML4).
    public var topEntry: UInt64
    /// 0 = no paging, 2 = 32-bit, 3 = PAE, 4 = 4-level.
    public var level: Int
    /// Bytes per entry: 4 for 32-bit paging, 8 otherwise.
    public var width: Int { level == 2 ? 4 : 8 }
    public var isUserModeAccess = false
    public var isWriteAccess = false
    public var isInstructionFetch = false
    /// CR4.PSE (4 MiB pages in 32-bit paging).
    public var pse = false
    /// CR0.WP (supervisor writes honour read-only pages).
    public var wp = false
    /// EFER.NXE (bit 63 is execute-disable instead of reserved).
    public var nxe = false
    public var smap = false
    public var smep = false
    /// MAXPHYADDR.
    public var physicalAddressBits = 52
    /// CPUID PDPE1GB: 1 GiB pages in 4-level paging (else PS in a PDPTE is reserved).
    public var gigabytePages = true

    public init(topEntry: UInt64, level: Int) {
        self.topEntry = topEntry
        self.level = level
    }
}

/// What a guest translation gives: the guest-physical address with the
/// effective permissions, or the page-fault error code.
public enum GuestWalkResult: Equatable, Sendable, CustomStringConvertible {
    case translated(gpa: UInt64, writable: Bool, user: Bool, executable: Bool, pageSize: UInt64)
    case fault(errorCode: UInt32)

    public static let present: UInt32 = 1 << 0
    public static let write: UInt32 = 1 << 1
    public static let user: UInt32 = 1 << 2
    public static let reserved: UInt32 = 1 << 3
    public static let fetch: UInt32 = 1 << 4

    public var gpa: UInt64? { if case let .translated(g, _, _, _, _) = self { g } else { nil } }

    public var description: String {
        switch self {
        case let .translated(g, w, u, x, size): "\(hex(g)) \(w ? "W" : "-")\(u ? "U" : "-")\(x ? "X" : "-") \(hex(size))"
        case let .fault(code): "#PF error code \(hex(UInt64(code)))"
        }
    }
}

/// Where a guest walk reads its paging-structure entries: the shipped
/// conformance reads guest memory through a closure; the proofs' one
/// gives each step a free word.
public protocol GuestTableMemory {
    associatedtype Word: BitVectorDomain
    /// The `width`-byte (4 or 8) word at guest-physical `address`, read at
    /// walk step `step` (0 first), and whether guest memory is there. The
    /// walk reads only while `active` holds (see `TableMemory.load`).
    mutating func read(_ address: Word, width: Int, step: Int, when active: Word.Condition) -> (value: Word, mapped: Word.Condition)
}

/// The paging controls and the access being made, in a domain.
public struct GuestPagingControls<D: BitVectorDomain> {
    public var user, write, fetch: D.Condition
    public var pse, wp, nxe, smap, smep, gigabytePages: D.Condition

    public init(user: D.Condition, write: D.Condition, fetch: D.Condition, pse: D.Condition, wp: D.Condition, nxe: D.Condition,
                smap: D.Condition, smep: D.Condition, gigabytePages: D.Condition) {
        (self.user, self.write, self.fetch, self.pse, self.wp, self.nxe) = (user, write, fetch, pse, wp, nxe)
        (self.smap, self.smep, self.gigabytePages) = (smap, smep, gigabytePages)
    }
}

/// A guest walk's answer in its domain: the translation when `translated`
/// holds, else the page-fault error code.
public struct GuestWalkAnswer<D: BitVectorDomain> {
    public var translated: D.Condition
    public var gpa: D
    public var writable, user, executable: D.Condition
    public var pageSize: D
    public var errorCode: D
}

/// Walks a guest's own page tables (no paging, 32-bit with PSE 4 MiB
/// pages, PAE with its 4-entry PDPT, 4-level with 2 MiB and 1 GiB pages),
/// with reserved bits checked per level and access rights decided by
/// `Kernels.x86AccessDenied`. Written once, generic over the bit-vector
/// domain (like `PageTableFormat.walk`): the proofs run this walk.
public enum GuestPageWalker {
    static let P: UInt64 = 1 << 0, RSVD: UInt64 = 1 << 3, PS: UInt64 = 1 << 7, XD: UInt64 = 1 << 63

    public static func walk(_ gva: UInt64, _ info: GuestPageWalkInfo, read: (UInt64, Int) -> UInt64?) -> GuestWalkResult {
        precondition([0, 2, 3, 4].contains(info.level), "paging level \(info.level) is not 0, 2, 3 or 4")
        precondition((32...52).contains(info.physicalAddressBits), "MAXPHYADDR \(info.physicalAddressBits) is not in 32...52")
        struct ClosureMemory: GuestTableMemory {
            let read: (UInt64, Int) -> UInt64?
            func read(_ address: UInt64, width: Int, step: Int, when active: Bool) -> (value: UInt64, mapped: Bool) {
                let v = read(address, width)
                return (v ?? 0, v != nil)
            }
        }
        return withoutActuallyEscaping(read) { read in
            var memory = ClosureMemory(read: read)
            let controls = GuestPagingControls<UInt64>(user: info.isUserModeAccess, write: info.isWriteAccess, fetch: info.isInstructionFetch,
                                                       pse: info.pse, wp: info.wp, nxe: info.nxe, smap: info.smap, smep: info.smep,
                                                       gigabytePages: info.gigabytePages)
            let a = walk(&memory, gva, cr3: info.topEntry, mode: info.level, physicalAddressBits: info.physicalAddressBits, controls)
            return a.translated
                ? .translated(gpa: a.gpa, writable: a.writable, user: a.user, executable: a.executable, pageSize: a.pageSize)
                : .fault(errorCode: UInt32(truncatingIfNeeded: a.errorCode))
        }
    }

    /// The walk in any domain. `mode` is 0 (no paging), 2 (32-bit), 3 (PAE)
    /// or 4 (4-level); `physicalAddressBits` is MAXPHYADDR, 32 to 52.
    public static func walk<M: GuestTableMemory>(_ memory: inout M, _ gva: M.Word, cr3: M.Word, mode: Int, physicalAddressBits: Int,
                                                 _ k: GuestPagingControls<M.Word>) -> GuestWalkAnswer<M.Word> {
        typealias W = M.Word
        let wide = mode != 2
        let code = Kernels.x86FaultAccessBits(user: k.user, write: k.write, fetch: k.fetch, nxe: k.nxe, smep: k.smep, wideEntries: wide) as W
        var a = GuestWalkAnswer<W>(translated: .constant(false), gpa: .constant(0), writable: .constant(false), user: .constant(false),
                                   executable: .constant(false), pageSize: .constant(0), errorCode: .constant(0))
        if mode == 0 {
            return GuestWalkAnswer(translated: .constant(true), gpa: gva & .constant(0xFFFF_FFFF), writable: .constant(true), user: .constant(true),
                                   executable: .constant(true), pageSize: .constant(0x1000), errorCode: .constant(0))
        }
        func choose(_ c: W.Condition, _ x: W.Condition, _ y: W.Condition) -> W.Condition { c.and(x).or(c.negated.and(y)) }
        let addressMask: UInt64 = wide ? 0x000F_FFFF_FFFF_F000 : 0xFFFF_F000
        let aboveMax = ~((UInt64(1) << UInt64(physicalAddressBits)) - 1)
        // Reserved in every present entry: bits 51:M with 4-level paging,
        // 62:M with PAE (and XD, bit 63, without NXE); none with 32-bit.
        let highReserved: W = mode == 2 ? .constant(0)
            : W.constant(aboveMax & (mode == 4 ? 0x000F_FFFF_FFFF_FFFF : 0x7FFF_FFFF_FFFF_FFFF)) | W.select(k.nxe, .constant(0), .constant(XD))
        var active = W.Condition.constant(true)
        func fault(_ condition: W.Condition, _ extra: UInt64) {
            let hit = active.and(condition)
            a.errorCode = W.select(hit, code | .constant(extra), a.errorCode)
            active = active.and(condition.negated)
        }
        var writable = W.Condition.constant(true), user = W.Condition.constant(true), executable = W.Condition.constant(true)
        var table: W
        let steps: [(shift: Int, bits: Int)]
        var step = 0
        switch mode {
        case 2:
            table = cr3 & .constant(addressMask)
            steps = [(22, 10), (12, 10)]
        case 3:
            // The 4-entry PDPT: its entries carry only P and the address;
            // bits 2:1, 8:5 and 63:M are reserved.
            let r = memory.read((cr3 & .constant(0xFFFF_FFE0)) &+ ((gva.shiftedRight(by: 30) & .constant(3)).shiftedLeft(by: 3)),
                                width: 8, step: 0, when: active)
            fault(r.mapped.negated.or((r.value & .constant(P)).isZero), 0)
            fault((r.value & .constant(aboveMax | 0x1E6)).isNonZero, P | RSVD)
            table = r.value & .constant(addressMask)
            steps = [(21, 9), (12, 9)]
            step = 1
        default:
            table = cr3 & .constant(addressMask)
            steps = [(39, 9), (30, 9), (21, 9), (12, 9)]
        }
        for (depth, level) in steps.enumerated() {
            if active.isCertainlyFalse { break }
            let index = gva.shiftedRight(by: level.shift) & .constant((UInt64(1) << UInt64(level.bits)) - 1)
            let r = memory.read(table &+ index.shiftedLeft(by: wide ? 3 : 2), width: wide ? 8 : 4, step: step, when: active)
            step += 1
            let entry = wide ? r.value : r.value & .constant(0xFFFF_FFFF)
            fault(r.mapped.negated.or((entry & .constant(P)).isZero), 0)
            let isLast = depth == steps.count - 1
            // Bit 7 means a large page only where one is allowed.
            let largeAllowed: W.Condition = mode == 2 ? (depth == 0 ? k.pse : .constant(false))
                : level.shift == 21 ? .constant(true) : level.shift == 30 ? k.gigabytePages : .constant(false)
            let large = isLast ? W.Condition.constant(false) : (entry & .constant(PS)).isNonZero.and(largeAllowed)
            var reserved = highReserved
            if mode == 4 && depth == 0 { reserved = reserved | .constant(PS) }  // PS in a PML4E
            if mode == 4 && level.shift == 30 { reserved = reserved | W.select(k.gigabytePages, .constant(0), .constant(PS)) }
            if !isLast {
                // A large page's bits between 12 and its size, except PAT at 12:
                // 4 MiB: bit 21, and PSE-36 address bits 20:13 past MAXPHYADDR.
                let largeBits: UInt64 = mode == 2
                    ? (1 << 21) | (physicalAddressBits < 40 ? ((UInt64(1) << UInt64(40 - physicalAddressBits)) - 1) << UInt64(physicalAddressBits - 19) : 0)
                    : ((UInt64(1) << UInt64(level.shift - 13)) - 1) << 13
                reserved = reserved | W.select(large, .constant(largeBits), .constant(0))
            }
            fault((entry & reserved).isNonZero, P | RSVD)
            writable = writable.and((entry & .constant(1 << 1)).isNonZero)
            user = user.and((entry & .constant(1 << 2)).isNonZero)
            executable = executable.and(k.nxe.and((entry & .constant(XD)).isNonZero).negated)
            let maps = isLast ? W.Condition.constant(true) : large
            let stop = active.and(maps)
            let size = UInt64(1) << UInt64(level.shift)
            let base: W = mode == 2 && !isLast
                ? (entry & .constant(0xFFC0_0000)) | (entry.shiftedRight(by: 13) & .constant(0xFF)).shiftedLeft(by: 32)  // PSE-36
                : entry & .constant(addressMask & ~(size - 1))
            let denied = Kernels.x86AccessDenied(W.self, user: k.user, write: k.write, fetch: k.fetch, pageUser: user, pageWritable: writable,
                                                 pageExecutable: executable, wp: k.wp, smep: k.smep, smap: k.smap)
            a.errorCode = W.select(stop.and(denied), code | .constant(P), a.errorCode)
            a.translated = a.translated.or(stop.and(denied.negated))
            a.gpa = W.select(stop, base | (gva & .constant(size - 1)), a.gpa)
            a.pageSize = W.select(stop, .constant(size), a.pageSize)
            a.writable = choose(stop, writable, a.writable)
            a.user = choose(stop, user, a.user)
            a.executable = choose(stop, executable, a.executable)
            active = active.and(maps.negated)
            table = entry & .constant(addressMask)
        }
        return a
    }
}
