import HVCore

/// Version 1 of the target protocol (docs/target-protocol.md): what goes
/// over the pipe between `hvkit hunt --target` and an implementation under
/// test, one JSON object per line each way.
public enum TargetProtocol {
    public static let version: Int64 = 1
    /// Longest line either side may send, newline excluded.
    public static let maxLineBytes = 65_536

    /// Every operation of version 1; `hello` must be supported.
    public static let operations = ["hello", "new_space", "map_linear", "map_alloc", "unmap", "protect", "translate",
                                    "fault", "read", "write", "live_frames", "drop_space"]
    /// What a target must support for a hunt to run at all.
    public static let required = ["hello", "new_space", "map_linear", "map_alloc", "unmap", "protect", "translate", "fault",
                                  "read", "write"]

    /// "0x" and lower-case hex digits: how every address, size and value travels.
    public static func hex64(_ v: UInt64) -> JSONValue { .string("0x" + String(v, radix: 16)) }

    /// A hex field ("0x" then 1-16 hex digits), or nil.
    public static func parseHex(_ v: JSONValue?) -> UInt64? {
        guard let s = v?.stringValue, s.hasPrefix("0x") || s.hasPrefix("0X") else { return nil }
        let digits = s.dropFirst(2)
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        return UInt64(digits, radix: 16)
    }
}

/// The fixed list of error categories a target answers with. The
/// implementation's and the model's errors are compared by category only.
public enum ErrorCategory: String, CaseIterable, Sendable {
    case badFlags = "bad_flags"
    case emptyRange = "empty_range"
    case unaligned
    case overflow
    case outOfRange = "out_of_range"
    case overlap
    case noMemory = "no_memory"
    case unmapped
    case notPresent = "not_present"
    case accessDenied = "access_denied"
    case notHostMemory = "not_host_memory"
    case unsupported
    case badRequest = "bad_request"
    case `internal`

    /// The category of one of HVCore's (and the model's) errors.
    public init(_ e: AddrSpaceError) {
        switch e {
        case let .pageTable(p):
            switch p {
            case .unknownFlags, .writeWithoutRead, .noAccess: self = .badFlags
            case .emptyRange: self = .emptyRange
            case .unaligned: self = .unaligned
            case .guestAddressOutOfRange, .hostAddressOutOfRange: self = .outOfRange
            case .alreadyMapped: self = .overlap
            case .outOfFrames: self = .noMemory
            }
        case .emptyRange: self = .emptyRange
        case .unaligned: self = .unaligned
        case .rangeOverflow: self = .overflow
        case .outsideManagedRange: self = .outOfRange
        case .overlapsArea, .reservedOverlapsAllocator: self = .overlap
        case .identityUnavailable, .outOfFrames: self = .noMemory
        case .unmapped: self = .unmapped
        case .notPresent: self = .notPresent
        case .accessDenied: self = .accessDenied
        case .notHostMemory: self = .notHostMemory
        }
    }
}

/// `fault` answers.
public enum FaultOutcomeName: String, CaseIterable, Sendable {
    case handled
    case outsideRange = "outside_range"
    case noArea = "no_area"
    case accessNotAllowed = "access_not_allowed"
    case linearBackend = "linear_backend"
    case alreadyPresent = "already_present"
}

/// One request of version 1, as the driver sends it and `hvkit serve`
/// reads it.
public enum TargetRequest: Equatable, Sendable {
    case hello
    case newSpace(space: Int, format: String, start: UInt64, size: UInt64)
    case mapLinear(space: Int, gpa: UInt64, hpa: UInt64, size: UInt64, flags: MappingFlags)
    case mapAlloc(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags, eager: Bool)
    case unmap(space: Int, gpa: UInt64, size: UInt64)
    case protect(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags)
    case translate(space: Int, gpa: UInt64)
    case fault(space: Int, gpa: UInt64, access: MappingFlags)
    case read(space: Int, gpa: UInt64)
    case write(space: Int, gpa: UInt64, value: UInt64)
    case liveFrames(space: Int)
    case dropSpace(space: Int)

    public var op: String {
        switch self {
        case .hello: "hello"
        case .newSpace: "new_space"
        case .mapLinear: "map_linear"
        case .mapAlloc: "map_alloc"
        case .unmap: "unmap"
        case .protect: "protect"
        case .translate: "translate"
        case .fault: "fault"
        case .read: "read"
        case .write: "write"
        case .liveFrames: "live_frames"
        case .dropSpace: "drop_space"
        }
    }

