import HVCore
import SMT

/// The guest page walker (`GuestPageWalker.walk`, generic over the domain)
/// against `X86PagingSpec`, for all entries on the path, all paging
/// controls (PSE, WP, NXE, SMEP, SMAP, PDPE1GB) and all access kinds; and
/// its access-rights kernel against the SDM's rules.
enum GuestWalkTheorems {
    /// One free word and one "guest memory is there" flag per walk step.
    struct PathMemory: GuestTableMemory {
        let entries: [SymBV], mapped: [SymBool]
        struct Read { let address: SymBV, width: Int, step: Int, active: SymBool }
        private(set) var reads: [Read] = []

        init(_ c: SMTContext, steps: Int) {
            entries = (0..<steps).map { c.bitVector("entry\($0)") }
            mapped = (0..<steps).map { c.boolean("mapped\($0)") }
        }

        mutating func read(_ address: SymBV, width: Int, step: Int, when active: SymBool) -> (value: SymBV, mapped: SymBool) {
            reads.append(Read(address: address, width: width, step: step, active: active))
            return (entries[step], mapped[step])
        }
    }

    /// The model's words, by step, for replaying on UInt64.
    struct StepMemory: GuestTableMemory {
        let entries: [UInt64], mapped: [Bool]
        func read(_ address: UInt64, width: Int, step: Int, when active: Bool) -> (value: UInt64, mapped: Bool) {
            (entries[step], mapped[step])
        }
    }

    /// A concrete answer, comparable: the translation, or the error code.
    struct Answer: Equatable, CustomStringConvertible {
        let translated: Bool, gpa: UInt64, size: UInt64, rights: [Bool], code: UInt64
        init(_ a: GuestWalkAnswer<UInt64>) {
            translated = a.translated
            (gpa, size, rights) = a.translated ? (a.gpa, a.pageSize, [a.writable, a.user, a.executable]) : (0, 0, [])
            code = a.translated ? 0 : a.errorCode
        }
        var description: String { translated ? "\(hex(gpa)) size \(hex(size)) W/U/X \(rights)" : "#PF \(hex(code))" }
    }

    static let controlNames = ["user", "write", "fetch", "pse", "wp", "nxe", "smap", "smep", "pdpe1gb"]

    static func controls(_ c: SMTContext) -> (GuestPagingControls<SymBV>, [SymBool]) {
        let b = controlNames.map { c.boolean($0) }
        return (GuestPagingControls(user: b[0], write: b[1], fetch: b[2], pse: b[3], wp: b[4], nxe: b[5], smap: b[6], smep: b[7], gigabytePages: b[8]), b)
    }

    static func concrete(_ b: [Bool]) -> GuestPagingControls<UInt64> {
        GuestPagingControls(user: b[0], write: b[1], fetch: b[2], pse: b[3], wp: b[4], nxe: b[5], smap: b[6], smep: b[7], gigabytePages: b[8])
    }

    /// A boolean as a reported input (0 or 1).
    static func asInput(_ name: String, _ b: SymBool, _ c: SMTContext) -> (name: String, value: SymBV) { (name, SymBV.select(b, c.c(1), c.c(0))) }

    /// How a wrong variant runs the shipped walker: with a wider MAXPHYADDR
    /// than the guest's, or believing a control that is not set.
    enum Mistake {
        case wider(Int), ignoresPSE, assumesGigabytePages
        func apply(_ m: Int, _ k: GuestPagingControls<SymBV>, _ c: SMTContext) -> (Int, GuestPagingControls<SymBV>) {
            var k = k
            switch self {
            case let .wider(bits): return (bits, k)
            case .ignoresPSE: k.pse = c.truth(false)
            case .assumesGigabytePages: k.gigabytePages = c.truth(true)
            }
            return (m, k)
        }
        func apply(_ m: Int, _ k: GuestPagingControls<UInt64>) -> (Int, GuestPagingControls<UInt64>) {
            var k = k
            switch self {
            case let .wider(bits): return (bits, k)
            case .ignoresPSE: k.pse = false
            case .assumesGigabytePages: k.gigabytePages = true
            }
            return (m, k)
        }
        var summary: String {
            switch self {
            case let .wider(bits): "the walker checks reserved bits against MAXPHYADDR \(bits), wider than the guest's"
            case .ignoresPSE: "the walker ignores CR4.PSE (a 4 MiB PDE read as a page-table pointer)"
            case .assumesGigabytePages: "the walker assumes 1 GiB pages (PS in a PDPTE accepted without PDPE1GB)"
            }
        }
    }

