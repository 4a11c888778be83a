/// A table while its document is being read, and TOML 1.0's rules for
/// defining tables: a table is defined once, by a `[header]`, by dotted
/// keys within one section, or inline; `[[header]]` appends to an array of
/// tables; inline tables and arrays are frozen.
final class TOMLTableBuilder {
    /// How the table came to exist, which decides what may reopen it.
    enum Origin {
        /// Named as a prefix of a header (`[a]` for `[a.b]`): a later
        /// `[a]` may still define it.
        case implicit
        /// Defined by its own `[header]` or as an `[[array]]` element.
        case header
        /// Created by dotted keys in the section being read: more dotted
        /// keys in the same section may add to it.
        case dottedOpen
        /// Created by dotted keys in an earlier section: closed.
        case dottedClosed
    }

    enum Item {
        /// A value written whole (scalars, arrays, inline tables): frozen.
        case value(TOMLNode, key: TOMLPosition)
        case table(TOMLTableBuilder, key: TOMLPosition)
        case tables([TOMLTableBuilder], key: TOMLPosition)
    }

    var origin: Origin
    let position: TOMLPosition
    private(set) var keys: [String] = []
    private var items: [String: Item] = [:]

    init(origin: Origin, at position: TOMLPosition) {
        self.origin = origin
        self.position = position
    }

    subscript(key: String) -> Item? {
        get { items[key] }
        set {
            if items.updateValue(newValue!, forKey: key) == nil { keys.append(key) }
        }
    }

    /// The table a header path's prefix names: created as implicit where
    /// missing, the last element of an array of tables, or an error.
    func descend(_ part: (String, TOMLPosition)) throws(TOMLError) -> TOMLTableBuilder {
        switch self[part.0] {
        case nil:
            let t = TOMLTableBuilder(origin: .implicit, at: part.1)
            self[part.0] = .table(t, key: part.1)
            return t
        case let .table(t, _): return t
        case let .tables(ts, _): return ts.last!
        case .value: throw TOMLError("'\(part.0)' is already a value, not a table", at: part.1)
        }
    }

    /// `[a.b.c]`: defines the table at the path, once.
    func defineTable(_ path: [(String, TOMLPosition)]) throws(TOMLError) -> TOMLTableBuilder {
        var t = self
        for part in path.dropLast() { t = try t.descend(part) }
        let last = path.last!
        switch t[last.0] {
        case nil:
            let n = TOMLTableBuilder(origin: .header, at: last.1)
            t[last.0] = .table(n, key: last.1)
            return n
        case let .table(n, _) where n.origin == .implicit:
            n.origin = .header
            return n
        case .table, .tables:
            throw TOMLError("table '\(path.map(\.0).joined(separator: "."))' is defined twice", at: last.1)
        case .value:
            throw TOMLError("'\(last.0)' is already a value, not a table", at: last.1)
        }
    }

    /// `[[a.b.c]]`: appends a new table to the array of tables at the path.
    func appendTable(_ path: [(String, TOMLPosition)]) throws(TOMLError) -> TOMLTableBuilder {
        var t = self
        for part in path.dropLast() { t = try t.descend(part) }
        let last = path.last!
        let n = TOMLTableBuilder(origin: .header, at: last.1)
        switch t[last.0] {
        case nil: t[last.0] = .tables([n], key: last.1)
        case let .tables(ts, key): t[last.0] = .tables(ts + [n], key: key)
        case .table: throw TOMLError("'\(last.0)' is a table, not an array of tables", at: last.1)
        case .value: throw TOMLError("'\(last.0)' is already a value; an array written inline cannot be extended", at: last.1)
        }
        return n
    }

    /// `a.b.c = value` in this table's section (or inside an inline table,
    /// where every dotted table is open until the inline table ends).
    /// Tables the dotted keys open are added to `opened`, which the reader
    /// closes when the section ends.
    func assign(_ path: [(String, TOMLPosition)], _ node: TOMLNode, opened: inout [TOMLTableBuilder]) throws(TOMLError) {
        var t = self
        for part in path.dropLast() {
            switch t[part.0] {
            case nil:
                let n = TOMLTableBuilder(origin: .dottedOpen, at: part.1)
                t[part.0] = .table(n, key: part.1)
                opened.append(n)
                t = n
            case let .table(n, _) where n.origin == .implicit || n.origin == .dottedOpen:
                if n.origin == .implicit { n.origin = .dottedOpen; opened.append(n) }
                t = n
            case .table, .tables:
                throw TOMLError("dotted key '\(path.map(\.0).joined(separator: "."))' would add to table '\(part.0)', which is already defined", at: part.1)
            case .value:
                throw TOMLError("'\(part.0)' is already a value, not a table", at: part.1)
            }
        }
        let last = path.last!
        guard t[last.0] == nil else { throw TOMLError("key '\(path.map(\.0).joined(separator: "."))' is defined twice", at: last.1) }
        t[last.0] = .value(node, key: last.1)
    }

    /// The finished, immutable table.
    func build() -> TOMLTable {
        var out = TOMLTable()
        for key in keys {
            switch items[key]! {
            case let .value(node, k): out.insert(key, .init(keyPosition: k, node: node))
            case let .table(t, k): out.insert(key, .init(keyPosition: k, node: TOMLNode(.table(t.build()), at: t.position)))
            case let .tables(ts, k):
                let nodes = ts.map { TOMLNode(.table($0.build()), at: $0.position) }
                out.insert(key, .init(keyPosition: k, node: TOMLNode(.array(nodes), at: k)))
            }
        }
        return out
    }
}
