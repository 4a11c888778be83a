/// A TLB / paging-structure-cache invalidation that a change requires before
/// the guest runs again (INVEPT for EPT). Recorded whenever access is removed
/// or narrowed, so a test can see it was asked for.
public struct Invalidation: Equatable, Sendable, CustomStringConvertible {
    /// `everything`: more changes piled up than are worth listing (see
    /// `NestedPageTable.maxPendingInvalidations`): invalidate the whole space.
    public enum Reason: String, Sendable { case unmap, protect, everything }
    public let range: GuestPhysRange
    public let reason: Reason

    public init(range: GuestPhysRange, reason: Reason) {
        self.range = range
        self.reason = reason
    }

    public var description: String { "\(reason.rawValue) \(range)" }

    /// True when carrying out this one also carries out `other`.
    public func covers(_ other: Invalidation) -> Bool {
        range.contains(other.range) && (reason == other.reason || reason == .everything || (reason == .unmap && other.reason == .protect))
    }
}

/// What `query` returns for a mapped guest address.
public struct Translation: Equatable, Sendable, CustomStringConvertible {
    /// The host address the queried guest address maps to (offset included).
    public let hostAddress: HostPhysAddr
    public let flags: MappingFlags
    public let pageSize: PageSize
    /// The first guest address of the leaf.
    public let leafStart: GuestPhysAddr

    public init(hostAddress: HostPhysAddr, flags: MappingFlags, pageSize: PageSize, leafStart: GuestPhysAddr) {
        self.hostAddress = hostAddress
        self.flags = flags
        self.pageSize = pageSize
        self.leafStart = leafStart
    }

    public var description: String { "\(hostAddress) \(flags) \(pageSize)" }
}

/// One leaf, as the visitor reports it.
public struct Leaf: Equatable, Sendable {
    public let gpa: GuestPhysAddr
    public let hpa: HostPhysAddr
    public let pageSize: PageSize
    public let flags: MappingFlags

    public init(gpa: GuestPhysAddr, hpa: HostPhysAddr, pageSize: PageSize, flags: MappingFlags) {
        self.gpa = gpa
        self.hpa = hpa
        self.pageSize = pageSize
        self.flags = flags
    }
}