    /// The request as one JSON object, `id` first.
    public func json(id: Int) -> JSONValue {
        typealias P = TargetProtocol
        var f: [(String, JSONValue)] = [("id", .int(Int64(id))), ("op", .string(op))]
        func flags(_ m: MappingFlags) -> JSONValue { .int(Int64(m.rawValue)) }
        switch self {
        case .hello: f.append(("protocol", .int(P.version)))
        case let .newSpace(s, format, start, size):
            f += [("space", .int(Int64(s))), ("format", .string(format)), ("start", P.hex64(start)), ("size", P.hex64(size))]
        case let .mapLinear(s, g, h, size, fl):
            f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("hpa", P.hex64(h)), ("size", P.hex64(size)), ("flags", flags(fl))]
        case let .mapAlloc(s, g, size, fl, eager):
            f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("size", P.hex64(size)), ("flags", flags(fl)),
                  ("populate", .string(eager ? "eager" : "lazy"))]
        case let .unmap(s, g, size): f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("size", P.hex64(size))]
        case let .protect(s, g, size, fl):
            f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("size", P.hex64(size)), ("flags", flags(fl))]
        case let .translate(s, g), let .read(s, g): f += [("space", .int(Int64(s))), ("gpa", P.hex64(g))]
        case let .fault(s, g, access): f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("access", flags(access))]
        case let .write(s, g, v): f += [("space", .int(Int64(s))), ("gpa", P.hex64(g)), ("value", P.hex64(v))]
        case let .liveFrames(s), let .dropSpace(s): f.append(("space", .int(Int64(s))))
        }
        return .object(f)
    }

    /// Why a request line cannot be served: the error category and the text.
    public struct Invalid: Error, Equatable {
        public let category: ErrorCategory
        public let message: String
    }

    /// Reads a request; the id is returned separately (requests without a
    /// usable id are answered with id null).
    public static func parse(_ v: JSONValue) -> (id: JSONValue, request: Result<TargetRequest, Invalid>) {
        let id = v["id"] ?? .null
        func bad(_ m: String) -> (JSONValue, Result<TargetRequest, Invalid>) { (id, .failure(Invalid(category: .badRequest, message: m))) }
        guard case .object = v else { return bad("a request is a JSON object") }
        guard case .int = id else { return bad("\"id\" must be an integer") }
        guard let op = v["op"]?.stringValue else { return bad("\"op\" must be a string") }
        guard TargetProtocol.operations.contains(op) else {
            return (id, .failure(Invalid(category: .unsupported, message: "unknown operation \"\(op)\"")))
        }
        if op == "hello" { return (id, .success(.hello)) }
        guard let s = v["space"]?.intValue, s >= 0, s < 1024 else { return bad("\"space\" must be an integer in 0...1023") }
        let space = Int(s)
        func hex(_ key: String) -> UInt64? { TargetProtocol.parseHex(v[key]) }
        func flags(_ key: String) -> MappingFlags? {
            guard let i = v[key]?.intValue, i >= 0, i <= 0xFFFF_FFFF else { return nil }
            return MappingFlags(rawValue: UInt64(i))
        }
        switch op {
        case "new_space":
            guard let format = v["format"]?.stringValue, let start = hex("start"), let size = hex("size") else {
                return bad("new_space needs \"format\", \"start\" and \"size\"")
            }
            return (id, .success(.newSpace(space: space, format: format, start: start, size: size)))
        case "map_linear":
            guard let g = hex("gpa"), let h = hex("hpa"), let size = hex("size"), let fl = flags("flags") else {
                return bad("map_linear needs hex \"gpa\", \"hpa\", \"size\" and integer \"flags\"")
            }
            return (id, .success(.mapLinear(space: space, gpa: g, hpa: h, size: size, flags: fl)))
        case "map_alloc":
            guard let g = hex("gpa"), let size = hex("size"), let fl = flags("flags"),
                  let p = v["populate"]?.stringValue, p == "eager" || p == "lazy" else {
                return bad("map_alloc needs hex \"gpa\", \"size\", integer \"flags\" and \"populate\": \"eager\" or \"lazy\"")
            }
            return (id, .success(.mapAlloc(space: space, gpa: g, size: size, flags: fl, eager: p == "eager")))
        case "unmap":
            guard let g = hex("gpa"), let size = hex("size") else { return bad("unmap needs hex \"gpa\" and \"size\"") }
            return (id, .success(.unmap(space: space, gpa: g, size: size)))
        case "protect":
            guard let g = hex("gpa"), let size = hex("size"), let fl = flags("flags") else {
                return bad("protect needs hex \"gpa\", \"size\" and integer \"flags\"")
            }
            return (id, .success(.protect(space: space, gpa: g, size: size, flags: fl)))
        case "translate", "read":
            guard let g = hex("gpa") else { return bad("\(op) needs hex \"gpa\"") }
            return (id, .success(op == "read" ? .read(space: space, gpa: g) : .translate(space: space, gpa: g)))
        case "fault":
            guard let g = hex("gpa"), let a = flags("access") else { return bad("fault needs hex \"gpa\" and integer \"access\"") }
            return (id, .success(.fault(space: space, gpa: g, access: a)))
        case "write":
            guard let g = hex("gpa"), let value = hex("value") else { return bad("write needs hex \"gpa\" and \"value\"") }
            return (id, .success(.write(space: space, gpa: g, value: value)))
        case "live_frames": return (id, .success(.liveFrames(space: space)))
        default: return (id, .success(.dropSpace(space: space)))
        }
    }
}

/// Building replies.
public enum TargetReply {
    public static func ok(_ id: JSONValue, _ fields: [(String, JSONValue)] = []) -> JSONValue {
        .object([("id", id), ("ok", .bool(true))] + fields)
    }

    public static func error(_ id: JSONValue, _ category: ErrorCategory, _ message: String) -> JSONValue {
        .object([("id", id), ("ok", .bool(false)), ("error", .string(category.rawValue)), ("message", .string(message))])
    }
}
