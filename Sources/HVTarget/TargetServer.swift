import HVCore
import HVSpecs
#if canImport(Glibc)
import Glibc
#endif

/// One address space as `hvkit serve` holds it, whatever its format.
protocol ServedSpace: AnyObject {
    func serve(_ request: TargetRequest, id: JSONValue) -> JSONValue
}

final class Served<Format: PageTableFormat>: ServedSpace {
    let space: AddrSpace<Format>

    init(range: GuestPhysRange, allocator: any FrameAllocator, bug: SeededBug?) throws(AddrSpaceError) {
        #if DEBUG
        space = try AddrSpace<Format>(range: range, allocator: allocator, seededBug: bug)
        #else
        space = try AddrSpace<Format>(range: range, allocator: allocator)
        #endif
    }

    func serve(_ request: TargetRequest, id: JSONValue) -> JSONValue {
        func run(_ body: () throws(AddrSpaceError) -> Void) -> JSONValue {
            do throws(AddrSpaceError) {
                try body()
                return TargetReply.ok(id)
            } catch {
                return TargetReply.error(id, ErrorCategory(error), "\(error)")
            }
        }
        switch request {
        case let .mapLinear(_, g, h, size, flags):
            return run { () throws(AddrSpaceError) in try space.mapLinear(GuestPhysAddr(g), to: HostPhysAddr(h), size: size, flags: flags) }
        case let .mapAlloc(_, g, size, flags, eager):
            return run { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(g), size: size, flags: flags, populate: eager ? .eager : .lazy) }
        case let .unmap(_, g, size):
            return run { () throws(AddrSpaceError) in try space.unmap(GuestPhysAddr(g), size: size) }
        case let .protect(_, g, size, flags):
            return run { () throws(AddrSpaceError) in try space.protect(GuestPhysAddr(g), size: size, flags: flags) }
        case let .translate(_, g):
            guard let t = space.translate(GuestPhysAddr(g)) else { return TargetReply.ok(id, [("mapped", .bool(false))]) }
            return TargetReply.ok(id, [("mapped", .bool(true)), ("hpa", TargetProtocol.hex64(t.hostAddress.raw)),
                                       ("flags", .int(Int64(t.flags.rawValue))), ("page_size", TargetProtocol.hex64(t.pageSize.bytes))])
        case let .fault(_, g, access):
            let outcome = space.handlePageFault(GuestPhysAddr(g), access: access)
            if case let .violation(.outOfFrames(_, e)) = outcome { return TargetReply.error(id, .noMemory, "\(e)") }
            guard let name = outcome.specFault.flatMap({ FaultOutcomeName(rawValue: FaultOutcomeName.name(of: $0)) }) else {
                return TargetReply.error(id, .internal, "\(outcome)")
            }
            return TargetReply.ok(id, [("outcome", .string(name.rawValue))])
        case let .read(_, g):
            do throws(AddrSpaceError) {
                let v = try space.read(UInt64.self, at: GuestPhysAddr(g))
                return TargetReply.ok(id, [("value", TargetProtocol.hex64(v))])
            } catch {
                return TargetReply.error(id, ErrorCategory(error), "\(error)")
            }
        case let .write(_, g, value):
            return run { () throws(AddrSpaceError) in try space.write(value, at: GuestPhysAddr(g)) }
        case .liveFrames:
            return TargetReply.ok(id, [("frames", .int(Int64(space.ownedFrameCount)))])
        case .hello, .newSpace, .dropSpace:
            return TargetReply.error(id, .internal, "handled by the server")
        }
    }
}

extension FaultOutcomeName {
    /// The protocol's name of one of the model's fault outcomes.
    public static func name(of f: SpecFault) -> String {
        switch f {
        case .handled: FaultOutcomeName.handled.rawValue
        case .outsideRange: FaultOutcomeName.outsideRange.rawValue
        case .noArea: FaultOutcomeName.noArea.rawValue
        case .accessNotAllowed: FaultOutcomeName.accessNotAllowed.rawValue
        case .linearBackend: FaultOutcomeName.linearBackend.rawValue
        case .alreadyPresent: FaultOutcomeName.alreadyPresent.rawValue
        }
    }
}

/// `hvkit serve`: HVCore behind the target protocol, on stdin and stdout.
/// Frames come from one 64 MiB pool at host 4 GiB that every space shares.
public final class TargetServer {
    let pool: HeapFramePool
    var spaces: [Int: any ServedSpace] = [:]
    public static let name = "hvkit serve (HVCore)"
    /// A seeded bug in every space (debug builds only): shows the driver
    /// finds HVCore's own seeded bugs through the protocol.
    let bug: SeededBug?

