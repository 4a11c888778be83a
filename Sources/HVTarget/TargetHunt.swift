import HVCore
import HVSpecs

/// A shrunk counterexample against a target, and its replay script.
public struct TargetCounterexample: Sendable {
    public let format: NestedFormat
    public let seed: UInt64
    public let caseIndex: Int
    public let spaces: Int
    public let originalLength: Int
    public let ops: [SpecOp]
    public let finding: TargetFinding
    /// The target's stderr's end in the shrunk run.
    public let stderr: String

    /// The replay file: a header line, then one line per request with the
    /// answer the model expects (`hvkit replay FILE --target CMD`).
    public var replayScript: String {
        let header: JSONValue = .object([
            ("hvkit_replay", .int(1)), ("protocol", .int(TargetProtocol.version)), ("format", .string(format.rawValue)),
            ("spaces", .int(Int64(spaces))), ("seed", TargetProtocol.hex64(seed)), ("case", .int(Int64(caseIndex))),
            ("finding", .string(finding.description)),
        ])
        var lines = [header.description]
        var id = 1
        for s in 0..<spaces {
            let r = TargetRequest.newSpace(space: s, format: format.rawValue, start: TargetRun.managed.start.raw, size: TargetRun.managed.size)
            lines.append(JSONValue.object([("request", r.json(id: id)), ("expect", .object([("ok", .bool(true))]))]).description)
            id += 1
        }
        for (op, expect) in zip(ops, TargetRun.expectations(ops, spaces: spaces)) {
            guard let r = TargetOps.request(op) else { continue }
            lines.append(JSONValue.object([("request", r.json(id: id)), ("expect", expect)]).description)
            id += 1
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Why a replay file cannot be read.
public struct ReplayFileError: Error, CustomStringConvertible {
    public let line: Int
    public let reason: String
    public var description: String { "line \(line): \(reason)" }
}

/// A replay file read back: the case to run.
public struct ReplayCase: Sendable {
    public let format: NestedFormat
    public let spaces: Int
    public let ops: [SpecOp]
    public let finding: String

    public static func parse(_ text: String) throws(ReplayFileError) -> ReplayCase {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let first = lines.first else { throw ReplayFileError(line: 1, reason: "the file is empty") }
        let header: JSONValue
        do { header = try JSONLineParser.parse(String(first)) } catch { throw ReplayFileError(line: 1, reason: "header: \(error)") }
        guard header["hvkit_replay"]?.intValue == 1 else { throw ReplayFileError(line: 1, reason: "not an hvkit replay file (no \"hvkit_replay\": 1)") }
        guard let name = header["format"]?.stringValue, let format = NestedFormat(rawValue: name) else {
            throw ReplayFileError(line: 1, reason: "header: unknown \"format\"")
        }
        guard let sp = header["spaces"]?.intValue, (1...3).contains(sp) else { throw ReplayFileError(line: 1, reason: "header: \"spaces\" must be 1-3") }
        var ops: [SpecOp] = []
        for (i, line) in lines.dropFirst().enumerated() {
            let v: JSONValue
            do { v = try JSONLineParser.parse(String(line)) } catch { throw ReplayFileError(line: i + 2, reason: "\(error)") }
            guard let request = v["request"] else { throw ReplayFileError(line: i + 2, reason: "no \"request\"") }
            switch TargetRequest.parse(request).request {
            case let .failure(e): throw ReplayFileError(line: i + 2, reason: e.message)
            case let .success(r):
                if case .newSpace = r { continue }
                guard let op = TargetOps.op(r) else { throw ReplayFileError(line: i + 2, reason: "\(r.op) does not belong in a replay") }
                guard (op.space ?? 0) < Int(sp) else { throw ReplayFileError(line: i + 2, reason: "space \(op.space ?? 0) beyond the header's \(sp)") }
                ops.append(op)
            }
        }
        return ReplayCase(format: format, spaces: Int(sp), ops: ops, finding: header["finding"]?.stringValue ?? "")
    }
}

/// The campaign against a target: cases, each on a fresh process.
public struct TargetHunt {
    public let command: String
    public let format: NestedFormat
    public let timeoutMs: Int
    public private(set) var requests = 0
    public private(set) var operations = 0
    public private(set) var notes: [String] = []
    public private(set) var hello: TargetHello?

    public init(command: String, format: NestedFormat, timeoutMs: Int) {
        self.command = command
        self.format = format
        self.timeoutMs = timeoutMs
    }

    /// Runs one case; the finding and the stderr's end, or nil.
    public mutating func failure(of ops: [SpecOp], spaces: Int) -> (TargetFinding, String)? {
        let run: TargetRun
        do { run = try TargetRun(command: command, format: format, spaces: spaces, timeoutMs: timeoutMs) } catch {
            return (TargetFinding(kind: "spawn", step: 0, message: "\(error)"), "")
        }
        defer { requests += run.requests }
        if let f = run.start() { return (f, run.stop()) }
        hello = run.hello
        for op in ops {
            operations += 1
            if let f = run.apply(op) { return (f, run.stop()) }
        }
        if let f = run.finish() { return (f, run.stop()) }
        for n in run.notes where !notes.contains(where: { $0.hasPrefix(String(n.prefix(40))) }) { notes.append(n) }
        run.stop()
        return nil
    }

    /// Delta debugging: drop chunks while the case still fails the same way
    /// (same kind of finding), then try fewer spaces.
    public mutating func shrink(_ ops: [SpecOp], spaces: Int, kind: String) -> (ops: [SpecOp], spaces: Int, finding: TargetFinding, stderr: String)? {
        guard var (best, stderr) = failure(of: ops, spaces: spaces) else { return nil }
        var current = ops
        var chunk = max(1, current.count / 2)
        while chunk >= 1 {
            var progress = false
            var start = 0
            while start < current.count {
                var candidate = current
                candidate.removeSubrange(start..<min(current.count, start + chunk))
                if !candidate.isEmpty, let (f, e) = failure(of: candidate, spaces: spaces), f.kind == kind {
                    (current, best, stderr) = (candidate, f, e)
                    progress = true
                } else {
                    start += chunk
                }
            }
            if !progress { chunk /= 2 }
        }
        var used = spaces
        let needed = (current.compactMap(\.space).max() ?? 0) + 1
        if needed < spaces, let (f, e) = failure(of: current, spaces: needed), f.kind == kind { (used, best, stderr) = (needed, f, e) }
        return (current, used, best, stderr)
    }

    /// Cases `0..<cases` until one fails; its shrunk form.
    public mutating func hunt(cases: Int, seed: UInt64, maxLength: Int, progress: ((Int) -> Void)? = nil) -> (TargetCounterexample?, casesRun: Int) {
        for i in 0..<cases {
            progress?(i)
            let (spaces, ops) = TargetOps.generate(seed: seed, case: i, maxLength: maxLength)
            guard let (f, _) = failure(of: ops, spaces: spaces) else { continue }
            // Set-up failures (spawn, hello, format) are not shrunk: no operation caused them.
            if f.step == 0 {
                return (TargetCounterexample(format: format, seed: seed, caseIndex: i, spaces: spaces, originalLength: ops.count,
                                             ops: [], finding: f, stderr: ""), i + 1)
            }
            let shrunk = shrink(ops, spaces: spaces, kind: f.kind) ?? (ops, spaces, f, "")
            return (TargetCounterexample(format: format, seed: seed, caseIndex: i, spaces: shrunk.spaces, originalLength: ops.count,
                                         ops: shrunk.ops, finding: shrunk.finding, stderr: shrunk.stderr), i + 1)
        }
        return (nil, cases)
    }
}
