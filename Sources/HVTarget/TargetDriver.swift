import HVCore
import HVSpecs

/// What `hello` told the driver.
public struct TargetHello: Sendable, Equatable {
    public let name: String
    public let formats: [String]
    public let ops: [String]
    public let zeroesFrames: Bool

    /// Reads a `hello` answer; the reason when it is not one.
    public static func parse(_ v: JSONValue) -> Result<TargetHello, TargetMessage> {
        guard v["ok"]?.boolValue == true else { return .failure(TargetMessage("hello was refused: \(v)")) }
        guard let name = v["name"]?.stringValue else { return .failure(TargetMessage("hello: \"name\" must be a string")) }
        guard v["protocol"]?.intValue == TargetProtocol.version else {
            let theirs = v["protocol"].map(\.description) ?? "(none)"
            return .failure(TargetMessage("hello: the target speaks protocol \(theirs), the driver \(TargetProtocol.version)"))
        }
        guard let formats = v["formats"]?.arrayValue?.compactMap(\.stringValue), !formats.isEmpty else {
            return .failure(TargetMessage("hello: \"formats\" must be a non-empty array of strings"))
        }
        guard let ops = v["ops"]?.arrayValue?.compactMap(\.stringValue) else { return .failure(TargetMessage("hello: \"ops\" must be an array of strings")) }
        let missing = TargetProtocol.required.filter { !ops.contains($0) }
        guard missing.isEmpty else { return .failure(TargetMessage("hello: the target lacks required operations: \(missing.joined(separator: ", "))")) }
        guard let zeroes = v["zeroes_frames"]?.boolValue else { return .failure(TargetMessage("hello: \"zeroes_frames\" must be true or false")) }
        return .success(TargetHello(name: name, formats: formats, ops: ops, zeroesFrames: zeroes))
    }
}

/// A reason, as an error.
public struct TargetMessage: Error, Equatable, Sendable { public let text: String; public init(_ text: String) { self.text = text } }

/// A problem found in one case: a disagreement with the model, or the
/// target failing as a process (crash, hang, malformed answer).
public struct TargetFinding: Error, Sendable, Equatable, CustomStringConvertible {
    /// "disagreement", "crash", "hang", "malformed" or "spawn".
    public let kind: String
    /// 1-based index of the operation that caused it (0: set-up).
    public let step: Int
    public let message: String
    public var description: String { "\(kind) at step \(step): \(message)" }
}

/// The operations the protocol carries, from the model's generator.
public enum TargetOps {
    /// The request for `op`, or nil when the protocol has no such operation.
    public static func request(_ op: SpecOp) -> TargetRequest? {
        switch op {
        case let .mapLinear(s, g, h, size, f): .mapLinear(space: s, gpa: g, hpa: h, size: size, flags: f)
        case let .mapAlloc(s, g, size, f, eager): .mapAlloc(space: s, gpa: g, size: size, flags: f, eager: eager)
        case let .unmap(s, g, size): .unmap(space: s, gpa: g, size: size)
        case let .protect(s, g, size, f): .protect(space: s, gpa: g, size: size, flags: f)
        case let .fault(s, g, a): .fault(space: s, gpa: g, access: a)
        case let .write(s, g, v): .write(space: s, gpa: g, value: v)
        case let .read(s, g): .read(space: s, gpa: g)
        default: nil
        }
    }

    /// The model operation a replayed request stands for.
    public static func op(_ r: TargetRequest) -> SpecOp? {
        switch r {
        case let .mapLinear(s, g, h, size, f): .mapLinear(space: s, gpa: g, hpa: h, size: size, flags: f)
        case let .mapAlloc(s, g, size, f, eager): .mapAlloc(space: s, gpa: g, size: size, flags: f, eager: eager)
        case let .unmap(s, g, size): .unmap(space: s, gpa: g, size: size)
        case let .protect(s, g, size, f): .protect(space: s, gpa: g, size: size, flags: f)
        case let .fault(s, g, a): .fault(space: s, gpa: g, access: a)
        case let .write(s, g, v): .write(space: s, gpa: g, value: v)
        case let .read(s, g): .read(space: s, gpa: g)
        default: nil
        }
    }

