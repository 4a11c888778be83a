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

/// Walks a guest's own page tables (no paging, 32-bit with PSE 4 MiB
/// pages, PAE with its 4-entry PDPT, 4-level with 2 MiB and 1 GiB pages),
/// reading them through `read` (a guest-physical 4- or 8-byte load, nil if
/// unmapped), with reserved bits checked per level.
public enum GuestPageWalker {
    public static func walk(_ gva: UInt64, _ info: GuestPageWalkInfo, read: (UInt64, Int) -> UInt64?) -> GuestWalkResult {
        var code: UInt32 = 0
        if info.isWriteAccess { code |= GuestWalkResult.write }
        if info.isUserModeAccess { code |= GuestWalkResult.user }
        if info.isInstructionFetch && (info.nxe || info.smep) { code |= GuestWalkResult.fetch }
        func fault(_ extra: UInt32) -> GuestWalkResult { .fault(errorCode: code | extra) }

        switch info.level {
        case 0:
            return .translated(gpa: gva & 0xFFFF_FFFF, writable: true, user: true, executable: true, pageSize: 0x1000)
        case 2, 3, 4:
            break
        default:
            preconditionFailure("paging level \(info.level) is not 0, 2, 3 or 4")
        }
        let maxPhys: UInt64 = info.physicalAddressBits >= 64 ? 0 : ~((UInt64(1) << UInt64(info.physicalAddressBits)) - 1)
        // Reserved: bits 51:MAXPHYADDR (and 63 without NXE) in 64-bit entries.
        let highReserved: UInt64 = info.level == 2 ? 0 : (maxPhys & 0x000F_FFFF_FFFF_FFFF) | (info.nxe ? 0 : 1 << 63)

        var writable = true, user = true, executable = true
        var table: UInt64
        var levels: [(shift: UInt64, bits: UInt64)]
        switch info.level {
        case 2:
            table = info.topEntry & 0xFFFF_F000
            levels = [(22, 10), (12, 10)]
        case 3:
            // The 4-entry PDPT: its entries carry only P and the address;
            // a non-present or reserved-bit PDPTE faults.
            let pdpte = read((info.topEntry & 0xFFFF_FFE0) + ((gva >> 30) & 3) * 8, 8) ?? 0
            if pdpte & 1 == 0 { return fault(0) }
            if pdpte & (highReserved & ~(1 << 63) | 0x1E6 | (1 << 63)) != 0 { return fault(GuestWalkResult.present | GuestWalkResult.reserved) }
            table = pdpte & 0x000F_FFFF_FFFF_F000
            levels = [(21, 9), (12, 9)]
        default:
            table = info.topEntry & 0x000F_FFFF_FFFF_F000
            levels = [(39, 9), (30, 9), (21, 9), (12, 9)]
        }

        for (depth, level) in levels.enumerated() {
            let index = (gva >> level.shift) & ((1 << level.bits) - 1)
            guard let entry = read(table + index * UInt64(info.width), info.width) else { return fault(0) }
            if entry & 1 == 0 { return fault(0) }
            let isLast = depth == levels.count - 1
            let ps = entry & (1 << 7) != 0
            // Bit 7 means a large page only where one is allowed.
            let largeAllowed = info.level == 2 ? (depth == 0 && info.pse) : (level.shift == 21 || (level.shift == 30 && info.gigabytePages))
            var reserved = highReserved
            if info.level == 4 && depth == 0 { reserved |= 1 << 7 }  // PS in a PML4E
            if info.level == 4 && level.shift == 30 && !info.gigabytePages { reserved |= 1 << 7 }  // PS in a PDPTE without PDPE1GB
            if ps && largeAllowed && !isLast {
                // Large page: bits between 12 and the page size (except PAT at 12) are reserved.
                if info.level == 2 {
                    reserved |= 1 << 21  // 4 MiB PDE: bit 21 reserved; 20:13 are PSE-36 address bits
                    if info.physicalAddressBits < 40 { reserved |= ((UInt64(1) << UInt64(40 - info.physicalAddressBits)) - 1) << UInt64(13 + info.physicalAddressBits - 32) }
                } else {
                    reserved |= ((UInt64(1) << (level.shift - 13)) - 1) << 13
                }
            }
            if entry & reserved != 0 { return fault(GuestWalkResult.present | GuestWalkResult.reserved) }
            writable = writable && entry & 2 != 0
            user = user && entry & 4 != 0
            if info.nxe && entry & (1 << 63) != 0 { executable = false }
            if isLast || (ps && largeAllowed) {
                let size = UInt64(1) << level.shift
                var base: UInt64
                if info.level == 2 && !isLast {
                    base = (entry & 0xFFC0_0000) | ((entry >> 13) & 0xFF) << 32  // PSE-36
                } else {
                    base = entry & 0x000F_FFFF_FFFF_F000 & ~(size - 1)
                    if info.level == 2 { base &= 0xFFFF_F000 }
                }
                let gpa = base | (gva & (size - 1))
                // Access checks, in the SDM's terms.
                if info.isUserModeAccess && !user { return fault(GuestWalkResult.present) }
                if info.isWriteAccess && !writable && (info.isUserModeAccess || info.wp) { return fault(GuestWalkResult.present) }
                if info.isInstructionFetch && !executable { return fault(GuestWalkResult.present) }
                if !info.isUserModeAccess && user && info.isInstructionFetch && info.smep { return fault(GuestWalkResult.present) }
                if !info.isUserModeAccess && user && !info.isInstructionFetch && info.smap { return fault(GuestWalkResult.present) }
                return .translated(gpa: gpa, writable: writable, user: user, executable: executable, pageSize: size)
            }
            table = info.level == 2 ? entry & 0xFFFF_F000 : entry & 0x000F_FFFF_FFFF_F000
        }
        preconditionFailure("unreachable: the last level always translates")
    }
}
