/// Errors of address arithmetic and range construction.
public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `base + offset` does not fit in 64 bits.
    case overflow(base: UInt64, offset: UInt64)
    /// `base - offset` would go below zero.
    case underflow(base: UInt64, offset: UInt64)
    /// A range whose `base + size` does not fit in 64 bits.
    case rangeOverflow(base: UInt64, size: UInt64)
    /// An address that must be aligned is not.
    case unaligned(address: UInt64, alignment: UInt64)

    public var description: String {
        switch self {
        case let .overflow(base, offset):
            "address overflow: \(hex(base)) + \(hex(offset)) does not fit in 64 bits"
        case let .underflow(base, offset):
            "address underflow: \(hex(base)) - \(hex(offset)) is below zero"
        case let .rangeOverflow(base, size):
            "range overflow: base \(hex(base)) + size \(hex(size)) does not fit in 64 bits"
        case let .unaligned(address, alignment):
            "address \(hex(address)) is not aligned to \(hex(alignment))"
        }
    }
}

/// `0x`-prefixed lower-case hexadecimal, the form every message in HVKit uses.
@inlinable
public func hex(_ value: UInt64) -> String {
    "0x" + String(value, radix: 16)
}