    /// - Parameter poolFrames: the shared pool's size (a fuzzer wants a small one).
    public init(bug: SeededBug? = nil, poolFrames: Int = 16_384) {
        self.bug = bug
        let bytes = poolFrames * 4096
        // SAFETY: calloc's block reads as zero; the pool owns it and frees it when it goes.
        let memory = calloc(bytes, 1)!
        pool = HeapFramePool(memory: memory, capacity: UInt64(bytes), physicalBase: HostPhysAddr(0x1_0000_0000), zeroFilled: true) { free($0) }
    }

    struct Maker: NestedFormatVisitor {
        let range: GuestPhysRange, allocator: any FrameAllocator, bug: SeededBug?
        func visit<F: PageTableFormat>(_ format: F.Type) -> Result<any ServedSpace, AddrSpaceError> {
            do throws(AddrSpaceError) { return .success(try Served<F>(range: range, allocator: allocator, bug: bug)) } catch { return .failure(error) }
        }
    }

    /// The answer to one request line (without its newline).
    public func answer(_ line: [UInt8]) -> JSONValue {
        guard line.count <= TargetProtocol.maxLineBytes else {
            return TargetReply.error(.null, .badRequest, "line longer than \(TargetProtocol.maxLineBytes) bytes")
        }
        let value: JSONValue
        do { value = try JSONLineParser.parse(line) } catch { return TargetReply.error(.null, .badRequest, "not JSON: \(error)") }
        let (id, parsed) = TargetRequest.parse(value)
        let request: TargetRequest
        switch parsed {
        case let .failure(e): return TargetReply.error(id, e.category, e.message)
        case let .success(r): request = r
        }
        switch request {
        case .hello:
            return TargetReply.ok(id, [("name", .string(Self.name + (bug.map { " with seeded bug \($0.rawValue)" } ?? ""))), ("protocol", .int(TargetProtocol.version)),
                                       ("formats", .array(NestedFormat.allCases.map { .string($0.rawValue) })),
                                       ("ops", .array(TargetProtocol.operations.map { .string($0) })), ("zeroes_frames", .bool(true))])
        case let .newSpace(s, formatName, start, size):
            guard let format = NestedFormat(rawValue: formatName) else {
                return TargetReply.error(id, .unsupported, "unknown format \"\(formatName)\"")
            }
            guard spaces[s] == nil else { return TargetReply.error(id, .badRequest, "space \(s) exists") }
            guard let range = try? GuestPhysRange(start: GuestPhysAddr(start), size: size) else {
                return TargetReply.error(id, .outOfRange, "bad managed range \(hex(start)) + \(hex(size))")
            }
            switch format.accept(Maker(range: range, allocator: pool, bug: bug)) {
            case let .success(space):
                spaces[s] = space
                return TargetReply.ok(id)
            case let .failure(e): return TargetReply.error(id, ErrorCategory(e), "\(e)")
            }
        case let .dropSpace(s):
            guard spaces.removeValue(forKey: s) != nil else { return TargetReply.error(id, .badRequest, "no space \(s)") }
            return TargetReply.ok(id)
        default:
            guard let space = spaces[request.space ?? -1] else { return TargetReply.error(id, .badRequest, "no space \(request.space ?? -1)") }
            return space.serve(request, id: id)
        }
    }

    /// Serves stdin until it closes.
    public func run() {
        var reader = LineReader(fd: 0)
        while let line = reader.next() {
            var out = answer(line).description
            out += "\n"
            let ok = out.withUTF8 { buf -> Bool in
                var off = 0
                while off < buf.count {
                    let n = Glibc.write(1, buf.baseAddress! + off, buf.count - off)
                    if n < 0, errno == EINTR { continue }
                    if n <= 0 { return false }
                    off += n
                }
                return true
            }
            if !ok { return }  // the driver went away
        }
    }
}

extension TargetRequest {
    /// The space a request names, if any.
    public var space: Int? {
        switch self {
        case .hello: nil
        case let .newSpace(s, _, _, _), let .mapLinear(s, _, _, _, _), let .mapAlloc(s, _, _, _, _), let .unmap(s, _, _),
             let .protect(s, _, _, _), let .translate(s, _), let .fault(s, _, _), let .read(s, _), let .write(s, _, _),
             let .liveFrames(s), let .dropSpace(s): s
        }
    }
}

/// Lines from a file descriptor, any length (a line too long for the
/// protocol is still returned whole, for the reader to refuse).
struct LineReader {
    let fd: Int32
    var buffer: [UInt8] = []
    var start = 0
    var eof = false

    init(fd: Int32) { self.fd = fd }

    mutating func next() -> [UInt8]? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                let line = Array(buffer[start..<nl])
                start = nl + 1
                if start > 1 << 16 { buffer.removeFirst(start); start = 0 }
                return line
            }
            if eof {
                if start < buffer.count { let rest = Array(buffer[start...]); buffer = []; start = 0; return rest }
                return nil
            }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { eof = true; continue }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
