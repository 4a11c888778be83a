import Foundation
import HVCore
import HVSpecs
import HVTarget
import Testing

/// Where the built executables and the C target's source are.
enum Built {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var hvkit: String? {
        let candidates = [".build/debug/hvkit", ".build/x86_64-unknown-linux-gnu/debug/hvkit"].map { root.appendingPathComponent($0).path }
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
        if found == nil { print("SKIPPED: target hunts against hvkit serve: no built hvkit under .build (swift build builds it)") }
        return found
    }
    /// The static server, built beside hvkit.
    static var hvkitServe: String? {
        guard let hvkit else { return nil }
        let path = String(hvkit.dropLast("hvkit".count)) + "hvkit-serve"
        if !FileManager.default.isExecutableFile(atPath: path) { print("SKIPPED: target hunt against hvkit-serve: no \(path) (swift build builds it)") ; return nil }
        return path
    }
    static let cSource = root.appendingPathComponent("Examples/c-target/ept_target.c").path
    static let helloLine = #"{"id":1,"ok":true,"name":"fake","protocol":1,"formats":["ept"],"ops":["hello","new_space","map_linear","map_alloc","unmap","protect","translate","fault","read","write"],"zeroes_frames":true}"#

    /// Compiles the C target with `defines` into a temporary file.
    static func cTarget(_ defines: [String]) throws -> String {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-c-target-\(getpid())-\(defines.joined(separator: "_"))").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc", "-O1", "-Wall", "-Werror", "-o", out, cSource] + defines.map { "-D" + $0 }
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CompileFailed(status: p.terminationStatus) }
        return out
    }

    struct CompileFailed: Error { let status: Int32 }

    /// A shell script as a target: written to a temporary file, run with sh.
    static func script(_ name: String, _ body: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-fake-target-\(getpid())-\(name).sh").path
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        return "sh " + path
    }
}

/// A target that misbehaves as a process is a finding of its own, with the
/// operation that caused it; hvkit never crashes or hangs on it (issue 20).
@Suite("Target hunts: misbehaving targets")
struct MisbehavingTargetTests {
    static let ops: [SpecOp] = [.mapAlloc(space: 0, gpa: 0x20_0000, size: 0x1000, flags: .readWrite, eager: true),
                                .write(space: 0, gpa: 0x20_0008, value: 7), .read(space: 0, gpa: 0x20_0008)]

    func finding(_ command: String, timeoutMs: Int = 2000) -> TargetFinding? {
        var hunt = TargetHunt(command: command, format: .ept, timeoutMs: timeoutMs)
        return hunt.failure(of: Self.ops, spaces: 1)?.0
    }

    @Test func aTargetWritingGarbageIsMalformed() throws {
        let f = try #require(finding(try Built.script("garbage", "while read l; do echo 'this is not json'; done\n")))
        #expect(f.kind == "malformed" && f.step == 0 && f.message.contains("hello"), "\(f)")
    }

    @Test func anAnswerWithTheWrongIDOrNoCategoryIsMalformed() throws {
        let wrongID = try #require(finding(try Built.script("wrong-id", "read l; echo '\(Built.helloLine)'; while read l; do echo '{\"id\":99,\"ok\":true}'; done\n")))
        #expect(wrongID.kind == "malformed" && wrongID.message.contains("id"), "\(wrongID)")
        let noCategory = try #require(finding(try Built.script("bad-category", "read l; echo '\(Built.helloLine)'; read l; echo '{\"id\":2,\"ok\":false,\"error\":\"oops\"}'\n")))
        #expect(noCategory.kind == "malformed" && noCategory.message.contains("categories"), "\(noCategory)")
    }

    @Test func aTargetThatExitsMidCaseIsACrashAtThatOperation() throws {
        // Answers hello and new_space, then exits with status 3.
        let f = try #require(finding(try Built.script("exits", "read l; echo '\(Built.helloLine)'; read l; echo '{\"id\":2,\"ok\":true}'; read l; echo 'bye' >&2; exit 3\n")))
        #expect(f.kind == "crash" && f.step == 1, "\(f)")
        #expect(f.message.contains("status 3") && f.message.contains("bye"), "its status and stderr are in the report: \(f)")
    }

