import HVCore

/// Builds random guest page tables in guest memory for one paging mode:
/// random permissions, now and then a non-present entry, a reserved bit, a
/// read-only table entry, huge pages. Shared by the KVM_TRANSLATE
/// differential and the QEMU oracle.
public struct GuestTableBuilder {
    public let space: EPTAddrSpace
    public let level: Int
    /// The next free table frame (guest-physical).
    public var next: UInt64
    public var rng: SplitMix64
    public let root: UInt64
    /// Where some 32-bit-paging 4 MiB pages go above 4 GiB through PSE-36
    /// (the physical address's bits 39:32 in PDE bits 20:13); nil: never.
    public var pse36Target: (base: UInt64, span: UInt64)?

    public init(space: EPTAddrSpace, level: Int, tableArea: UInt64, seed: UInt64) throws {
        self.space = space
        self.level = level
        next = tableArea
        rng = SplitMix64(seed: seed)
        root = next
        next += 0x1000
    }

    public var width: Int { level == 2 ? 4 : 8 }

    public func readEntry(_ gpa: UInt64) -> UInt64 {
        width == 4 ? UInt64((try? space.read(UInt32.self, at: GuestPhysAddr(gpa))) ?? 0) : (try? space.read(UInt64.self, at: GuestPhysAddr(gpa))) ?? 0
    }

    public func writeEntry(_ gpa: UInt64, _ value: UInt64) throws {
        if width == 4 { try space.write(UInt32(truncatingIfNeeded: value), at: GuestPhysAddr(gpa)) } else { try space.write(value, at: GuestPhysAddr(gpa)) }
    }

    public mutating func newTable() -> UInt64 { defer { next += 0x1000 }; return next }

    /// Random permission and attribute bits for an entry, now and then a
    /// non-present one or one with a reserved bit.
    public mutating func flags(leafLevelShift: UInt64?) -> UInt64 {
        var f: UInt64 = 1 | (rng.below(2) << 1) | (rng.below(2) << 2)
        if rng.below(40) == 0 { f &= ~1 }  // not present
        if level != 2, rng.below(8) == 0 { f |= 1 << 63 }  // NX
        if rng.below(60) == 0 { f |= level == 2 ? (leafLevelShift == 22 ? 1 << 21 : 0) : 1 << 51 }  // reserved (MAXPHYADDR < 52)
        return f
    }

    /// The first table to walk for `gva` and the shifts of the levels
    /// below it (for PAE, creating the page directory its PDPTE needs).
    public mutating func start(_ gva: UInt64) throws -> (table: UInt64, shifts: [UInt64]) {
        switch level {
        case 2: return (root, [22, 12])
        case 3:
            let slot = root + ((gva >> 30) & 3) * 8
            var pdpte = readEntry(slot)
            if pdpte & 1 == 0 { pdpte = newTable() | 1; try writeEntry(slot, pdpte) }
            return (pdpte & 0x0007_FFFF_FFFF_F000, [21, 12])
        default: return (root, [39, 30, 21, 12])
        }
    }

    /// Maps the code page identically, present and writable, so the vCPU
    /// can run a few instructions in this mode.
    public mutating func mapIdentityCodePage(_ page: UInt64, user: Bool = false) throws {
        var (table, shifts) = try start(page)
        for (depth, shift) in shifts.enumerated() {
            let bits: UInt64 = level == 2 ? 10 : 9
            let slot = table + ((page >> shift) & ((1 << bits) - 1)) * UInt64(width)
            if depth == shifts.count - 1 { try writeEntry(slot, page | (user ? 0x7 : 0x3)); return }
            let entry = readEntry(slot)
            if entry & 1 != 0 { table = entry & 0x0007_FFFF_F000; continue }
            let child = newTable()
            try writeEntry(slot, child | 0x7)
            table = child
        }
    }

    /// Maps `gva` to a random guest-physical page (sometimes with a huge page).
    public mutating func map(_ gva: UInt64, targetBase: UInt64, targetSpan: UInt64) throws {
        var (table, shifts) = try start(gva)
        for (depth, shift) in shifts.enumerated() {
            let bits: UInt64 = level == 2 ? 10 : 9
            let slot = table + ((gva >> shift) & ((1 << bits) - 1)) * UInt64(width)
            let entry = readEntry(slot)
            let isLast = depth == shifts.count - 1
            let largeOK = (level == 2 && shift == 22) || (level != 2 && (shift == 21 || (shift == 30 && level == 4)))
            if entry & 1 != 0 && (entry & (1 << 7) == 0 || !largeOK) && !isLast {
                table = entry & (level == 2 ? 0xFFFF_F000 : 0x0007_FFFF_FFFF_F000)  // bit 51 may be a planted reserved bit
                continue
            }
            if entry != 0 { return }  // already a leaf (or a deliberately broken entry) here
            let size = UInt64(1) << shift
            if isLast || (largeOK && rng.below(6) == 0) {
                var page = (targetBase + rng.below(max(1, targetSpan / size)) * size) & ~(size - 1)
                if level == 2, !isLast, let high = pse36Target, rng.below(3) == 0 {
                    page = (high.base + rng.below(max(1, high.span / size)) * size) & ~(size - 1)
                }
                var value = page | flags(leafLevelShift: shift) | (isLast ? 0 : 1 << 7)
                if level == 2 { value = value & 0xFFFF_FFFF | ((page >> 32) & 0xFF) << 13 }
                try writeEntry(slot, value)
                return
            }
            let child = newTable()
            var value = child | 0x7 | (flags(leafLevelShift: nil) & ~0x7 & ~(1 << 7))
            if rng.below(50) == 0 { value &= ~2 }  // a read-only table entry
            try writeEntry(slot, level == 2 ? value & 0xFFFF_FFFF : value)
            table = child
        }
    }
}

