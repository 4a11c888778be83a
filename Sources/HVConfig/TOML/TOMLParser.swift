/// A TOML 1.0 reader that keeps the position of every key and value.
///
/// Written here because the bundled C++ parser HVKit used before aborted
/// the process on some inputs (an assertion in its key parser: the file
/// `[` followed by byte 0x01), and gave positions only for syntax errors.
/// Its accept/reject decisions and values are tested against Python's
/// `tomllib` on generated and mutated documents.
public enum TOMLParser {
    /// Parses a document given as text.
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        try parse(bytes: Array(text.utf8))
    }

    /// Parses a document given as bytes, which must be UTF-8.
    public static func parse(bytes raw: [UInt8]) throws(TOMLError) -> TOMLTable {
        if let bad = firstInvalidUTF8(raw) {
            throw TOMLScanner(raw).error("the document is not UTF-8 (invalid byte sequence)", at: bad)
        }
        // A CR before an LF is part of the line ending; any other CR stays
        // and is refused as a control character wherever it stands.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        for (k, b) in raw.enumerated() where !(b == 0x0D && k + 1 < raw.count && raw[k + 1] == 0x0A) { bytes.append(b) }
        var reader = Reader(scanner: TOMLScanner(bytes))
        return try reader.document()
    }

    /// The offset of the first byte that does not begin a valid UTF-8
    /// sequence (overlong forms, surrogates and values past U+10FFFF are
    /// invalid), or nil.
    static func firstInvalidUTF8(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let (n, minimum): (Int, UInt32) = c & 0xE0 == 0xC0 ? (2, 0x80) : c & 0xF0 == 0xE0 ? (3, 0x800) : c & 0xF8 == 0xF0 ? (4, 0x10000) : (0, 0)
            guard n > 0, i + n <= b.count else { return i }
            var v = UInt32(c) & (0xFF >> (n + 1))
            for k in 1..<n {
                guard b[i + k] & 0xC0 == 0x80 else { return i }
                v = v << 6 | UInt32(b[i + k] & 0x3F)
            }
            guard v >= minimum, v <= 0x10FFFF, !(0xD800...0xDFFF).contains(v) else { return i }
            i += n
        }
        return nil
    }

    struct Reader {
        var s: TOMLScanner
        let root = TOMLTableBuilder(origin: .header, at: TOMLPosition(line: 1, column: 1))
        /// Tables that dotted keys opened in the current section.
        var opened: [TOMLTableBuilder] = []

        init(scanner: TOMLScanner) { s = scanner }

        /// Arrays and inline tables nest at most this deep: each level is a
        /// recursive call here (and in everything that walks the tree), so
        /// an input of nothing but '[' must be refused before the stack ends.
        static let maxNesting = 64
        var nesting = 0

        mutating func enterNested(_ what: String) throws(TOMLError) {
            nesting += 1
            guard nesting <= Self.maxNesting else { throw s.error("\(what) nested more than \(Self.maxNesting) deep") }
        }

        mutating func document() throws(TOMLError) -> TOMLTable {
            var section = root
            while true {
                s.skipSpaces()
                guard let b = s.current else { break }
                if b == 0x0A { s.i += 1; continue }
                if TOMLScanner.isBareKey(b) || b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                    let (key, node) = try keyValue()
                    try section.assign(key, node, opened: &opened)
                } else if b == UInt8(ascii: "[") {
                    for t in opened { t.origin = .dottedClosed }
                    opened = []
                    section = try header()
                } else if b != UInt8(ascii: "#") {
                    throw s.error("\(s.describe(b)) cannot start a statement (expected a key, a [table] or a comment)")
                }
                s.skipSpaces()
                try s.skipComment()
                guard let end = s.current else { break }
                guard end == 0x0A else { throw s.error("expected the end of the line, found \(s.describe(end))") }
                s.i += 1
            }
            return root.build()
        }

        mutating func header() throws(TOMLError) -> TOMLTableBuilder {
            let array = s.peek(1) == UInt8(ascii: "[")
            s.i += array ? 2 : 1
            s.skipSpaces()
            let key = try s.key()
            let close: StaticString = array ? "]]" : "]"
            guard s.starts(with: close) else { throw s.error("expected '\(close)' to end the \(array ? "array of tables" : "table") header") }
            let table = array ? try root.appendTable(key) : try root.defineTable(key)
            s.i += close.utf8CodeUnitCount
            return table
        }

        mutating func keyValue() throws(TOMLError) -> ([(String, TOMLPosition)], TOMLNode) {
            let key = try s.key()
            guard s.current == UInt8(ascii: "=") else {
                throw s.error(s.atEnd ? "expected '=' after the key, found the end of the document" : "expected '=' after the key, found \(s.describe(s.current!))")
            }
            s.i += 1
            s.skipSpaces()
            return (key, try value())
        }

        mutating func value() throws(TOMLError) -> TOMLNode {
            let at = s.position
            guard let b = s.current else { throw s.error("expected a value, found the end of the document") }
            switch b {
            case UInt8(ascii: "\""):
                return TOMLNode(.string(s.starts(with: "\"\"\"") ? try s.multilineBasicString() : try s.basicString()), at: at)
            case UInt8(ascii: "'"):
                return TOMLNode(.string(s.starts(with: "'''") ? try s.multilineLiteralString() : try s.literalString()), at: at)
            case UInt8(ascii: "t") where s.starts(with: "true"):
                s.i += 4
                return TOMLNode(.boolean(true), at: at)
            case UInt8(ascii: "f") where s.starts(with: "false"):
                s.i += 5
                return TOMLNode(.boolean(false), at: at)
            case UInt8(ascii: "["):
                return TOMLNode(.array(try array()), at: at)
            case UInt8(ascii: "{"):
                return TOMLNode(.table(try inlineTable()), at: at)
            default:
                break
            }
            if let d = try s.dateTime() { return TOMLNode(.dateTime(d), at: at) }
            if let n = try s.number() { return TOMLNode(n, at: at) }
            let specials: [(StaticString, Double)] = [("inf", .infinity), ("nan", .nan), ("+inf", .infinity), ("-inf", -.infinity), ("+nan", .nan), ("-nan", -Double.nan)]
            for (word, v) in specials where s.starts(with: word) {
                s.i += word.utf8CodeUnitCount
                return TOMLNode(.float(v), at: at)
            }
            throw s.error("\(s.describe(b)) does not start a value")
        }

        mutating func array() throws(TOMLError) -> [TOMLNode] {
            try enterNested("arrays and inline tables")
            defer { nesting -= 1 }
            let open = s.i
            s.i += 1
            var out: [TOMLNode] = []
            try s.skipArrayFiller()
            if s.current == UInt8(ascii: "]") { s.i += 1; return out }
            while true {
                out.append(try value())
                try s.skipArrayFiller()
                guard let c = s.current else { throw s.error("unterminated array", at: open) }
                if c == UInt8(ascii: "]") { s.i += 1; return out }
                guard c == UInt8(ascii: ",") else { throw s.error("expected ',' or ']' in the array, found \(s.describe(c))") }
                s.i += 1
                try s.skipArrayFiller()
                if s.current == UInt8(ascii: "]") { s.i += 1; return out }
            }
        }

        mutating func inlineTable() throws(TOMLError) -> TOMLTable {
            try enterNested("arrays and inline tables")
            defer { nesting -= 1 }
            let table = TOMLTableBuilder(origin: .header, at: s.position)
            var inner: [TOMLTableBuilder] = []
            s.i += 1
            s.skipSpaces()
            if s.current == UInt8(ascii: "}") { s.i += 1; return table.build() }
            while true {
                let (key, node) = try keyValue()
                try table.assign(key, node, opened: &inner)
                s.skipSpaces()
                guard let c = s.current else { throw s.error("unterminated inline table") }
                if c == UInt8(ascii: "}") { s.i += 1; return table.build() }
                guard c == UInt8(ascii: ",") else { throw s.error("expected ',' or '}' in the inline table, found \(s.describe(c))") }
                s.i += 1
                s.skipSpaces()
            }
        }
    }
}