    @Test func aTargetThatHangsIsKilledAfterTheTimeout() throws {
        let clock = ContinuousClock(), start = clock.now
        let f = try #require(finding(try Built.script("hangs", "read l; echo '\(Built.helloLine)'; read l; echo '{\"id\":2,\"ok\":true}'; read l; exec sleep 60\n"),
                                     timeoutMs: 300))
        #expect(f.kind == "hang" && f.step == 1 && f.message.contains("300 ms"), "\(f)")
        #expect(clock.now - start < .seconds(10), "killed, not waited for")
    }

    @Test func aTargetThatCannotStartOrSpeaksAnotherVersionIsASetUpFinding() throws {
        let missing = try #require(finding("/nonexistent/target-binary"))
        #expect(missing.step == 0 && (missing.kind == "crash" || missing.kind == "spawn"), "\(missing)")
        let v2 = Built.helloLine.replacingOccurrences(of: "\"protocol\":1", with: "\"protocol\":2")
        let other = try #require(finding(try Built.script("v2", "read l; echo '\(v2)'\n")))
        #expect(other.step == 0 && other.message.contains("protocol 2"), "\(other)")
    }

    @Test func anOverlongLineIsMalformed() throws {
        let f = try #require(finding(try Built.script("long", "read l; head -c 200000 /dev/zero | tr '\\\\0' 'x'; echo\n")))
        #expect(f.kind == "malformed" && f.message.contains("longer"), "\(f)")
    }
}

/// HVCore behind the protocol finds nothing; its seeded bugs are found
/// through it; the C target's five bugs are found within 200 cases with at
/// most 6 operations, and nothing without them (issue 20).
@Suite("Target hunts: hvkit serve and the C target", .serialized)
struct TargetHuntTests {
    static let seed: UInt64 = 0x4856_4b49_5400_0001

    @Test(arguments: NestedFormat.campaign)
    func hvkitServeAgreesWithTheModel(_ format: NestedFormat) throws {
        guard let hvkit = Built.hvkit else { return }
        var hunt = TargetHunt(command: "\(hvkit) serve", format: format, timeoutMs: 5000)
        let (found, run) = hunt.hunt(cases: 60, seed: Self.seed, maxLength: 24)
        #expect(found == nil, "\(found.map { "\($0.finding) after \($0.ops)" } ?? "")")
        #expect(run == 60 && hunt.operations > 300 && hunt.requests > 2 * hunt.operations)
        print("target hunt: hvkit serve \(format): 60 cases, \(hunt.operations) operations, \(hunt.requests) requests, nothing found")
    }

    /// `hvkit-serve` is the same server as `hvkit serve`: the same hello,
    /// and nothing found on the same cases.
    @Test func theStaticServerIsHvkitServe() throws {
        guard let hvkit = Built.hvkit, let server = Built.hvkitServe else { return }
        let a = try TargetRun(command: "\(hvkit) serve", format: .ept, spaces: 1, timeoutMs: 5000)
        let b = try TargetRun(command: server, format: .ept, spaces: 1, timeoutMs: 5000)
        #expect(a.start() == nil && b.start() == nil)
        #expect(a.hello != nil && a.hello == b.hello)
        a.stop(); b.stop()
        var hunt = TargetHunt(command: server, format: .ept, timeoutMs: 5000)
        let (found, run) = hunt.hunt(cases: 60, seed: Self.seed, maxLength: 24)
        #expect(found == nil, "\(found.map { "\($0.finding) after \($0.ops)" } ?? "")")
        #expect(run == 60 && hunt.operations > 300)
    }

    @Test(arguments: [(SeededBug.partialUnmapDropsHugePage, "disagreement"), (.overlapMissesContainment, "disagreement"), (.lazyFaultReplacesFrame, "disagreement")])
    func hvkitServeWithASeededBugIsCaught(_ bug: SeededBug, _ kind: String) throws {
        guard let hvkit = Built.hvkit, SeededBug.available else { return }
        var hunt = TargetHunt(command: "\(hvkit) serve --bug \(bug.rawValue)", format: .ept, timeoutMs: 5000)
        let (found, _) = hunt.hunt(cases: 200, seed: Self.seed, maxLength: 24)
        let c = try #require(found, "\(bug) was not found through the protocol")
        #expect(c.finding.kind == kind && c.ops.count <= 6, "\(c.finding)")
    }

