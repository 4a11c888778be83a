/// The leaf sizes a nested page table can map: 4 KiB, 2 MiB and 1 GiB.
public enum PageSize: UInt64, CaseIterable, Comparable, Sendable, CustomStringConvertible {
    case size4K = 0x1000
    case size2M = 0x20_0000
    case size1G = 0x4000_0000

    @inlinable public var bytes: UInt64 { rawValue }
    @inlinable public var mask: UInt64 { rawValue &- 1 }
    /// log2 of the size: 12, 21 or 30.
    @inlinable public var shift: Int { rawValue.trailingZeroBitCount }
    /// The table level whose leaf has this size (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB).
    @inlinable public var level: Int { (shift - 12) / 9 }

    @inlinable public init?(level: Int) {
        switch level {
        case 0: self = .size4K
        case 1: self = .size2M
        case 2: self = .size1G
        default: return nil
        }
    }

    public static func < (lhs: PageSize, rhs: PageSize) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .size4K: "4K"
        case .size2M: "2M"
        case .size1G: "1G"
        }
    }
}