    /// Case `i` of a campaign, kept to what the protocol carries.
    public static func generate(seed: UInt64, case i: Int, maxLength: Int) -> (spaces: Int, ops: [SpecOp]) {
        let (spaces, ops) = Campaign.generate(seed: seed, case: i, maxLength: maxLength)
        return (spaces, ops.filter { request($0) != nil })
    }
}

/// Runs one case against a fresh target process and the model in lockstep.
/// Frames the target allocates are bound to the model's tokens the way the
/// refinement check binds HVCore's: each token to one host frame, no frame
/// to two live tokens. Every page handed out is read back (at offsets 0,
/// 0xFF8 and wherever the case wrote) and must read zero, unless the
/// target said it does not zero frames; then that is noted once.
public final class TargetRun {
    public let format: NestedFormat
    public let timeoutMs: Int
    let process: TargetProcess
    var model: SpecState
    var frameOf: [FrameToken: UInt64] = [:]
    var tokenOf: [UInt64: FrameToken] = [:]
    var offsets: Set<UInt64> = [0, 0xFF8]
    var nextID = 1
    public private(set) var hello: TargetHello?
    public private(set) var notes: [String] = []
    public var requests: Int { process.requests }
    var step = 0
    let spaces: Int

    /// The managed range every space gets (the model checker's).
    public static let managed = try! GuestPhysRange(start: GuestPhysAddr(0), size: CheckerSetup.managedSize)

    public init(command: String, format: NestedFormat, spaces: Int, timeoutMs: Int) throws(TargetFailure) {
        self.format = format
        self.timeoutMs = timeoutMs
        self.spaces = spaces
        process = try TargetProcess(command: command)
        // No host memory for linear maps: a read or write through one is `not_host_memory`.
        model = SpecState(environment: SpecEnvironment(poolStart: 0, poolEnd: 0, managed: Array(repeating: Self.managed, count: spaces)))
    }

    /// Ends the process; its stderr's end.
    @discardableResult public func stop() -> String { process.stop() }

    func finding(_ kind: String, _ message: String) -> TargetFinding { TargetFinding(kind: kind, step: step, message: message) }

    /// One request and its answer, or the finding its failure is.
    func send(_ r: TargetRequest) -> Result<JSONValue, TargetFinding> {
        let id = nextID
        nextID += 1
        switch process.exchange(r.json(id: id), timeoutMs: timeoutMs) {
        case let .failure(f): return .failure(finding(f.kind, "\(r.op): \(f)"))
        case let .success(v):
            guard case .object = v else { return .failure(finding("malformed", "\(r.op): the answer is not a JSON object: \(v)")) }
            guard v["id"]?.intValue == Int64(id) else { return .failure(finding("malformed", "\(r.op): answer \(v) does not carry id \(id)")) }
            guard let ok = v["ok"]?.boolValue else { return .failure(finding("malformed", "\(r.op): \"ok\" must be true or false in \(v)")) }
            if !ok {
                guard let c = v["error"]?.stringValue, ErrorCategory(rawValue: c) != nil else {
                    return .failure(finding("malformed", "\(r.op): \"error\" must be one of the categories (\(ErrorCategory.allCases.map(\.rawValue).joined(separator: ", "))) in \(v)"))
                }
            }
            return .success(v)
        }
    }