    @Test func theCTargetWithoutBugsAgreesWithTheModel() throws {
        let target = try Built.cTarget([])
        defer { unlink(target) }
        var hunt = TargetHunt(command: target, format: .ept, timeoutMs: 5000)
        let (found, run) = hunt.hunt(cases: 200, seed: Self.seed, maxLength: 24)
        #expect(found == nil, "\(found.map { "\($0.finding) after \($0.ops)" } ?? "")")
        #expect(run == 200)
    }

    @Test(arguments: [("BUG_NO_ZERO", "disagreement"), ("BUG_PARTIAL_UNMAP_DROPS_HUGE", "disagreement"), ("BUG_OFF_BY_ONE_END", "disagreement"),
                      ("BUG_OVERLAP_MISSES_CONTAINMENT", "disagreement"), ("BUG_ABORT_PARTIAL_HUGE", "crash")])
    func eachSeededCBugIsFoundAndShrunk(_ bug: String, _ kind: String) throws {
        let target = try Built.cTarget([bug])
        defer { unlink(target) }
        var hunt = TargetHunt(command: target, format: .ept, timeoutMs: 5000)
        let (found, run) = hunt.hunt(cases: 200, seed: Self.seed, maxLength: 24)
        let c = try #require(found, "\(bug) not found in 200 cases")
        #expect(c.finding.kind == kind && c.ops.count <= 6, "\(bug): \(c.finding) in \(c.ops.count) operations")
        print("target hunt: C target \(bug): found in case \(c.caseIndex) (\(run) cases run), shrunk from \(c.originalLength) to \(c.ops.count) operations: \(c.finding.kind)")
        // The replay file reads back as the same case, and still fails; the
        // target without the bug passes it.
        let replay = try ReplayCase.parse(c.replayScript)
        #expect(replay.ops == c.ops && replay.spaces == c.spaces && replay.format == .ept)
        #expect(hunt.failure(of: replay.ops, spaces: replay.spaces)?.0.kind == kind)
        let fixed = try Built.cTarget([])
        defer { unlink(fixed) }
        var again = TargetHunt(command: fixed, format: .ept, timeoutMs: 5000)
        #expect(again.failure(of: replay.ops, spaces: replay.spaces) == nil, "the fixed target passes the replay")
    }

    @Test func aDeclaredNonZeroingTargetIsNotedOnceNotFailed() throws {
        // The no-zero bug, declared honestly in hello.
        let source = try String(contentsOfFile: Built.cSource, encoding: .utf8).replacingOccurrences(of: "\\\"zeroes_frames\\\":true", with: "\\\"zeroes_frames\\\":false")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-c-honest-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try source.write(to: dir.appendingPathComponent("t.c"), atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc", "-O1", "-DBUG_NO_ZERO", "-o", dir.appendingPathComponent("t").path, dir.appendingPathComponent("t.c").path]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        var hunt = TargetHunt(command: dir.appendingPathComponent("t").path, format: .ept, timeoutMs: 5000)
        let (found, _) = hunt.hunt(cases: 100, seed: Self.seed, maxLength: 24)
        #expect(found == nil, "\(found.map { "\($0.finding)" } ?? "")")
        #expect(hunt.notes.count == 1 && hunt.notes[0].contains("does not zero"), "\(hunt.notes)")
    }

    @Test func badReplayFilesAreRefusedWithTheLine() {
        #expect(throws: ReplayFileError.self) { try ReplayCase.parse("") }
        #expect(throws: ReplayFileError.self) { try ReplayCase.parse("{\"hvkit_replay\":2}\n") }
        #expect(throws: ReplayFileError.self) { try ReplayCase.parse("{\"hvkit_replay\":1,\"format\":\"ept\",\"spaces\":1}\n{\"request\":{\"id\":1,\"op\":\"frob\"}}\n") }
        do {
            _ = try ReplayCase.parse("{\"hvkit_replay\":1,\"format\":\"ept\",\"spaces\":1}\nnot json\n")
            Issue.record("accepted a bad line")
        } catch { #expect(error.line == 2) }
    }
}
