import HVCore

/// What the nested-format oracles share: the random leaves they map, the
/// probes they choose, the image rewrites of the teeth checks, HVKit's walk
/// as printed beside a disagreement, and the replay test.
struct OracleMapping {
    let gpa: UInt64, size: PageSize, hpa: UInt64, flags: MappingFlags
}

enum OracleTables {
    static let flagChoices: [MappingFlags] = [
        .read, .readWrite, [.read, .execute], .rwx, .execute, [.read, .write, .user], [.read, .device], [.read, .write, .uncached],
        [.read, .write, .device, .uncached], [.read, .execute, .user],
    ]

    /// About 400 leaves: one in 50 of 1 GiB, one in 5 of 2 MiB, the rest
    /// 4 KiB, at random GPAs below 2^bits that `place` may adjust, to the
    /// host addresses `host` picks; leaves that would overlap are skipped.
    static func map<F: PageTableFormat>(_ table: NestedPageTable<F>, _ rng: inout SplitMix64,
                                        place: (UInt64, inout SplitMix64) -> UInt64,
                                        host: (PageSize, inout SplitMix64) -> UInt64) -> [OracleMapping] {
        var out: [OracleMapping] = []
        let bits = UInt64(F.guestAddressBits)
        for i in 0..<400 {
            let size: PageSize = i % 50 == 0 ? .size1G : i % 5 == 0 ? .size2M : .size4K
            let gpa = place(rng.next() & ((1 << bits) - 1), &rng) & ~(size.bytes - 1)
            let hpa = host(size, &rng)
            let flags = flagChoices[Int(rng.below(UInt64(flagChoices.count)))]
            do {
                try table.map(GuestPhysAddr(gpa), to: HostPhysAddr(hpa), size: size, flags: flags)
                out.append(OracleMapping(gpa: gpa, size: size, hpa: hpa, flags: flags))
            } catch { continue }
        }
        return out
    }

    /// Every leaf's first and last word, then random words inside leaves
    /// (seven in ten) and anywhere below 2^bits.
    static func probes(_ mappings: [OracleMapping], count: Int, bits: Int, _ rng: inout SplitMix64) -> [UInt64] {
        var out: [UInt64] = mappings.flatMap { [$0.gpa, $0.gpa + $0.size.bytes - 8] }
        while out.count < count {
            if rng.below(10) < 7, !mappings.isEmpty {
                let m = mappings[Int(rng.below(UInt64(mappings.count)))]
                out.append(m.gpa + (rng.below(m.size.bytes) & ~7))
            } else {
                out.append(rng.next() & ((1 << UInt64(bits)) - 1) & ~7)
            }
        }
        return Array(out.prefix(count))
    }

    /// Rewrites every leaf entry of the table in place (a seeded encoding bug).
    static func rewriteLeaves<F: PageTableFormat>(_ table: NestedPageTable<F>, _ change: (UInt64) -> UInt64) {
        func visit(_ base: UInt64, _ level: Int) {
            let entries = table.allocator.directMap.pointer(base)!.assumingMemoryBound(to: UInt64.self)
            for i in 0..<F.entries(level: level) where F.isPresent(entries[i]) {
                if F.isLeaf(entries[i], level: level) { entries[i] = change(entries[i]) } else if level > 0 { visit(F.tableAddress(entries[i]), level - 1) }
            }
        }
        visit(table.root.raw, F.levels - 1)
    }

    /// Every entry the walk of `gpa` reads, root first, each named by `label(level)`.
    static func walk<F: PageTableFormat>(_ table: NestedPageTable<F>, _ gpa: UInt64, label: (Int) -> String) -> [String] {
        var out: [String] = []
        var base = table.root.raw
        for level in stride(from: F.levels - 1, through: 0, by: -1) {
            let slot = F.index(gpa, level: level)
            let e = table.allocator.directMap.pointer(base)!.assumingMemoryBound(to: UInt64.self)[slot]
            out.append("\(label(level))[\(slot)] = \(hex(e))")
            guard F.isPresent(e), !F.isLeaf(e, level: level), level > 0 else { break }
            base = F.tableAddress(e)
        }
        return out
    }

    /// The one leaf and the one probe, as a test to paste.
    static func replayTest<F: PageTableFormat>(_: F.Type, _ leaf: OracleMapping?, _ probe: UInt64, poolBase: UInt64, qemu: String) -> String {
        let map = leaf.map { "try t.map(GuestPhysAddr(\(hex($0.gpa))), to: HostPhysAddr(\(hex($0.hpa))), size: .\($0.size == .size4K ? "size4K" : $0.size == .size2M ? "size2M" : "size1G"), flags: MappingFlags(rawValue: \(hex($0.flags.rawValue))))" } ?? "// no leaf maps the probe"
        return """
        @Test func qemuDisagreement() throws {
            let t = try NestedPageTable<\(F.self)>(allocator: HeapFramePool(capacity: 16 << 20, physicalBase: HostPhysAddr(\(hex(poolBase)))))
            \(map)
            // QEMU answered \(qemu) for \(hex(probe)).
            let answer = t.query(GuestPhysAddr(\(hex(probe))))
            #expect(answer != nil)
        }
        """
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
