import HVCore
import PropertyBased
import Testing
import TestSupport

/// One operation on a table, in terms a failing case can be read back from.
enum TableOp: Sendable, CustomStringConvertible {
    case map(gpa: UInt64, size: UInt64, hpa: UInt64, flags: MappingFlags, allowHuge: Bool)
    case unmap(gpa: UInt64, size: UInt64)
    case protect(gpa: UInt64, size: UInt64, flags: MappingFlags)

    var description: String {
        switch self {
        case let .map(g, s, h, f, huge):
            "try t.mapRegion(GuestPhysAddr(\(hex(g))), to: HostPhysAddr(\(hex(h))), size: \(hex(s)), flags: MappingFlags(rawValue: \(hex(f.rawValue))), allowHuge: \(huge))"
        case let .unmap(g, s):
            "try t.unmap(GuestPhysAddr(\(hex(g))), size: \(hex(s)))"
        case let .protect(g, s, f):
            "try t.protect(GuestPhysAddr(\(hex(g))), size: \(hex(s)), flags: MappingFlags(rawValue: \(hex(f.rawValue))))"
        }
    }
}

/// Addresses in [0, 4 GiB) that are 1 GiB, 2 MiB or only 4 KiB aligned, so
/// every leaf size and every split is exercised.
let opAddress = zip(Gen<UInt64>.uint64(in: 0...3), Gen<UInt64>.uint64(in: 0...511), Gen<UInt64>.uint64(in: 0...511), Gen<Int>.int(in: 0...2))
    .map { g, m, k, alignment -> UInt64 in
        g * gib + (alignment >= 1 ? m * mib2 : 0) + (alignment >= 2 ? k * kib4 : 0)
    }

let opSize = Gen<UInt64?>.element(of: [kib4, 2 * kib4, 5 * kib4, mib2 - kib4, mib2, mib2 + kib4, 3 * mib2, gib, gib + mib2]).map { $0! }

let tableOp = zip(Gen<Int>.int(in: 0...5), opAddress, opSize, zip(opAddress, mappableFlags, Gen<Bool>.bool))
    .map { kind, gpa, size, extra -> TableOp in
        let (hostBase, flags, huge) = extra
        switch kind {
        case 0, 1, 2:
            // Big regions keep huge leaves so a case stays small; the host
            // side keeps the guest side's alignment most of the time.
            let big = size >= gib
            let hpa = (big ? hostBase & ~(mib2 - 1) : hostBase) + 8 * gib
            return .map(gpa: big ? gpa & ~(mib2 - 1) : gpa, size: size, hpa: hpa, flags: flags, allowHuge: huge || big)
        case 3, 4: return .unmap(gpa: gpa, size: size)
        default: return .protect(gpa: gpa, size: size, flags: flags)
        }
    }

@Suite("EPT page table against the interval model")
struct PageTableModelTests {
    /// Runs `ops` on a fresh table and on the model in lockstep. Returns the
    /// first disagreement, if any.
    static func run(_ ops: [TableOp]) throws -> String? { try run(ops, format: EPTFormat.self) }

