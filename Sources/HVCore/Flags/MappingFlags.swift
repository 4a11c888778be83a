/// Access and attribute flags of a guest mapping, with the raw values axvisor
/// VM configurations use.
public struct MappingFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let read = MappingFlags(rawValue: 0x1)
    public static let write = MappingFlags(rawValue: 0x2)
    public static let execute = MappingFlags(rawValue: 0x4)
    public static let user = MappingFlags(rawValue: 0x8)
    public static let device = MappingFlags(rawValue: 0x10)
    public static let uncached = MappingFlags(rawValue: 0x20)

    public static let all: MappingFlags = [.read, .write, .execute, .user, .device, .uncached]
    public static let readWrite: MappingFlags = [.read, .write]
    public static let rwx: MappingFlags = [.read, .write, .execute]

    /// Parses raw bits from outside input; bits with no meaning are an error,
    /// never silently dropped.
    public init(validating raw: UInt64) throws(FlagsError) {
        let unknown = raw & ~MappingFlags.all.rawValue
        if unknown != 0 { throw .unknownBits(raw: raw, unknown: unknown) }
        self.init(rawValue: raw)
    }

    /// True when no access at all is granted.
    @inlinable public var grantsNoAccess: Bool { intersection(.rwx).isEmpty }
    @inlinable public var isWriteWithoutRead: Bool { contains(.write) && !contains(.read) }

    public var description: String {
        let names: [(MappingFlags, String)] = [
            (.read, "R"), (.write, "W"), (.execute, "X"), (.user, "U"), (.device, "DEV"), (.uncached, "UC"),
        ]
        let parts = names.compactMap { contains($0.0) ? $0.1 : nil }
        return parts.isEmpty ? "-" : parts.joined(separator: "|")
    }
}

public enum FlagsError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownBits(raw: UInt64, unknown: UInt64)

    public var description: String {
        switch self {
        case let .unknownBits(raw, unknown):
            "mapping flags \(hex(raw)) have unknown bits \(hex(unknown)) (known: R=0x1 W=0x2 X=0x4 USER=0x8 DEVICE=0x10 UNCACHED=0x20)"
        }
    }
}