    /// hello, then one new_space per space.
    public func start() -> TargetFinding? {
        switch send(.hello) {
        case let .failure(f): return f
        case let .success(v):
            switch TargetHello.parse(v) {
            case let .failure(m): return finding("malformed", m.text)
            case let .success(h):
                hello = h
                guard h.formats.contains(format.rawValue) else { return finding("unsupported", "the target does not support format \(format)") }
            }
        }
        for s in 0..<spaces {
            switch send(.newSpace(space: s, format: format.rawValue, start: Self.managed.start.raw, size: Self.managed.size)) {
            case let .failure(f): return f
            case let .success(v): if v["ok"]?.boolValue != true { return finding("disagreement", "new_space \(s) was refused: \(v)") }
            }
        }
        return nil
    }

    static func category(_ v: JSONValue) -> String? { v["ok"]?.boolValue == false ? v["error"]?.stringValue : nil }

    /// A state-changing operation: the answer against the model's result.
    func settle(_ r: TargetRequest, _ expected: SpecResult) -> TargetFinding? {
        let v: JSONValue
        switch send(r) { case let .failure(f): return f; case let .success(x): v = x }
        let got = Self.category(v)
        switch expected {
        case let .success(next):
            if let got { return finding("disagreement", "\(r.op) answered \(got) (\(v["message"]?.stringValue ?? "")); the model accepts") }
            model = next
            return nil
        case let .failure(e):
            let want = ErrorCategory(e).rawValue
            if got == nil { return finding("disagreement", "\(r.op) succeeded; the model says \(want): \(e)") }
            if got != want { return finding("disagreement", "\(r.op) answered \(got!) (\(v["message"]?.stringValue ?? "")); the model says \(want): \(e)") }
            return nil
        }
    }

    /// A read against the model's answer (a zero check when `fresh`).
    func read(_ s: Int, _ gpa: UInt64, fresh: Bool) -> TargetFinding? {
        let expected = model.readWord(s, gpa: gpa)
        let v: JSONValue
        switch send(.read(space: s, gpa: gpa)) { case let .failure(f): return f; case let .success(x): v = x }
        switch expected {
        case let .failure(e):
            let want = ErrorCategory(e).rawValue
            if let got = Self.category(v) {
                return got == want ? nil : finding("disagreement", "read \(hex(gpa)) answered \(got); the model says \(want): \(e)")
            }
            return finding("disagreement", "read \(hex(gpa)) gave \(v["value"]?.description ?? "?"); the model says \(want): \(e)")
        case let .success(want):
            if let got = Self.category(v) { return finding("disagreement", "read \(hex(gpa)) answered \(got) (\(v["message"]?.stringValue ?? "")); the model reads \(hex(want))") }
            guard let value = TargetProtocol.parseHex(v["value"]) else { return finding("malformed", "read: \"value\" must be a hex string in \(v)") }
            if value == want { return nil }
            let written = model.words[s]?[gpa] != nil
            if !written, hello?.zeroesFrames == false {
                if notes.isEmpty { notes.append("the target does not zero frames (as it declared): \(hex(gpa)) read \(hex(value))") }
                return nil
            }
            return finding("disagreement", "read \(hex(gpa)) gave \(hex(value)); the model reads \(hex(want))" +
                           (fresh || !written ? " (a page handed out must read zero)" : ""))
        }
    }

    /// Reads every checked offset of `page`.
    func zeroCheck(_ s: Int, page: UInt64) -> TargetFinding? {
        for o in offsets.sorted() { if let f = read(s, page + o, fresh: true) { return f } }
        return nil
    }

