import Foundation
import HVConfig
import HVCore
import Testing

/// The canonical form `Oracle/toml_oracle.py` prints for tomllib's answer.
func canonical(_ v: TOMLValue) -> String {
    func hex(_ s: String) -> String { s.utf8.map { String(format: "%02x", $0) }.joined() }
    switch v {
    case let .boolean(b): return b ? "b1" : "b0"
    case let .integer(i): return "i\(i)"
    case let .float(d): return d.isNaN ? "fnan" : "f" + String(format: "%016llx", d.bitPattern)
    case let .string(s): return "s" + hex(s)
    case let .dateTime(t):
        if let y = t.year, let mo = t.month, let d = t.day {
            guard let h = t.hour, let mi = t.minute, let s = t.second else { return "D\(y)-\(mo)-\(d)" }
            let core = "\(y)-\(mo)-\(d)-\(h)-\(mi)-\(s)-\(t.microsecond ?? 0)"
            return t.offsetMinutes.map { "O" + core + "-\($0)" } ?? "L" + core
        }
        return "T\(t.hour!)-\(t.minute!)-\(t.second!)-\(t.microsecond ?? 0)"
    case let .array(a): return "[" + a.map { canonical($0.value) }.joined(separator: ",") + "]"
    case let .table(t):
        let keys = t.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return "{" + keys.map { hex($0) + "=" + canonical(t[$0]!.value) }.joined(separator: ",") + "}"
    }
}