    static func run<F: PageTableFormat>(_ ops: [TableOp], format: F.Type) throws -> String? {
        let f = try FormatTableFixture<F>(capacityFrames: 8192)
        let t = f.table
        var model = IntervalModel()
        let limit = UInt64(1) << UInt64(F.guestAddressBits)
        for (step, op) in ops.enumerated() {
            // A narrow format (a 32-bit IPA) refuses what lies past its width, and changes nothing.
            let (g0, s0): (UInt64, UInt64) = switch op {
            case let .map(g, s, _, _, _): (g, s)
            case let .unmap(g, s): (g, s)
            case let .protect(g, s, _): (g, s)
            }
            if g0 + s0 > limit {
                let before = t.leaves
                do {
                    switch op {
                    case let .map(g, s, h, flags, huge): try t.mapRegion(GuestPhysAddr(g), to: HostPhysAddr(h), size: s, flags: flags, allowHuge: huge)
                    case let .unmap(g, s): try t.unmap(GuestPhysAddr(g), size: s)
                    case let .protect(g, s, flags): try t.protect(GuestPhysAddr(g), size: s, flags: flags)
                    }
                    return "step \(step): \(op) past the \(F.guestAddressBits)-bit range was accepted"
                } catch {
                    guard case .guestAddressOutOfRange = error else { return "step \(step): \(op): \(error)" }
                }
                if t.leaves != before { return "step \(step): a refused \(op) changed the table" }
                continue
            }
            switch op {
            case let .map(g, s, h, flags, huge):
                do {
                    try t.mapRegion(GuestPhysAddr(g), to: HostPhysAddr(h), size: s, flags: flags, allowHuge: huge)
                    if model.overlaps(g, s) { return "step \(step): \(op) succeeded over an existing mapping" }
                    model.map(g, s, h, flags)
                } catch {
                    guard case .alreadyMapped = error else { return "step \(step): \(op) failed: \(error)" }
                    if !model.overlaps(g, s) { return "step \(step): \(op) refused, nothing was mapped there" }
                }
            case let .unmap(g, s):
                let removed = try t.unmap(GuestPhysAddr(g), size: s)
                let expected = model.update(g, s) { _ in nil }
                if removed != expected { return "step \(step): \(op) removed \(hex(removed)), model \(hex(expected))" }
            case let .protect(g, s, flags):
                let touched = try t.protect(GuestPhysAddr(g), size: s, flags: flags)
                let expected = model.update(g, s) { _ in flags }
                if touched != expected { return "step \(step): \(op) touched \(hex(touched)), model \(hex(expected))" }
            }
            let actual = IntervalModel.from(leaves: t.leaves)
            if actual.normalized != model.normalized {
                return "step \(step): \(op)\ntable:\n\(actual)\nmodel:\n\(model)"
            }
            // Spot queries at every interval edge and just outside it.
            for i in model.intervals {
                for g in [i.gpa, i.end - 1, i.gpa &- 1, i.end] {
                    let q = t.query(GuestPhysAddr(g))
                    let m = model.translate(g)
                    if q?.hostAddress.raw != m?.hpa || q?.flags != m?.flags {
                        return "step \(step): query \(hex(g)) = \(String(describing: q)), model \(String(describing: m))"
                    }
                    if let q, !q.hostAddress.isAligned(to: .size4K) == !HostPhysAddr(m!.hpa).isAligned(to: .size4K),
                       q.leafStart.raw % q.pageSize.bytes != 0 {
                        return "step \(step): leaf \(q.leafStart) is not aligned to \(q.pageSize)"
                    }
                }
            }
            let problems = t.invariantViolations()
            if !problems.isEmpty { return "step \(step): \(op): \(problems)" }
            if f.tracker.liveFrames != t.tableFrameCount { return "step \(step): live frames \(f.tracker.liveFrames) != tables \(t.tableFrameCount)" }
        }
        try t.unmap(GuestPhysAddr(0), size: 1 << UInt64(F.guestAddressBits))
        if f.tracker.liveFrames != F.rootFrames { return "after unmapping everything \(f.tracker.liveFrames) frames are live, expected the root's \(F.rootFrames) only" }
        return nil
    }

    @Test func randomOperationSequencesAgreeWithTheModel() async {
        await propertyCheck(count: 150, input: tableOp.array(of: 1...14)) { ops in
            let failure = try Self.run(ops)
            #expect(failure == nil, "\(failure ?? "")\nreplay:\n\(ops.map { "    " + $0.description }.joined(separator: "\n"))")
        }
    }

    /// The same property on every other format: whatever the encoding, the
    /// leaves the table holds decode to exactly what was mapped.
    @Test(arguments: ["stage2-32", "stage2-36", "stage2-40", "stage2-42", "stage2-44", "stage2-48", "sv39x4", "sv48x4"])
    func everyFormatAgreesWithTheModel(_ format: String) async {
        await propertyCheck(count: 100, input: tableOp.array(of: 1...14)) { ops in
            let failure: String? = switch format {
            case "stage2-32": try Self.run(ops, format: Stage2IPA32Format.self)
            case "stage2-36": try Self.run(ops, format: Stage2IPA36Format.self)
            case "stage2-40": try Self.run(ops, format: Stage2IPA40Format.self)
            case "stage2-42": try Self.run(ops, format: Stage2IPA42Format.self)
            case "stage2-44": try Self.run(ops, format: Stage2IPA44Format.self)
            case "stage2-48": try Self.run(ops, format: Stage2IPA48Format.self)
            case "sv39x4": try Self.run(ops, format: Sv39x4Format.self)
            default: try Self.run(ops, format: Sv48x4Format.self)
            }
            #expect(failure == nil, "\(format): \(failure ?? "")\nreplay:\n\(ops.map { "    " + $0.description }.joined(separator: "\n"))")
        }
    }
}
