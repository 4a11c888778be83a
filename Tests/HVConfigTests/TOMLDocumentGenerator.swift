import HVCore

/// Random TOML documents for the differential test: mostly valid ones that
/// use every lexical form and every way of defining a table, over a small
/// pool of key names so that redefinitions happen, and mutants of those
/// and of real configurations (bytes inserted, deleted, lines doubled or
/// swapped) that land on the edges of the grammar.
struct TOMLDocumentGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.below(UInt64(xs.count)))] }
    mutating func chance(_ percent: UInt64) -> Bool { rng.below(100) < percent }

    mutating func key() -> String {
        switch rng.below(10) {
        case 0: return "\"" + pick(["a", "b.c", "", "é", "\\u0041", "tab\\t"]) + "\""
        case 1: return "'" + pick(["a", "b", "x y", ""]) + "'"
        case 2: return pick(["a", "b"]) + pick([".", " . "]) + pick(["a", "b", "c"])
        default: return pick(["a", "b", "c", "d", "x-1", "_y", "1", "true", "inf"])
        }
    }

    mutating func digits(_ n: Int) -> String { String((0..<n).map { _ in Character(String(rng.below(10))) }) }

    mutating func integer() -> String {
        switch rng.below(9) {
        case 0: return "0x" + pick(["DEAD_beef", "7FFF_FFFF_FFFF_FFFF", "8000_0000_0000_0000", "0", "00_1", "_1", "1_"])
        case 1: return "0o" + pick(["755", "0_7", "8", "777777777777777777777"])
        case 2: return "0b" + pick(["1010", "1_0", "2", "1__0"])
        case 3: return pick(["+", "-", ""]) + pick(["0", "00", "01", "9223372036854775807", "9223372036854775808", "1_000", "1__0", "_1"])
        case 4: return "-9223372036854775808"
        default: return pick(["+", "-", ""]) + String(rng.below(1_000_000))
        }
    }

    mutating func float() -> String {
        switch rng.below(6) {
        case 0: return pick(["inf", "+inf", "-inf", "nan", "+nan", "-nan", "infinity", "NaN"])
        case 1: return pick(["1e400", "-1e-400", "4.9e-324", "0.1", "1.", ".5", "1.e5", "1e", "1e+", "1e_5", "1_0.0_1", "3.14_", "0e0", "-0.0", "6.02E+23", "1E0_1"])
        default: return pick(["", "-", "+"]) + String(rng.below(1000)) + "." + digits(Int(rng.below(4)) + 1) + (chance(50) ? pick(["e", "E"]) + pick(["", "+", "-"]) + digits(2) : "")
        }
    }

    mutating func dateTime() -> String {
        let date = pick(["1979-05-27", "2000-02-29", "1900-02-29", "2024-13-01", "0000-01-01", "1999-12-31", "2023-04-31", "2023-4-01"])
        let time = pick(["07:32:00", "00:00:00.999999", "23:59:59.1234567", "24:00:00", "12:60:00", "12:00:60", "07:32", "07:32:00."])
        let offset = pick(["", "Z", "z", "+05:30", "-08:00", "+24:00", "+05", "-00:00"])
        switch rng.below(4) {
        case 0: return date
        case 1: return time
        case 2: return date + pick(["T", "t", " ", "_"]) + time
        default: return date + pick(["T", " "]) + time + offset
        }
    }

    mutating func string() -> String {
        let bodies = ["plain", "with \\\"quote\\\"", "esc \\n\\t\\\\ \\b\\f\\r", "\\u00e9\\U0001F600", "\\uD800", "\\x41", "\\e", "tab\there", "é ü", "a\\ b", "\\U00110000", "\\u12"]
        switch rng.below(6) {
        case 0: return "'" + pick(["lit", "C:\\path", "it''s", "tab\tok"]) + "'"
        case 1: return "'''" + pick(["\nfirst\nsecond", "one'two", "two''", "x''''", "x'''''"]) + "'''"
        case 2: return "\"\"\"" + pick(["\nline\n", "a\\\n   b", "a\\   \n  b", "a \\  x", "q\"\"", "q\"\"\"\"", "q\"\"\"\"\"", "\\\n\n\n"]) + "\"\"\""
        default: return "\"" + pick(bodies) + "\""
        }
    }

    mutating func value(depth: Int) -> String {
        switch rng.below(depth > 2 ? 7 : 9) {
        case 0, 1: return integer()
        case 2: return float()
        case 3: return pick(["true", "false", "True", "tru"])
        case 4: return dateTime()
        case 5, 6: return string()
        case 7:
            let n = Int(rng.below(4))
            let sep = pick([", ", ",\n  ", " , # c\n"])
            return "[" + (0..<n).map { _ in value(depth: depth + 1) }.joined(separator: sep) + (chance(20) ? "," : "") + "]"
        default:
            let n = Int(rng.below(3))
            return "{" + (0..<n).map { _ in "\(key()) = \(value(depth: depth + 1))" }.joined(separator: ", ") + (chance(5) ? "," : "") + "}"
        }
    }

    /// A document of a few sections, each a header and some key/value lines.
    mutating func document() -> String {
        var lines: [String] = []
        for _ in 0..<Int(rng.below(4)) { lines.append("\(key()) = \(value(depth: 0))") }
        for _ in 0..<Int(rng.below(4)) {
            let path = (0...Int(rng.below(2))).map { _ in pick(["a", "b", "c", "\"q\""]) }.joined(separator: ".")
            lines.append(chance(30) ? "[[\(path)]]" : "[\(path)]")
            for _ in 0..<Int(rng.below(4)) {
                lines.append("\(key()) = \(value(depth: 0))" + (chance(20) ? "  # comment" : ""))
            }
        }
        let newline = chance(10) ? "\r\n" : "\n"
        return lines.joined(separator: newline) + (chance(80) ? newline : "")
    }

    static let interesting: [UInt8] = Array("[]=.\"'\\#{},_:-+TZe0x\n\t ".utf8) + [0x0D, 0x01, 0x1B, 0x7F, 0x00, 0xC3, 0xA9, 0xFF, 0xED]

    /// One to three byte-level changes.
    mutating func mutate(_ doc: [UInt8]) -> [UInt8] {
        var d = doc
        for _ in 0...Int(rng.below(3)) {
            let at = d.isEmpty ? 0 : Int(rng.below(UInt64(d.count)))
            switch rng.below(5) {
            case 0: d.insert(pick(Self.interesting), at: at)
            case 1: if !d.isEmpty { d.remove(at: at) }
            case 2: if !d.isEmpty { d[at] = pick(Self.interesting) }
            case 3:
                var lines = d.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
                if !lines.isEmpty { let k = Int(rng.below(UInt64(lines.count))); lines.insert(lines[k], at: k) }
                d = Array(lines.joined(separator: [0x0A]))
            default:
                var lines = d.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
                if lines.count > 1 { lines.swapAt(Int(rng.below(UInt64(lines.count))), Int(rng.below(UInt64(lines.count)))) }
                d = Array(lines.joined(separator: [0x0A]))
            }
        }
        return d
    }
}
