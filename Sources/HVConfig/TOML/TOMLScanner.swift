/// The lexical half of the TOML 1.0 reader: a cursor over the document's
/// UTF-8 bytes that reads whitespace, comments, keys and scalar values
/// (strings, integers, floats, booleans, dates and times). The structure
/// (statements, tables, arrays) is `TOMLParser`'s.
///
/// Every byte below 0x20 other than tab and line feed, and 0x7F, is
/// refused wherever it stands, as TOML 1.0 requires; a carriage return is
/// accepted only before a line feed (the reader drops it there first).
struct TOMLScanner {
    let bytes: [UInt8]
    var i = 0
    /// Byte offset at which each line starts.
    private let lineStarts: [Int]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var starts = [0]
        for (k, b) in bytes.enumerated() where b == 0x0A { starts.append(k + 1) }
        lineStarts = starts
    }

    var atEnd: Bool { i >= bytes.count }
    var current: UInt8? { i < bytes.count ? bytes[i] : nil }
    func peek(_ k: Int) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }
    func starts(with s: StaticString) -> Bool {
        // SAFETY: a StaticString's UTF-8 buffer is valid for its whole length, for the program's lifetime.
        let u = UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
        guard i + u.count <= bytes.count else { return false }
        for k in 0..<u.count where bytes[i + k] != u[k] { return false }
        return true
    }

    func position(_ offset: Int) -> TOMLPosition {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        // Columns count scalars: every byte that is not a UTF-8 continuation byte.
        let column = bytes[lineStarts[lo]..<min(offset, bytes.count)].reduce(1) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        return TOMLPosition(line: lo + 1, column: column)
    }

    var position: TOMLPosition { position(i) }

    func error(_ message: String, at offset: Int? = nil) -> TOMLError { TOMLError(message, at: position(offset ?? i)) }

    static func isControl(_ b: UInt8) -> Bool { b < 0x20 || b == 0x7F }
    static func isBareKey(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F
    }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: Int(b - 0x30)
        case 0x41...0x46: Int(b - 0x41 + 10)
        case 0x61...0x66: Int(b - 0x61 + 10)
        default: nil
        }
    }

    func describe(_ b: UInt8) -> String {
        b < 0x20 || b >= 0x7F ? "byte 0x" + String(b, radix: 16, uppercase: true) : "'\(Character(Unicode.Scalar(b)))'"
    }

    // MARK: Whitespace and comments

    mutating func skipSpaces() {
        while let b = current, b == 0x20 || b == 0x09 { i += 1 }
    }

    /// A comment runs to the end of the line; control characters other
    /// than tab are refused inside it.
    mutating func skipComment() throws(TOMLError) {
        guard current == UInt8(ascii: "#") else { return }
        i += 1
        while let b = current, b != 0x0A {
            if b != 0x09 && Self.isControl(b) { throw error("\(describe(b)) is not allowed in a comment") }
            i += 1
        }
    }

    /// Whitespace, newlines and comments, as allowed between array elements.
    mutating func skipArrayFiller() throws(TOMLError) {
        while true {
            let before = i
            while let b = current, b == 0x20 || b == 0x09 || b == 0x0A { i += 1 }
            try skipComment()
            if i == before { return }
        }
    }

    // MARK: Keys

    /// One part of a key: bare, literal or basic (single-line) string.
    mutating func keyPart() throws(TOMLError) -> String {
        guard let b = current else { throw error("expected a key, found the end of the document") }
        if Self.isBareKey(b) {
            let start = i
            while let c = current, Self.isBareKey(c) { i += 1 }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }
        if b == UInt8(ascii: "'") { return try literalString() }
        if b == UInt8(ascii: "\"") { return try basicString() }
        throw error("\(describe(b)) cannot start a key")
    }

    /// A dotted key, with the position of each part.
    mutating func key() throws(TOMLError) -> [(String, TOMLPosition)] {
        var parts: [(String, TOMLPosition)] = []
        while true {
            let at = position
            parts.append((try keyPart(), at))
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return parts }
            i += 1
            skipSpaces()
        }
    }

    // MARK: Strings

    mutating func literalString() throws(TOMLError) -> String {
        i += 1
        let start = i
        while true {
            guard let b = current else { throw error("unterminated literal string", at: start - 1) }
            if b == UInt8(ascii: "'") { break }
            if b != 0x09 && Self.isControl(b) { throw error("\(describe(b)) is not allowed in a string") }
            i += 1
        }
        defer { i += 1 }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    mutating func multilineLiteralString() throws(TOMLError) -> String {
        let open = i
        i += 3
        if current == 0x0A { i += 1 }
        let start = i
        while !starts(with: "'''") {
            guard let b = current else { throw error("unterminated multi-line literal string", at: open) }
            if b != 0x09 && b != 0x0A && Self.isControl(b) { throw error("\(describe(b)) is not allowed in a string") }
            i += 1
        }
        var text = String(decoding: bytes[start..<i], as: UTF8.self)
        i += 3
        // Up to two quotes just before the closing three belong to the string.
        for _ in 0..<2 where current == UInt8(ascii: "'") { text += "'"; i += 1 }
        return text
    }

    mutating func basicString() throws(TOMLError) -> String {
        let open = i
        i += 1
        var out: [UInt8] = []
        while true {
            guard let b = current else { throw error("unterminated string", at: open) }
            if b == UInt8(ascii: "\"") { i += 1; break }
            if b == UInt8(ascii: "\\") { try escape(into: &out, multiline: false); continue }
            if b != 0x09 && Self.isControl(b) { throw error("\(describe(b)) is not allowed in a string") }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func multilineBasicString() throws(TOMLError) -> String {
        let open = i
        i += 3
        if current == 0x0A { i += 1 }
        var out: [UInt8] = []
        while true {
            guard let b = current else { throw error("unterminated multi-line string", at: open) }
            if starts(with: "\"\"\"") {
                i += 3
                for _ in 0..<2 where current == UInt8(ascii: "\"") { out.append(UInt8(ascii: "\"")); i += 1 }
                break
            }
            if b == UInt8(ascii: "\\") { try escape(into: &out, multiline: true); continue }
            if b != 0x09 && b != 0x0A && Self.isControl(b) { throw error("\(describe(b)) is not allowed in a string") }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A backslash escape; in a multi-line string a backslash at the end of
    /// a line (trailing spaces allowed) swallows the line break and all
    /// whitespace after it.
    mutating func escape(into out: inout [UInt8], multiline: Bool) throws(TOMLError) {
        let at = i
        i += 1
        guard let e = current else { throw error("unterminated string", at: at) }
        if multiline && (e == 0x20 || e == 0x09 || e == 0x0A) {
            skipSpaces()
            if atEnd { return }
            guard current == 0x0A else { throw error("a backslash in a string must start an escape", at: at) }
            while let b = current, b == 0x20 || b == 0x09 || b == 0x0A { i += 1 }
            return
        }
        i += 1
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let n = e == UInt8(ascii: "u") ? 4 : 8
            var v = 0
            for _ in 0..<n {
                guard let b = current, let h = Self.hexValue(b) else { throw error("\\\(Character(Unicode.Scalar(e))) needs \(n) hex digits") }
                v = v * 16 + h
                i += 1
            }
            guard let scalar = Unicode.Scalar(UInt32(v)) else {
                throw error("escape U+\(String(v, radix: 16, uppercase: true)) is not a Unicode scalar value", at: at)
            }
            out.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            throw error("\\\(describe(e)) is not a valid escape", at: at)
        }
    }

    // MARK: Numbers, dates and times

    /// Reads `count` digits at the cursor as a number, or nil (cursor unmoved).
    mutating func digits(_ count: Int) -> Int? {
        var v = 0
        for k in 0..<count {
            guard let b = peek(k), Self.isDigit(b) else { return nil }
            v = v * 10 + Int(b - 0x30)
        }
        i += count
        return v
    }

    /// HH:MM:SS with an optional fraction; nil (cursor unmoved) if the text
    /// there is not a time.
    mutating func time() -> (Int, Int, Int, Int)? {
        let start = i
        guard let h = digits(2), h <= 23, current == UInt8(ascii: ":") else { i = start; return nil }
        i += 1
        guard let m = digits(2), m <= 59, current == UInt8(ascii: ":") else { i = start; return nil }
        i += 1
        guard let s = digits(2), s <= 59 else { i = start; return nil }
        var micro = 0
        if current == UInt8(ascii: "."), let b = peek(1), Self.isDigit(b) {
            i += 1
            var n = 0
            while let b = current, Self.isDigit(b) {
                if n < 6 { micro = micro * 10 + Int(b - 0x30); n += 1 }
                i += 1
            }
            for _ in n..<6 { micro *= 10 }
        }
        return (h, m, s, micro)
    }

    /// A date, a date-time or a time at the cursor; nil (cursor unmoved)
    /// when the text there is none of them.
    mutating func dateTime() throws(TOMLError) -> TOMLDateTime? {
        let start = i
        if let y = digits(4), current == UInt8(ascii: "-") {
            i += 1
            if let mo = digits(2), (1...12).contains(mo), current == UInt8(ascii: "-") {
                i += 1
                if let d = digits(2), (1...31).contains(d) {
                    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
                    let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
                    guard y >= 1, d <= days else { throw error("\(y)-\(mo)-\(d) is not a date", at: start) }
                    var value = TOMLDateTime(year: y, month: mo, day: d)
                    let beforeTime = i
                    if let sep = current, sep == UInt8(ascii: "T") || sep == UInt8(ascii: "t") || sep == 0x20 {
                        i += 1
                        if let (h, m, s, us) = time() {
                            (value.hour, value.minute, value.second, value.microsecond) = (h, m, s, us)
                            if let z = current, z == UInt8(ascii: "Z") || z == UInt8(ascii: "z") {
                                i += 1
                                value.offsetMinutes = 0
                            } else if let sign = current, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                                let offsetStart = i
                                i += 1
                                if let oh = digits(2), oh <= 23, current == UInt8(ascii: ":") {
                                    i += 1
                                    if let om = digits(2), om <= 59 {
                                        value.offsetMinutes = (sign == UInt8(ascii: "+") ? 1 : -1) * (oh * 60 + om)
                                    } else { i = offsetStart }
                                } else { i = offsetStart }
                            }
                        } else { i = beforeTime }
                    }
                    return value
                }
            }
            i = start
            return nil
        }
        i = start
        if let (h, m, s, us) = time() { return TOMLDateTime(hour: h, minute: m, second: s, microsecond: us) }
        return nil
    }

    /// Digits in `isDigit` with single underscores between them; the cursor
    /// must be on a digit. Returns the digits without underscores.
    mutating func digitRun(_ isDigit: (UInt8) -> Bool) -> [UInt8] {
        var out: [UInt8] = []
        while let b = current {
            if isDigit(b) { out.append(b); i += 1; continue }
            if b == UInt8(ascii: "_"), let n = peek(1), isDigit(n), !out.isEmpty { i += 1; continue }
            break
        }
        return out
    }

    /// An integer or float at the cursor; nil (cursor unmoved) if none.
    mutating func number() throws(TOMLError) -> TOMLValue? {
        let start = i
        // 0x, 0o, 0b: unsigned, underscores between digits.
        if current == UInt8(ascii: "0"), let p = peek(1) {
            let radix: Int? = p == UInt8(ascii: "x") ? 16 : p == UInt8(ascii: "o") ? 8 : p == UInt8(ascii: "b") ? 2 : nil
            if let radix, let first = peek(2), let fv = Self.hexValue(first), fv < radix {
                i += 2
                let run = digitRun { Self.hexValue($0).map { $0 < radix } ?? false }
                var v: UInt64 = 0
                for d in run {
                    let (m, o1) = v.multipliedReportingOverflow(by: UInt64(radix))
                    let (s, o2) = m.addingReportingOverflow(UInt64(Self.hexValue(d)!))
                    guard !o1, !o2, s <= UInt64(Int64.max) else { throw error("integer does not fit in 64 bits", at: start) }
                    v = s
                }
                return .integer(Int64(v))
            }
        }
        var text: [UInt8] = []
        if let s = current, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { text.append(s); i += 1 }
        guard let first = current, Self.isDigit(first) else { i = start; return nil }
        if first == UInt8(ascii: "0") {
            text.append(first)
            i += 1
        } else {
            text += digitRun(Self.isDigit)
        }
        var isFloat = false
        if current == UInt8(ascii: "."), let n = peek(1), Self.isDigit(n) {
            i += 1
            text.append(UInt8(ascii: "."))
            text += digitRun(Self.isDigit)
            isFloat = true
        }
        if let e = current, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            let save = i
            i += 1
            var exp: [UInt8] = [UInt8(ascii: "e")]
            if let s = current, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { exp.append(s); i += 1 }
            if let d = current, Self.isDigit(d) {
                text += exp + digitRun(Self.isDigit)
                isFloat = true
            } else {
                i = save
            }
        }
        let literal = String(decoding: text, as: UTF8.self)
        if isFloat {
            guard let d = Double(literal) else { throw error("\(literal) is not a float", at: start) }
            return .float(d)
        }
        guard let v = Int64(literal) else { throw error("integer \(literal) does not fit in 64 bits", at: start) }
        return .integer(v)
    }
}
