import ArgumentParser
import Foundation
import HVCore
import HVSpecs
import HVTarget

/// `hvkit serve`: HVCore behind the target protocol (docs/target-protocol.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve HVCore's address spaces over the target protocol on stdin/stdout (for hunt --target)."
    )

    @Option(help: "Switch on one of HVCore's seeded bugs in every space (debug builds only; 'hvkit hunt --bug list' names them).")
    var bug: String?

    func run() throws {
        var seeded: SeededBug?
        if let bug {
            guard let b = SeededBug(rawValue: bug) else { throw ValidationError("unknown bug '\(bug)'") }
            guard SeededBug.available else { throw ValidationError("seeded bugs are compiled only into debug builds") }
            seeded = b
        }
        Self.serve(bug: seeded)
    }

    static func serve(bug: SeededBug?) { TargetServer(bug: bug).run() }
}

/// The path of this executable, for targets that are hvkit itself.
func ownExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

/// `hvkit hunt --target CMD`: the campaign against another process.
struct TargetHuntRun {
    let command: String
    let formatOption: String
    let cases: Int
    let seed: UInt64
    let maxLength: Int
    let timeoutMs: Int
    let json: Bool
    let output: String?

    func progress(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    /// The target's formats among those asked for; exits 2 if it cannot be used.
    func formats() throws -> [NestedFormat] {
        let probe = try? TargetRun(command: command, format: .ept, spaces: 1, timeoutMs: timeoutMs)
        guard let probe else { throw badInput("hunt", "the target '\(command)' could not be started") }
        defer { probe.stop() }
        if let f = probe.start(), probe.hello == nil {
            throw badInput("hunt", "the target cannot be used: \(f.message)" + (probe.stop().isEmpty ? "" : " (see its stderr above)"))
        }
        let offered = probe.hello!.formats
        if formatOption == "all" {
            let both = NestedFormat.campaign.filter { offered.contains($0.rawValue) }
            guard !both.isEmpty else { throw badInput("hunt", "the target offers none of the campaign's formats (it offers \(offered.joined(separator: ", ")))") }
            return both
        }
        guard let f = NestedFormat(rawValue: formatOption) else { throw ValidationError("--format is ept, stage2, stage2-48, sv39x4, sv48x4 or all") }
        guard offered.contains(f.rawValue) else { throw badInput("hunt", "the target does not offer format \(f) (it offers \(offered.joined(separator: ", ")))") }
        return [f]
    }

    func run() throws {
        var anyFound = false
        for format in try formats() {
            let clock = ContinuousClock(), start = clock.now
            var hunt = TargetHunt(command: command, format: format, timeoutMs: timeoutMs)
            let (found, casesRun) = hunt.hunt(cases: cases, seed: seed, maxLength: maxLength) { i in
                if !json, i % 10 == 0 || i == cases - 1 { progress("\rhunt \(format) against \(command): case \(i + 1)/\(cases)") }
            }
            if !json { progress("\n") }
            let d = clock.now - start
            let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
            var replayPath: String?
            if let c = found, !c.ops.isEmpty {
                let path = output ?? "hvkit-counterexample-\(format).jsonl"
                do { try c.replayScript.write(toFile: path, atomically: true, encoding: .utf8); replayPath = path } catch {
                    progress("hunt: could not write \(path): \(error)\n")
                }
            }
            if let c = found, c.finding.step == 0 {
                throw badInput("hunt", "the target cannot be used (\(c.finding.kind)): \(c.finding.message)")
            }
            let name = hunt.hello?.name ?? command
            if json {
                var fields: [(String, JSONValue)] = [
                    ("format", .string(format.rawValue)), ("target", .string(name)), ("seed", TargetProtocol.hex64(seed)),
                    ("cases_run", .int(Int64(casesRun))), ("found", .bool(found != nil)),
                    ("operations", .int(Int64(hunt.operations))), ("requests", .int(Int64(hunt.requests))),
                    ("notes", .array(hunt.notes.map { .string($0) })), ("seconds", .string(String(format: "%.2f", seconds))),
                ]
                if let c = found {
                    fields += [("case", .int(Int64(c.caseIndex))), ("spaces", .int(Int64(c.spaces))),
                               ("original_length", .int(Int64(c.originalLength))), ("length", .int(Int64(c.ops.count))),
                               ("kind", .string(c.finding.kind)), ("message", .string(c.finding.message)),
                               ("ops", .array(c.ops.compactMap { TargetOps.request($0)?.json(id: 0) })),
                               ("stderr", .string(c.stderr)), ("replay", replayPath.map { .string($0) } ?? .null)]
                }
                print(JSONValue.object(fields).description)
            } else if let c = found {
                print("\(format): \(c.finding.kind) against \(name) in case \(c.caseIndex) (\(c.spaces) address space(s)), shrunk from \(c.originalLength) to \(c.ops.count) operations:")
                print("  \(c.finding.message.replacingOccurrences(of: "\n", with: "\n  "))")
                print("  operations:")
                for (op, expect) in zip(c.ops, TargetRun.expectations(c.ops, spaces: c.spaces)) {
                    if let r = TargetOps.request(op) { print("    \(r.json(id: 0))   expect \(expect)") }
                }
                if !c.stderr.isEmpty { print("  target stderr:\n    " + c.stderr.replacingOccurrences(of: "\n", with: "\n    ")) }
                if let replayPath { print("  replay: hvkit replay \(replayPath) --target '\(command)'") }
            } else {
                print("\(format): nothing found against \(name) in \(casesRun) cases (seed \(hex(seed))), \(hunt.operations) operations, \(hunt.requests) requests in \(String(format: "%.1f", seconds)) s")
            }
            for n in hunt.notes where !json { print("  note: \(n)") }
            anyFound = anyFound || found != nil
        }
        if anyFound { throw ExitCode(1) }
    }
}

/// `hvkit replay FILE --target CMD`: does the target still fail the case?
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a counterexample file (from hunt --target) against a target.",
        discussion: "Exits 0 when the target now passes the case, 1 when it still fails it, 2 for a file that cannot be read."
    )

    @Argument(help: "The .jsonl replay file.")
    var file: String

    @Option(help: "The target command (plain words are run directly, anything else under /bin/sh).")
    var target: String

    @Option(help: "Milliseconds the target may take to answer one request.")
    var timeoutMs = 5000

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw badInput("replay", "cannot read \(file)") }
        let replay: ReplayCase
        do { replay = try ReplayCase.parse(text) } catch { throw badInput("replay", "\(file): \(error)") }
        var hunt = TargetHunt(command: target, format: replay.format, timeoutMs: timeoutMs)
        let result = hunt.failure(of: replay.ops, spaces: replay.spaces)
        if json {
            var fields: [(String, JSONValue)] = [("file", .string(file)), ("format", .string(replay.format.rawValue)),
                                                 ("operations", .int(Int64(replay.ops.count))), ("fails", .bool(result != nil))]
            if let (f, e) = result { fields += [("kind", .string(f.kind)), ("step", .int(Int64(f.step))), ("message", .string(f.message)), ("stderr", .string(e))] }
            print(JSONValue.object(fields).description)
        } else if let (f, e) = result {
            print("\(file): still fails: \(f)")
            if !e.isEmpty { print("  target stderr:\n    " + e.replacingOccurrences(of: "\n", with: "\n    ")) }
        } else {
            print("\(file): passes (\(replay.ops.count) operations on \(replay.format))")
        }
        if result != nil { throw ExitCode(1) }
    }
}
