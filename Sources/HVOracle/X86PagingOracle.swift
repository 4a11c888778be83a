import Foundation
import HVCore

/// The x86 guest-paging differential for the modes this KVM cannot enter:
/// 32-bit paging (with PSE 4 MiB pages) and PAE (with NX). Random guest
/// tables from `GuestTableBuilder`; QEMU's x86 CPU runs the probe program
/// over them with CR0.WP set, at CPL 0 (with or without CR4.SMEP and SMAP)
/// or at CPL 3, reading, writing and executing in every probe page; HVKit's `GuestPageWalker` predicts each outcome and
/// each page-fault error code (docs/oracle-protocol.md).
public struct X86PagingOracle {
    /// The program's CPL 3 trampolines and user stack: the only user pages of the identity map.
    static let userPages: [UInt64] = [0x1F_0000, 0x1F_1000]
    static let programBase: UInt64 = 0x10_0000
    static let paramsBase: UInt64 = 0x20_0000
    static let tableArea: UInt64 = 0x40_0000
    static let dataBase: UInt64 = 0x100_0000
    static let dataSize: UInt64 = 64 << 20
    /// 32-bit paging's PSE-36 pages: tagged RAM above 4 GiB whose low 32
    /// address bits fall on the data pages, so a walker that dropped bits
    /// 39:32 would expect a low data page's tag and see the high one's.
    static let highBase: UInt64 = 0x1_0100_0000
    static let highSize: UInt64 = 16 << 20
    /// A high page's tag: its page number with bit 31 set (a low tag is an address below 2^31).
    static func highTag(_ gpa: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: gpa >> 12) | 0x8000_0000 }
    /// QEMU's -cpu max,phys-bits=40: the MAXPHYADDR the walker assumes.
    static let physicalBits = 40

    /// A seeded bug in HVKit's walker for the teeth check.
    public enum SeededWalkerBug: String, Sendable, CaseIterable {
        /// Ignores CR0.WP: supervisor writes to read-only pages predicted to succeed.
        case ignoresWP = "ignores-wp"
        /// Ignores NX (PAE) / treats every page as executable.
        case ignoresNX = "ignores-nx"
        /// Walks a CPL 3 access as a supervisor one.
        case forgetsUserMode = "forgets-cpl3"
        /// Ignores CR4.SMEP and CR4.SMAP.
        case ignoresSMEPSMAP = "ignores-smep-smap"
        /// Drops PSE-36's address bits 39:32 (32-bit paging).
        case dropsPSE36 = "drops-pse36"
        /// Answers one page off (the teeth of the no-paging run, whose only
        /// check is that the address does not change).
        case pageOff = "page-off"
    }

    public let mode: Int   // 2 = 32-bit, 3 = PAE
    public let seed: UInt64
    public let probes: Int
    public let bug: SeededWalkerBug?
    /// Every access at CPL 3 (user mode) instead of CPL 0.
    public let user: Bool
    /// CR4.SMEP and CR4.SMAP (supervisor fetches from and data accesses to user pages fault).
    public let smepSmap: Bool

    public init(mode: Int, seed: UInt64, probes: Int, bug: SeededWalkerBug? = nil, user: Bool = false, smepSmap: Bool = false) {
        precondition([0, 2, 3, 4].contains(mode) && !(mode == 0 && (user || smepSmap)), "no paging (0, CPL 0), 32-bit (2), PAE (3) or 4-level (4)")
        self.mode = mode
        self.seed = seed
        self.probes = probes
        self.bug = bug
        self.user = user
        self.smepSmap = smepSmap
    }

    /// QEMU 7.2 (TCG) reports a reserved-bit page fault with RSVD set and
    /// P clear; the SDM (4.7, the RSVD flag): "reserved bits are not checked
    /// in a paging-structure entry whose P flag is 0, bit 3 of the error code
    /// can be set only if bit 0 is also set".
    public static let rsvdWithoutP = OracleDefect(
        name: "qemu-x86-rsvd-without-p",
        evidence: "QEMU 7.2 TCG delivers reserved-bit #PF error codes with P = 0; SDM 4.7: RSVD can be set only if P is also set",
        applies: { _ in true })

    /// Whether QEMU's error code is HVKit's, or HVKit's but for the P bit
    /// the defect clears.
    static func match(_ qemu: UInt32, _ hvkit: UInt32) -> (agrees: Bool, byDefect: Bool) {
        if qemu == hvkit { return (true, false) }
        if qemu != 0xFFFF_FFFF, qemu & 0b1001 == 0b1000, qemu | 1 == hvkit { return (true, true) }
        return (false, false)
    }

    public var name: String {
        (mode == 0 ? "x86-none" : mode == 2 ? "x86-32" : mode == 3 ? "x86-pae" : "x86-64") + (user ? " CPL 3" : " CPL 0") + (smepSmap ? " SMEP SMAP" : "") + (bug.map { " with seeded walker bug \($0.rawValue)" } ?? "")
    }

    func info(_ cr3: UInt64, write: Bool = false, fetch: Bool = false) -> GuestPageWalkInfo {
        var i = GuestPageWalkInfo(topEntry: cr3, level: mode)
        i.pse = mode == 2
        i.wp = bug != .ignoresWP
        i.nxe = mode >= 3 && bug != .ignoresNX
        i.physicalAddressBits = Self.physicalBits
        i.isUserModeAccess = user && bug != .forgetsUserMode
        i.smep = smepSmap && bug != .ignoresSMEPSMAP
        i.smap = smepSmap && bug != .ignoresSMEPSMAP
        i.isWriteAccess = write
        i.isInstructionFetch = fetch
        return i
    }

    public func run(progress: (String) -> Void = { _ in }) throws(OracleError) -> OracleReport {
        let started = ContinuousClock.now
        var report = OracleReport(name: name)
        // Guest memory the builder writes its tables into (HVKit's own address space).
        let pool = HeapFramePool(capacity: 16 << 20, physicalBase: HostPhysAddr(1 << 32))
        let space: EPTAddrSpace
        var builder: GuestTableBuilder
        do {
            space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
            try space.mapAlloc(GuestPhysAddr(Self.tableArea), size: 8 << 20, flags: .readWrite, populate: .eager)
            builder = try GuestTableBuilder(space: space, level: mode, tableArea: Self.tableArea, seed: seed)
            if mode == 2 { builder.pse36Target = (Self.highBase, Self.highSize) }
            // The program, its data, stack and parameters: identity, writable, supervisor.
            for page in stride(from: UInt64(0x10_0000), to: 0x30_0000, by: 0x1000) { try builder.mapIdentityCodePage(page, user: Self.userPages.contains(page)) }
        } catch { throw .malformedAnswer("cannot build the guest tables: \(error)") }
        var rng = SplitMix64(seed: seed ^ 0x5836)
        // Random GVAs over 4 GiB (4-level: the 48-bit canonical space, both
        // halves), outside the identity range, to random data pages.
        func randomGVA() -> UInt64 {
            // Without paging, RAM only (past it, MMIO): the tables area and the data pages.
            if mode == 0 { return Self.tableArea + rng.below(Self.dataBase + Self.dataSize - Self.tableArea) & ~0xFFF }
            guard mode == 4 else { return rng.below(1 << 32) & ~0xFFF }
            let low = rng.below(1 << 47) & ~0xFFF
            return rng.below(4) == 0 ? low | 0xFFFF_8000_0000_0000 : low
        }
        var pages: [UInt64] = []
        // 4-level tables cost up to three frames a mapping: fewer, to stay inside the table area.
        for _ in 0..<(mode == 4 ? 600 : 1500) {
            let gva = randomGVA()
            if gva < 0x40_0000 { continue }
            do { try builder.map(gva, targetBase: Self.dataBase, targetSpan: Self.dataSize) } catch { throw .malformedAnswer("\(error)") }
            pages.append(gva)
        }
        report.mappings = pages.count
        var probeList: [UInt64] = []
        while probeList.count < probes {
            // Mostly mapped pages (and the pages beside them), some anywhere.
            let r = rng.below(10)
            let gva: UInt64 = r < 7 ? pages[Int(rng.below(UInt64(pages.count)))] + (r == 6 ? 0x1000 : 0) : randomGVA()
            if gva < 0x40_0000 || (mode != 4 && gva >= 1 << 32) { continue }
            probeList.append(gva)
        }
        let read = { (gpa: UInt64, width: Int) -> UInt64? in
            width == 4 ? (try? space.read(UInt32.self, at: GuestPhysAddr(gpa))).map(UInt64.init) : try? space.read(UInt64.self, at: GuestPhysAddr(gpa))
        }
        let cr3 = builder.root
        struct Prediction { let read: UInt32, value: UInt32?, write: UInt32, fetch: UInt32?, walk: String }
        func code(_ r: GuestWalkResult) -> UInt32 { if case let .fault(c) = r { c } else { 0xFFFF_FFFF } }
        let walk = { (gva: UInt64, i: GuestPageWalkInfo) -> GuestWalkResult in
            let r = GuestPageWalker.walk(gva, i, read: read)
            guard bug == .dropsPSE36 || bug == .pageOff, case let .translated(g, w, u, x, size) = r else { return r }
            return .translated(gpa: bug == .pageOff ? g + 0x1000 : g & 0xFFFF_FFFF, writable: w, user: u, executable: x, pageSize: size)
        }
        let predictions: [Prediction] = probeList.map { gva in
            let rd = walk(gva, info(cr3))
            let wr = walk(gva, info(cr3, write: true))
            let fx = walk(gva + 8, info(cr3, fetch: true))
            // Fetch only where it lands on a data page (RET); elsewhere it is not tried.
            let fetchSafe = fx.gpa.map { $0 >= Self.dataBase && $0 < Self.dataBase + Self.dataSize } ?? true
            let value = rd.gpa.flatMap { g -> UInt32? in
                if g >= Self.dataBase && g < Self.dataBase + Self.dataSize { return UInt32(g & ~0xFFF) }
                if mode == 2 && g >= Self.highBase && g < Self.highBase + Self.highSize { return Self.highTag(g) }
                return nil
            }
            return Prediction(read: code(rd), value: rd.gpa == nil ? nil : value, write: code(wr), fetch: fetchSafe ? code(fx) : nil,
                              walk: "read \(rd), write \(wr), fetch \(fx)")
        }
        progress("\(name): \(pages.count) mapped pages, \(probeList.count) probes; assembling and starting qemu-system-x86_64")
        let program = mode == 4
            ? try CrossAssembler.elf("x86-64-paging", assembler: "as", assemblerFlags: ["--64"], linker: "ld", linkerFlags: ["-m", "elf_x86_64", "--section-start=.user=0x1f0000"],
                                     base: Self.programBase, convert: ["-I", "elf64-x86-64", "-O", "elf32-i386"])
            : try CrossAssembler.elf("x86-paging", assembler: "as", assemblerFlags: ["--32"], linker: "ld", linkerFlags: ["-m", "elf_i386", "--section-start=.user=0x1f0000"], base: Self.programBase)
        let tables: Data
        do { tables = Data(try space.readBytes(GuestPhysAddr(Self.tableArea), count: Int(builder.next - Self.tableArea))) } catch { throw .malformedAnswer("\(error)") }
        var params: [UInt64] = [0x4C43_5241_4F4B_5648, UInt64(mode), cr3, UInt64(probeList.count), Self.dataBase, Self.dataBase + Self.dataSize,
                                user ? 3 : 0, smepSmap ? (1 << 20 | 1 << 21) : 0]
        params += zip(probeList, predictions).map { gva, p in
            mode == 4 ? gva & 0xFFFF_FFFF_FFFF | (p.fetch == nil ? 0 : 1 << 63) : gva | (p.fetch == nil ? 0 : 1 << 32)
        }
        let machine = QEMUMachine(binary: "qemu-system-x86_64", arguments: [
            "-cpu", "max,phys-bits=40", "-m", mode == 2 ? "4672M" : "128M", "-kernel", program.path, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ], exitStatus: 1, startLine: "S")
        var images = [(QEMUMachine.words(params), Self.paramsBase), (tables, Self.tableArea)]
        if mode == 2 {
            // The tagged RAM above 4 GiB: each page's first dword is its tag.
            var high = Data(count: Int(Self.highSize))
            for page in stride(from: 0, to: Int(Self.highSize), by: 4096) {
                var tag = Self.highTag(Self.highBase + UInt64(page)).littleEndian
                withUnsafeBytes(of: &tag) { high.replaceSubrange(page..<(page + 4), with: $0) }
            }
            images.append((high, Self.highBase))
        }
        let lines = try machine.run(program: nil, at: 0, images: images, expectedLines: probeList.count)
        for (i, gva) in probeList.enumerated() {
            let f = lines[i].split(separator: " ").compactMap { UInt32($0, radix: 16) }
            guard f.count == 4 else { throw .malformedAnswer("line \(i + 1): \(lines[i])") }
            let p = predictions[i]
            let checks: [(agrees: Bool, byDefect: Bool)] = [Self.match(f[0], p.read), Self.match(f[2], p.write), p.fetch.map { Self.match(f[3], $0) } ?? (true, false)]
            let agrees = checks.allSatisfy(\.agrees) && (p.value == nil || f[1] == p.value!)
            if agrees, checks.contains(where: \.byDefect) {
                // Equal but for the P bit of a reserved-bit fault: kept out, counted.
                report.excluded[Self.rsvdWithoutP.name, default: 0] += 1
                report.excludedDisagreeing[Self.rsvdWithoutP.name, default: 0] += 1
                continue
            }
            report.compared += 1
            guard !agrees else { continue }
            report.disagreementCount += 1
            if report.disagreements.count < 20 {
                report.disagreements.append(.init(
                    probe: gva,
                    hvkit: "read \(hex(UInt64(p.read))) value \(p.value.map { hex(UInt64($0)) } ?? "-") write \(hex(UInt64(p.write))) fetch \(p.fetch.map { hex(UInt64($0)) } ?? "not tried")",
                    walk: [p.walk],
                    qemu: "read \(hex(UInt64(f[0]))) value \(hex(UInt64(f[1]))) write \(hex(UInt64(f[2]))) fetch \(hex(UInt64(f[3])))",
                    replay: "// GuestPageWalker.walk(\(hex(gva)), GuestPageWalkInfo(topEntry: \(hex(cr3)), level: \(mode)) ...) over the tables of seed \(hex(seed))"))
            }
        }
        report.seconds = OracleTables.seconds(since: started)
        return report
    }
}