    static func walk(mode: Int, m: Int, label: String, mistake: Mistake) -> Theorem {
        let modeName = mode == 2 ? "32-bit" : mode == 3 ? "PAE" : "4-level"
        return Theorem("guest_walk_\(label)",
                       "for all entries on the path, paging controls and access kinds, the \(modeName) guest walk with MAXPHYADDR \(m) translates exactly when the SDM's translation and access rights allow, to the same address, page size and rights, reads each entry where the SDM says, and otherwise reports the SDM's error code",
                       wrong: mistake.summary) { c, variant in
            let spec = X86PagingSpec(mode: mode, m: m)
            let steps = spec.structures.count
            let gva = c.bv("gva"), cr3 = c.bv("cr3")
            let (k, flags) = controls(c)
            var memory = PathMemory(c, steps: steps)
            let (bits, walkerControls) = variant == .shipped ? (m, k) : mistake.apply(m, k, c)
            let a = GuestPageWalker.walk(&memory, gva, cr3: cr3, mode: mode, physicalAddressBits: bits, walkerControls)
            let s = spec.translate(c, gva: gva, cr3: cr3, controls: k, entry: { memory.entries[$0] }, mapped: { memory.mapped[$0] })
            let sameReads = memory.reads.map { r in
                r.active.iff(s.reads[r.step].reached).and(r.active.implies(r.address.equals(s.reads[r.step].address)))
            }
            let claims = [a.translated.iff(s.translated),
                          s.translated.implies(allOf(a.gpa.equals(s.gpa), a.pageSize.equals(s.pageSize))),
                          s.translated.implies(allOf(a.writable.iff(s.writable), a.user.iff(s.user), a.executable.iff(s.executable))),
                          s.translated.negated.implies(a.errorCode.equals(s.errorCode))] + sameReads
            // CR3 holds no bits past MAXPHYADDR (4-level) or 32 (the others);
            // a read and a write are never the same access as a fetch.
            let cr3Fits = cr3.shiftedRight(by: mode == 4 ? m : 32).isZero
            let inputs = [("gva", gva), ("cr3", cr3)] + memory.entries.enumerated().map { ("entry\($0.offset)", $0.element) }
                + memory.mapped.enumerated().map { asInput("mapped\($0.offset)", $0.element, c) }
                + zip(controlNames, flags).map { asInput($0.0, $0.1, c) }
            return Query(inputs: inputs, assumptions: [cr3Fits, k.write.and(k.fetch).negated], claims: claims, cases: s.stopsAt) { [memory] model in
                let concreteMemory = StepMemory(entries: memory.entries.map { model.value($0) }, mapped: memory.mapped.map { model.value($0) })
                let shippedControls = concrete(flags.map { model.value($0) })
                func run(_ bits: Int, _ k: GuestPagingControls<UInt64>) -> Answer {
                    var m = concreteMemory
                    return Answer(GuestPageWalker.walk(&m, model.value(gva), cr3: model.value(cr3), mode: mode, physicalAddressBits: bits, k))
                }
                let (wrongBits, wrongControls) = mistake.apply(m, shippedControls)
                return .computation(shipped: run(m, shippedControls), wrong: run(wrongBits, wrongControls))
            }
        }
    }

    static var all: [Theorem] {
        let walks = [walk(mode: 2, m: 36, label: "32bit_m36", mistake: .wider(40)),
                     walk(mode: 2, m: 46, label: "32bit_m46", mistake: .ignoresPSE),
                     walk(mode: 3, m: 36, label: "pae_m36", mistake: .wider(37)),
                     walk(mode: 3, m: 46, label: "pae_m46", mistake: .wider(47)),
                     walk(mode: 4, m: 46, label: "4level_m46", mistake: .wider(47)),
                     walk(mode: 4, m: 52, label: "4level_m52", mistake: .assumesGigabytePages)]
        let noPaging = Theorem("guest_walk_nopaging", "without paging every address translates to its low 32 bits, with every right",
                               wrong: "claims the whole 64-bit address is used") { c, variant in
            let gva = c.bv("gva")
            let (k, _) = controls(c)
            var memory = PathMemory(c, steps: 0)
            let a = GuestPageWalker.walk(&memory, gva, cr3: c.bv("cr3"), mode: 0, physicalAddressBits: 52, k)
            let expected = variant == .shipped ? gva.extract(31, 0).zeroExtended(by: 32) : gva
            return Query(inputs: [("gva", gva)], claim: allOf(a.translated, a.gpa.equals(expected), a.writable, a.user, a.executable,
                                                              a.pageSize.equals(c.c(0x1000)), memory.reads.isEmpty ? c.truth(true) : c.truth(false))) { model in
                var m = StepMemory(entries: [], mapped: [])
                let v = model.value(gva)
                let r = GuestPageWalker.walk(&m, v, cr3: 0, mode: 0, physicalAddressBits: 52, concrete(Array(repeating: false, count: 9)))
                return .claim(shippedHolds: r.gpa == v & 0xFFFF_FFFF, wrongHolds: r.gpa == v)
            }
        }
        let rights = Theorem("guest_access_rights",
                             "the walker's access decision is the SDM's (4.6) for every access kind, privilege, page U/S, R/W and XD, and CR0.WP, EFER.NXE, CR4.SMEP and CR4.SMAP",
                             wrong: "a supervisor write to a read-only page allowed even with CR0.WP set") { c, variant in
            let names = ["user", "write", "fetch", "page_user", "page_writable", "xd", "nxe", "wp", "smep", "smap"]
            let b = names.map { c.boolean($0) }
            func denied<D: BitVectorDomain>(_: D.Type, _ b: [D.Condition], _ variant: Variant) -> D.Condition {
                Kernels.x86AccessDenied(D.self, user: b[0], write: b[1], fetch: b[2], pageUser: b[3], pageWritable: b[4],
                                        pageExecutable: b[6].and(b[5]).negated, wp: variant == .shipped ? b[7] : .constant(false), smep: b[8], smap: b[9])
            }
            let allowed = X86PagingSpec.permitted(user: b[0], write: b[1], fetch: b[2], pageUser: b[3], pageWritable: b[4], xd: b[5],
                                                  nxe: b[6], wp: b[7], smep: b[8], smap: b[9])
            return Query(inputs: zip(names, b).map { asInput($0.0, $0.1, c) }, assumptions: [b[1].and(b[2]).negated],
                         claim: denied(SymBV.self, b, variant).negated.iff(allowed)) { model in
                let v = b.map { model.value($0) }
                return .computation(shipped: denied(UInt64.self, v, .shipped), wrong: denied(UInt64.self, v, .wrong))
            }
        }
        return walks + [noPaging, rights]
    }
}