    /// translate at `p` against the model.
    func probe(_ s: Int, _ p: UInt64) -> TargetFinding? {
        let v: JSONValue
        switch send(.translate(space: s, gpa: p)) { case let .failure(f): return f; case let .success(x): v = x }
        if let c = Self.category(v) { return finding("disagreement", "translate \(hex(p)) answered \(c): \(v["message"]?.stringValue ?? "")") }
        guard let mapped = v["mapped"]?.boolValue else { return finding("malformed", "translate: \"mapped\" must be true or false in \(v)") }
        var host: UInt64 = 0, flags = MappingFlags()
        if mapped {
            guard let h = TargetProtocol.parseHex(v["hpa"]), let f = v["flags"]?.intValue, f >= 0, f <= 0xFFFF_FFFF else {
                return finding("malformed", "translate: a mapped answer needs hex \"hpa\" and integer \"flags\": \(v)")
            }
            (host, flags) = (h, MappingFlags(rawValue: UInt64(f)))
        }
        let shown = mapped ? "\(hex(host)) \(flags)" : "nothing"
        switch model.page(s, p) {
        case .unmapped, .lazyAbsent:
            if mapped { return finding("disagreement", "translate \(hex(p)) gave \(shown); the model has no page there") }
        case let .fixed(h, f):
            if !mapped || host != h + (p & 0xFFF) || flags != f {
                return finding("disagreement", "translate \(hex(p)) gave \(shown); the model says \(hex(h + (p & 0xFFF))) \(f)")
            }
        case let .frame(token, f):
            guard mapped, flags == f, host & 0xFFF == p & 0xFFF else {
                return finding("disagreement", "translate \(hex(p)) gave \(shown); the model says a frame with \(f) at page offset \(hex(p & 0xFFF))")
            }
            let frame = host & ~0xFFF
            // Tokens the model released no longer hold their frames.
            for (t, fr) in frameOf where model.ledger[t] == nil { frameOf[t] = nil; tokenOf[fr] = nil }
            if let bound = frameOf[token] {
                if bound != frame { return finding("disagreement", "translate \(hex(p)) moved from frame \(hex(bound)) to \(hex(frame)) with no change in between") }
            } else if let other = tokenOf[frame] {
                return finding("disagreement", "translate \(hex(p)) gave frame \(hex(frame)), which another live page already has (token \(other))")
            } else {
                frameOf[token] = frame
                tokenOf[frame] = token
            }
        }
        return nil
    }

    /// Applies one operation to both sides; nil when they agree.
    public func apply(_ op: SpecOp) -> TargetFinding? {
        step += 1
        guard let r = TargetOps.request(op) else { return nil }
        var problem: TargetFinding?
        switch op {
        case let .mapLinear(s, g, h, size, flags):
            problem = settle(r, model.mapLinear(s, gpa: g, hpa: h, size: size, flags: flags))
        case let .mapAlloc(s, g, size, flags, eager):
            let expected = model.mapAlloc(s, gpa: g, size: size, flags: flags, eager: eager)
            problem = settle(r, expected)
            if problem == nil, eager, case .success = expected {
                let last = g + size - 0x1000, middle = g + (size / 2 & ~0xFFF)
                for page in Set([g, middle, last]).sorted() where problem == nil { problem = zeroCheck(s, page: page) }
            }
        case let .unmap(s, g, size): problem = settle(r, model.unmap(s, gpa: g, size: size))
        case let .protect(s, g, size, flags): problem = settle(r, model.protect(s, gpa: g, size: size, flags: flags))
        case let .fault(s, g, access):
            let (next, expected) = model.fault(s, gpa: g, access: access)
            switch send(r) {
            case let .failure(f): problem = f
            case let .success(v):
                let want = FaultOutcomeName.name(of: expected)
                if let c = Self.category(v) {
                    problem = finding("disagreement", "fault \(hex(g)) answered \(c) (\(v["message"]?.stringValue ?? "")); the model says \(want)")
                } else if let got = v["outcome"]?.stringValue {
                    if got != want {
                        problem = FaultOutcomeName(rawValue: got) == nil
                            ? finding("malformed", "fault: unknown outcome \"\(got)\"")
                            : finding("disagreement", "fault \(hex(g)) \(access) gave \(got); the model says \(want)")
                    } else {
                        model = next
                        if expected == .handled { problem = zeroCheck(s, page: g & ~0xFFF) }
                    }
                } else {
                    problem = finding("malformed", "fault: \"outcome\" must be a string in \(v)")
                }
            }
        case let .write(s, g, value):
            problem = settle(r, model.writeWord(s, gpa: g, value: value))
            offsets.insert(g & 0xFFF & ~7)
        case let .read(s, g): problem = read(s, g, fresh: false)
        default: break
        }
        if problem == nil, let s = op.space { problem = probes(op, s) }
        if problem == nil, hello?.ops.contains("live_frames") == true, let s = op.space { problem = liveFrames(s) }
        return problem
    }

