/// Common behaviour of HVKit's address types. Each address space gets its own
/// type so that a guest-physical address can never be passed where a
/// host-physical one is expected; arithmetic is checked and never wraps.
public protocol Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    var raw: UInt64 { get }
    init(_ raw: UInt64)
}

extension Address {
    @inlinable public static func < (lhs: Self, rhs: Self) -> Bool { lhs.raw < rhs.raw }

    public var description: String { hex(raw) }

    /// `self + offset`, or `.overflow` when the sum does not fit in 64 bits.
    @inlinable
    public func checkedAdd(_ offset: UInt64) throws(AddressError) -> Self {
        let (sum, overflow) = raw.addingReportingOverflow(offset)
        if overflow { throw .overflow(base: raw, offset: offset) }
        return Self(sum)
    }

    /// `self - offset`, or `.underflow` when it would go below zero.
    @inlinable
    public func checkedSub(_ offset: UInt64) throws(AddressError) -> Self {
        let (difference, overflow) = raw.subtractingReportingOverflow(offset)
        if overflow { throw .underflow(base: raw, offset: offset) }
        return Self(difference)
    }

    /// The distance from `other` up to `self`, or nil when `other` is above `self`.
    @inlinable
    public func distance(from other: Self) -> UInt64? {
        raw >= other.raw ? raw - other.raw : nil
    }

    @inlinable public func alignedDown(to size: PageSize) -> Self {
        Self(Kernels.alignDown(raw, mask: size.mask))
    }

    /// Rounds up to `size`, or `.overflow` when the result does not fit.
    @inlinable
    public func alignedUp(to size: PageSize) throws(AddressError) -> Self {
        let (value, fits) = Kernels.alignUp(raw, mask: size.mask)
        if !fits { throw .overflow(base: raw, offset: size.mask) }
        return Self(value)
    }

    @inlinable public func isAligned(to size: PageSize) -> Bool {
        Kernels.isAligned(raw, mask: size.mask)
    }

    @inlinable public func pageOffset(in size: PageSize) -> UInt64 { raw & size.mask }
}

/// An address in a guest's physical address space (what a nested page table translates).
public struct GuestPhysAddr: Address {
    public let raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
}

/// An address in a guest's virtual address space (what the guest's own page tables translate).
public struct GuestVirtAddr: Address {
    public let raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
}

/// A host-physical address: where a nested page table leaf points.
public struct HostPhysAddr: Address {
    public let raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
}

/// A host-virtual address: where the hypervisor process can touch the bytes.
public struct HostVirtAddr: Address {
    public let raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
}
