import HVCore
import HVSpecs
import HVTarget
import Testing

/// The target protocol's codec (issue 20): strict JSON lines, requests with
/// every field checked, answers by category, and nothing that traps.
@Suite("Target protocol: JSON lines and requests")
struct TargetProtocolTests {
    @Test func jsonRoundTripsAndKeepsIntegersExact() throws {
        let v: JSONValue = .object([("id", .int(Int64.max)), ("s", .string("a\"b\\c\n\u{1}é")), ("l", .array([.null, .bool(false), .int(-7)])),
                                    ("o", .object([]))])
        #expect(try JSONLineParser.parse(v.description) == v)
        #expect(try JSONLineParser.parse(#" {"a" : [1, 2 ,{"b":"\u00e9\ud83d\ude00"}] } "#)["a"]?.arrayValue?.count == 3)
    }

    @Test(arguments: [
        "", "{", "{\"a\":}", "{\"a\":1,}", "[1 2]", "{\"a\":1} x", "{\"a\":1.5}", "{\"a\":1e3}", "{\"a\":01}",
        "{\"a\":99999999999999999999}", "{\"a\":\"\\q\"}", "{\"a\":\"\\ud800\"}", "{\"a\":1,\"a\":2}", "tru", "\"abc",
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "{\"a\":\"\u{7}\"}",
    ])
    func malformedLinesAreRefusedWithAReason(_ line: String) {
        #expect(throws: JSONLineError.self) { try JSONLineParser.parse(line) }
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: JSONLineError.self) { try JSONLineParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    /// Random and mutated lines: the parser answers or refuses, never traps.
    @Test func theParserSurvivesAnyBytes() {
        var r = CheckerRandom(seed: 0x7A46_0001)
        let seeds = [TargetRequest.mapAlloc(space: 1, gpa: 0x20_0000, size: 0x1000, flags: .readWrite, eager: true).json(id: 7).description,
                     #"{"id":1,"ok":true,"mapped":true,"hpa":"0x1000","flags":3,"page_size":"0x1000"}"#]
        var parsed = 0
        for i in 0..<5_000 {
            var bytes = Array(seeds[i % 2].utf8)
            for _ in 0..<(1 + r.below(4)) {
                switch r.below(3) {
                case 0: if !bytes.isEmpty { bytes[r.below(bytes.count)] = UInt8(r.below(256)) }
                case 1: if !bytes.isEmpty { bytes.remove(at: r.below(bytes.count)) }
                default: bytes.insert(UInt8(r.below(256)), at: r.below(bytes.count + 1))
                }
            }
            if let v = try? JSONLineParser.parse(bytes) {
                parsed += 1
                _ = TargetRequest.parse(v)
            }
        }
        #expect(parsed > 0 && parsed < 5_000)
    }

    @Test func everyRequestRoundTrips() throws {
        let requests: [TargetRequest] = [
            .hello, .newSpace(space: 2, format: "ept", start: 0, size: 1 << 33),
            .mapLinear(space: 0, gpa: 0x4000_0000, hpa: 0xFFFF_FFFF_FFFF_F000, size: 0x20_0000, flags: .rwx),
            .mapAlloc(space: 0, gpa: 0x1000, size: 0x1000, flags: [.read], eager: false),
            .unmap(space: 1, gpa: 0, size: 0x1000), .protect(space: 0, gpa: 0x1000, size: 0x2000, flags: MappingFlags(rawValue: 0x41)),
            .translate(space: 0, gpa: 0x1234), .fault(space: 0, gpa: 0x1238, access: .write), .read(space: 0, gpa: 8),
            .write(space: 0, gpa: 16, value: UInt64.max), .liveFrames(space: 0), .dropSpace(space: 0),
        ]
        for (i, r) in requests.enumerated() {
            let (id, parsed) = TargetRequest.parse(r.json(id: i))
            #expect(id == .int(Int64(i)))
            #expect(try parsed.get() == r)
        }
    }

    @Test(arguments: [
        (#"{"id":1,"op":"frob"}"#, "unsupported"),
        (#"{"op":"hello"}"#, "bad_request"),
        (#"{"id":1,"op":"unmap","space":5000,"gpa":"0x0","size":"0x1000"}"#, "bad_request"),
        (#"{"id":1,"op":"unmap","space":-1,"gpa":"0x0","size":"0x1000"}"#, "bad_request"),
        (#"{"id":1,"op":"unmap","space":0,"gpa":"0x10000000000000000","size":"0x1000"}"#, "bad_request"),
        (#"{"id":1,"op":"unmap","space":0,"gpa":4096,"size":"0x1000"}"#, "bad_request"),
        (#"{"id":1,"op":"protect","space":0,"gpa":"0x0","size":"0x1000","flags":-3}"#, "bad_request"),
        (#"{"id":1,"op":"map_alloc","space":0,"gpa":"0x0","size":"0x1000","flags":3,"populate":"sometimes"}"#, "bad_request"),
        (#"[1,2]"#, "bad_request"),
    ])
    func badRequestsAreAnsweredByCategory(_ line: String, _ category: String) throws {
        let server = TargetServer()
        let answer = server.answer(Array(line.utf8))
        #expect(answer["ok"] == .bool(false))
        #expect(answer["error"]?.stringValue == category, "\(answer)")
    }

    @Test func theServerAnswersGarbageAndOverlongLinesWithoutTrapping() {
        let server = TargetServer()
        #expect(server.answer(Array("not json".utf8))["error"]?.stringValue == "bad_request")
        #expect(server.answer([UInt8](repeating: 0x20, count: TargetProtocol.maxLineBytes + 1))["error"]?.stringValue == "bad_request")
        #expect(server.answer(Array(#"{"id":3,"op":"read","space":9,"gpa":"0x0"}"#.utf8))["error"]?.stringValue == "bad_request", "no such space")
        let made = server.answer(Array(TargetRequest.newSpace(space: 0, format: "riscv-sv57", start: 0, size: 1 << 30).json(id: 4).description.utf8))
        #expect(made["error"]?.stringValue == "unsupported")
    }

    /// Every error HVCore can give has a category, and the model's errors
    /// map the same way.
    @Test func errorsMapToCategories() throws {
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: HeapFramePool(capacity: 64 * 4096))
        func category(_ body: () throws(AddrSpaceError) -> Void) -> String? {
            do throws(AddrSpaceError) { try body(); return nil } catch { return ErrorCategory(error).rawValue }
        }
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(0), size: 0x1000, flags: [.write], populate: .lazy) } == "bad_flags")
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(0), size: 0, flags: .readWrite, populate: .lazy) } == "empty_range")
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(8), size: 0x1000, flags: .readWrite, populate: .lazy) } == "unaligned")
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(1 << 32), size: 0x1000, flags: .readWrite, populate: .lazy) } == "out_of_range")
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(0), size: 0x10_0000, flags: .readWrite, populate: .eager) } == "no_memory")
        try space.mapAlloc(GuestPhysAddr(0), size: 0x2000, flags: [.read], populate: .lazy)
        #expect(category { () throws(AddrSpaceError) in try space.mapAlloc(GuestPhysAddr(0x1000), size: 0x1000, flags: .readWrite, populate: .lazy) } == "overlap")
        #expect(category { () throws(AddrSpaceError) in _ = try space.read(UInt64.self, at: GuestPhysAddr(0)) } == "not_present")
        #expect(category { () throws(AddrSpaceError) in _ = try space.read(UInt64.self, at: GuestPhysAddr(0x9000)) } == "unmapped")
        _ = space.handlePageFault(GuestPhysAddr(0), access: .read)
        #expect(category { () throws(AddrSpaceError) in try space.write(UInt64(1), at: GuestPhysAddr(0)) } == "access_denied")
        try space.mapLinear(GuestPhysAddr(0x10_0000), to: HostPhysAddr(0x40_0000_0000), size: 0x1000, flags: .readWrite)
        #expect(category { () throws(AddrSpaceError) in _ = try space.read(UInt64.self, at: GuestPhysAddr(0x10_0000)) } == "not_host_memory")
        #expect(category { () throws(AddrSpaceError) in try space.mapLinear(GuestPhysAddr(0x20_0000), to: HostPhysAddr(UInt64.max & ~0xFFF), size: 0x2000, flags: .readWrite) } == "overflow")
    }
}