/// Runs Python's tomllib over the documents; nil when python3 with tomllib
/// (Python 3.11+) is not there.
func tomllibAnswers(_ docs: [[UInt8]]) throws -> [String]? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Oracle/toml_oracle.py")
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-toml-\(getpid()).hex")
    defer { try? FileManager.default.removeItem(at: input) }
    try docs.map { $0.map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n").appending("\n").write(to: input, atomically: true, encoding: .utf8)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script.path, input.path]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

@Suite("TOML reader")
struct TOMLReaderTests {
    /// 12,000 documents: 6,000 generated, 6,000 mutants of generated ones
    /// and of the configuration fixtures. HVKit and tomllib must agree on
    /// every accept/reject decision and on every parsed value.
    @Test func agreesWithPythonTomllib() throws {
        var gen = TOMLDocumentGenerator(seed: 0x70_4d4c)
        var docs: [[UInt8]] = []
        var seeds = try FileManager.default.contentsOfDirectory(atPath: Fixtures.dir.appendingPathComponent("good").path)
            .filter { $0.hasSuffix(".toml") }.map { Array(try Fixtures.text("good/" + $0).utf8) }
        seeds += try ["bad/toml-syntax.toml", "bad/huge-number.toml"].map { Array(try Fixtures.text($0).utf8) }
        for _ in 0..<6000 { docs.append(Array(gen.document().utf8)) }
        for k in 0..<6000 { docs.append(gen.mutate(k % 3 == 0 ? gen.pick(seeds) : docs[k])) }
        docs.append([UInt8(ascii: "["), 0x01])
        docs.append([UInt8(ascii: "["), 0x1B])
        guard let answers = try tomllibAnswers(docs) else {
            print("SKIPPED: TOML differential against tomllib: python3 with tomllib (3.11+) is not available")
            return
        }
        try #require(answers.count == docs.count)
        var accepted = 0, rejected = 0, bigints = 0, disagreements: [String] = []
        for (doc, answer) in zip(docs, answers) {
            let mine: String
            do { mine = "ok " + canonical(.table(try TOMLParser.parse(bytes: doc))) } catch { mine = "error" }
            let expected = answer == "bigint" ? "error" : answer
            if answer == "bigint" { bigints += 1 } else if answer == "error" { rejected += 1 } else { accepted += 1 }
            if mine != expected && disagreements.count < 5 {
                disagreements.append("document \(String(decoding: doc, as: UTF8.self).debugDescription): HVKit \(mine.prefix(200)), tomllib \(answer.prefix(200))")
            }
        }
        print("TOML differential: \(docs.count) documents, \(accepted) accepted and \(rejected) rejected by both, \(bigints) with integers past 64 bits (tomllib accepts, HVKit refuses), \(disagreements.count) disagreements")
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        #expect(accepted > 1500 && rejected > 1500, "both outcomes are exercised")
    }

    /// The inputs that aborted the process inside the C++ parser used before.
    @Test(arguments: [[UInt8(ascii: "["), 0x01], [UInt8(ascii: "["), 0x1B], Array("a = \"\u{1}\"".utf8), Array("[a\u{7F}]".utf8)])
    func controlCharactersAreErrorsWithAPosition(_ doc: [UInt8]) {
        #expect(throws: TOMLError.self) { try TOMLParser.parse(bytes: doc) }
        do { _ = try TOMLParser.parse(bytes: doc) } catch { #expect(error.position.line == 1 && error.position.column >= 1) }
    }

    /// Found by fuzz-config (its input is in Fuzz/corpus/config): arrays
    /// nested hundreds deep overflowed the stack in the recursive reader.
    /// Nesting is limited; an ordinary depth still reads.
    @Test func deepNestingIsAnErrorNotAStackOverflow() throws {
        for opener in ["[", "{a = "] {
            let doc = "x = " + String(repeating: opener, count: 100_000)
            #expect(throws: TOMLError.self) { try TOMLParser.parse(bytes: Array(doc.utf8)) }
            do { _ = try TOMLParser.parse(bytes: Array(doc.utf8)) } catch { #expect(error.description.contains("nested more than 64 deep"), "\(error)") }
        }
        let fine = "x = " + String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? TOMLParser.parse(bytes: Array(fine.utf8))) != nil)
    }

    @Test func everyKeyAndValueKnowsWhereItWasWritten() throws {
        let t = try TOMLParser.parse("# c\n[kernel]\nentry = 0x8000\nregions = [\n  [1, 2],\n  [3, 4], # x\n]\n[devices]\nname.first = 'é'  \n")
        let kernel = try #require(t["kernel"]?.table)
        #expect(t["kernel"]?.position == TOMLPosition(line: 2, column: 2))
        #expect(kernel.entry("entry")?.keyPosition == TOMLPosition(line: 3, column: 1))
        #expect(kernel["entry"]?.position == TOMLPosition(line: 3, column: 9))
        #expect(kernel["entry"]?.integer == 0x8000)
        let regions = try #require(kernel["regions"]?.array)
        #expect(regions.map(\.line) == [5, 6])
        #expect(regions[1].array?[1].position == TOMLPosition(line: 6, column: 7))
        #expect(t["devices"]?.table?["name"]?.table?["first"]?.string == "é")
        #expect(t.keys == ["kernel", "devices"])
    }

    @Test func errorsSayWhatAndWhere() {
        func error(_ s: String) -> TOMLError? {
            do { _ = try TOMLParser.parse(s); return nil } catch { return error }
        }
        #expect(error("a = 1\na = 2\n")?.position == TOMLPosition(line: 2, column: 1))
        #expect(error("[t]\n[t]\n")?.message.contains("defined twice") == true)
        #expect(error("x = [1,\n 2\n")?.message.contains("unterminated array") == true)
        #expect(error("x = 0x8000_0000_0000_0000\n")?.message.contains("64 bits") == true)
        #expect(error("x = 1979-02-29\n")?.message.contains("not a date") == true)
        #expect(error("x = \"\\uD800\"\n")?.message.contains("scalar") == true)
        #expect(error("x = 1\r\n y = 2\r") != nil, "a lone CR is refused")
        #expect(throws: TOMLError.self, "bytes that are not UTF-8") { try TOMLParser.parse(bytes: [0x61, 0x3D, 0x22, 0xFF, 0x22]) }
        #expect(error("a = 1\r\nb = 2\r\n") == nil, "CRLF line endings")
    }
}

@Suite("Configuration reader under mutation")
struct ConfigMutationTests {
    /// 5,000 byte-level mutants of every fixture go through the whole
    /// path `hvkit check` takes (TOML, format, every rule): each is read or
    /// refused with a ConfigError, and nothing traps.
    @Test func mutantsAreReadOrRefusedNeverACrash() throws {
        var gen = TOMLDocumentGenerator(seed: 0xBAD_C0F)
        var seeds: [[UInt8]] = []
        for sub in ["good", "bad"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: Fixtures.dir.appendingPathComponent(sub).path) where name.hasSuffix(".toml") {
                let bytes = [UInt8](try Data(contentsOf: Fixtures.dir.appendingPathComponent("\(sub)/\(name)")))
                // Readable ones only: mutants of unreadable files are mostly unreadable too.
                if (try? ConfigParser.parse(file: name, bytes: bytes)) != nil { seeds.append(bytes) }
            }
        }
        var read = 0, refused = 0
        for _ in 0..<5000 {
            let doc = gen.mutate(gen.pick(seeds))
            do {
                let c = try ConfigParser.parse(file: "mutant.toml", bytes: doc)
                _ = Checker().evaluate([c])
                read += 1
            } catch {
                #expect(!error.description.isEmpty)
                refused += 1
            }
        }
        print("configuration mutants: \(read) read and checked, \(refused) refused with a ConfigError")
        #expect(seeds.count > 30 && read > 300 && refused > 300)
    }
}