    func probes(_ op: SpecOp, _ s: Int) -> TargetFinding? {
        var points: [UInt64] = []
        switch op {
        case let .mapLinear(_, g, _, size, _), let .mapAlloc(_, g, size, _, _), let .unmap(_, g, size), let .protect(_, g, size, _):
            points = [g &- 1, g, g &+ size &- 1, g &+ size]
        case let .fault(_, g, _), let .write(_, g, _), let .read(_, g): points = [g]
        default: return nil
        }
        for p in points where p < CheckerSetup.managedSize {
            if let f = probe(s, p) { return f }
        }
        return nil
    }

    func liveFrames(_ s: Int) -> TargetFinding? {
        let v: JSONValue
        switch send(.liveFrames(space: s)) { case let .failure(f): return f; case let .success(x): v = x }
        guard let n = v["frames"]?.intValue else { return finding("malformed", "live_frames: \"frames\" must be an integer in \(v)") }
        let want = model.ledger.values.filter { $0 == s }.count
        return n == want ? nil : finding("disagreement", "space \(s) holds \(n) data frames; the model says \(want)")
    }

    /// drop_space for every space, then the process ends.
    public func finish() -> TargetFinding? {
        step += 1
        for s in 0..<spaces {
            switch send(.dropSpace(space: s)) {
            case let .failure(f): return f
            case let .success(v): if Self.category(v) != nil { return finding("disagreement", "drop_space \(s) was refused: \(v)") }
            }
        }
        return nil
    }

    /// The answers the model expects for `ops`, for the replay file: one
    /// JSON object per request (frames the target picks are not named).
    public static func expectations(_ ops: [SpecOp], spaces: Int) -> [JSONValue] {
        var model = SpecState(environment: SpecEnvironment(poolStart: 0, poolEnd: 0, managed: Array(repeating: managed, count: spaces)))
        var out: [JSONValue] = []
        func result(_ r: SpecResult) -> JSONValue {
            switch r {
            case let .success(next): model = next; return .object([("ok", .bool(true))])
            case let .failure(e): return .object([("ok", .bool(false)), ("error", .string(ErrorCategory(e).rawValue))])
            }
        }
        for op in ops {
            switch op {
            case let .mapLinear(s, g, h, size, f): out.append(result(model.mapLinear(s, gpa: g, hpa: h, size: size, flags: f)))
            case let .mapAlloc(s, g, size, f, eager): out.append(result(model.mapAlloc(s, gpa: g, size: size, flags: f, eager: eager)))
            case let .unmap(s, g, size): out.append(result(model.unmap(s, gpa: g, size: size)))
            case let .protect(s, g, size, f): out.append(result(model.protect(s, gpa: g, size: size, flags: f)))
            case let .write(s, g, v): out.append(result(model.writeWord(s, gpa: g, value: v)))
            case let .fault(s, g, a):
                let (next, f) = model.fault(s, gpa: g, access: a)
                model = next
                out.append(.object([("ok", .bool(true)), ("outcome", .string(FaultOutcomeName.name(of: f)))]))
            case let .read(s, g):
                switch model.readWord(s, gpa: g) {
                case let .success(v): out.append(.object([("ok", .bool(true)), ("value", TargetProtocol.hex64(v))]))
                case let .failure(e): out.append(.object([("ok", .bool(false)), ("error", .string(ErrorCategory(e).rawValue))]))
                }
            default: break
            }
        }
        return out
    }
}
