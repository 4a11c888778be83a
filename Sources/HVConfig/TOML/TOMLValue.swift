/// Where something was written in a TOML document: 1-based line and column
/// (the column counts Unicode scalars, as editors and SARIF do).
public struct TOMLPosition: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(line):\(column)" }
}

/// A TOML date, time or date-time. Which parts are present says which of
/// the four kinds it is (offset date-time, local date-time, local date,
/// local time). Fractions are kept to the microsecond; digits past the
/// sixth are dropped, as TOML allows an implementation to do.
public struct TOMLDateTime: Equatable, Hashable, Sendable {
    public var year: Int?, month: Int?, day: Int?
    public var hour: Int?, minute: Int?, second: Int?, microsecond: Int?
    /// Minutes east of UTC; nil for local values.
    public var offsetMinutes: Int?

    public init(year: Int? = nil, month: Int? = nil, day: Int? = nil, hour: Int? = nil, minute: Int? = nil,
                second: Int? = nil, microsecond: Int? = nil, offsetMinutes: Int? = nil) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.microsecond = microsecond
        self.offsetMinutes = offsetMinutes
    }
}

/// One parsed TOML value. Tables and arrays hold nodes, so every value in
/// a document knows where it was written.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case boolean(Bool)
    case dateTime(TOMLDateTime)
    case array([TOMLNode])
    case table(TOMLTable)

    /// The type's name as TOML's specification calls it, for messages.
    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case let .dateTime(d): d.hour == nil ? "local date" : d.year == nil ? "local time" : d.offsetMinutes == nil ? "local date-time" : "offset date-time"
        case .array: "array"
        case .table: "table"
        }
    }
}

/// A value and the position of its first character (a table's is that
/// of its header, or of the key that created it).
public struct TOMLNode: Equatable, Sendable {
    public let value: TOMLValue
    public let position: TOMLPosition

    public init(_ value: TOMLValue, at position: TOMLPosition) {
        self.value = value
        self.position = position
    }

    public var line: Int { position.line }
    public var string: String? { if case let .string(s) = value { s } else { nil } }
    public var integer: Int64? { if case let .integer(i) = value { i } else { nil } }
    public var array: [TOMLNode]? { if case let .array(a) = value { a } else { nil } }
    public var table: TOMLTable? { if case let .table(t) = value { t } else { nil } }
}

/// A TOML table: keys in the order they were first written, each with the
/// position of the key and its value.
public struct TOMLTable: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public let keyPosition: TOMLPosition
        public let node: TOMLNode
    }

    public private(set) var keys: [String] = []
    private var entries: [String: Entry] = [:]

    public init() {}

    mutating func insert(_ key: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key) == nil { keys.append(key) }
    }

    public subscript(key: String) -> TOMLNode? { entries[key]?.node }
    public func entry(_ key: String) -> Entry? { entries[key] }
    public var count: Int { keys.count }
}
