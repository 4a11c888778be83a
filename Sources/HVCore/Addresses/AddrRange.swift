/// A half-open range `[start, start + size)` of addresses of one kind.
///
/// Construction fails when `start + size` does not fit in 64 bits, so `end`
/// is always representable and no range silently wraps around zero.
public struct AddrRange<A: Address>: Hashable, Sendable, CustomStringConvertible {
    public let start: A
    public let size: UInt64

    @inlinable
    public init(start: A, size: UInt64) throws(AddressError) {
        if start.raw.addingReportingOverflow(size).overflow {
            throw .rangeOverflow(base: start.raw, size: size)
        }
        self.start = start
        self.size = size
    }

    /// `[start, end)`; fails when `end < start`.
    @inlinable
    public init(start: A, end: A) throws(AddressError) {
        guard end.raw >= start.raw else { throw .underflow(base: end.raw, offset: end.raw &- start.raw) }
        self.start = start
        self.size = end.raw - start.raw
    }

    /// The first address past the range.
    @inlinable public var end: A { A(start.raw &+ size) }
    @inlinable public var isEmpty: Bool { size == 0 }

    @inlinable public func contains(_ address: A) -> Bool {
        Kernels.rangeContainsAddress(start: start.raw, size: size, address: address.raw)
    }

    @inlinable public func contains(_ other: AddrRange<A>) -> Bool {
        Kernels.rangeContains(outerStart: start.raw, outerSize: size,
                              innerStart: other.start.raw, innerSize: other.size)
    }

    @inlinable public func overlaps(_ other: AddrRange<A>) -> Bool {
        Kernels.rangesOverlap(start.raw, size, other.start.raw, other.size)
    }

    /// The common part of two ranges, or nil when they do not overlap.
    @inlinable public func intersection(_ other: AddrRange<A>) -> AddrRange<A>? {
        guard overlaps(other) else { return nil }
        let lo = Swift.max(start.raw, other.start.raw)
        let hi = Swift.min(end.raw, other.end.raw)
        return try? AddrRange(start: A(lo), size: hi - lo)
    }

    @inlinable public func isAligned(to size: PageSize) -> Bool {
        start.isAligned(to: size) && Kernels.isAligned(self.size, mask: size.mask)
    }

    public var description: String { "[\(hex(start.raw)), \(hex(end.raw)))" }
}

public typealias GuestPhysRange = AddrRange<GuestPhysAddr>
public typealias HostPhysRange = AddrRange<HostPhysAddr>
