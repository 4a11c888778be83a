/// Why an address-space operation was refused. Every refusal leaves the
/// address space exactly as it was, with no frame gained or lost.
public enum AddrSpaceError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyRange(GuestPhysAddr)
    case unaligned(what: String, address: UInt64)
    case rangeOverflow(start: UInt64, size: UInt64)
    case outsideManagedRange(start: GuestPhysAddr, size: UInt64, managed: GuestPhysRange)
    case overlapsArea(requested: GuestPhysRange, existing: GuestPhysRange)
    case identityUnavailable(GuestPhysRange, FrameError)
    case outOfFrames(FrameError)
    case pageTable(PageTableError)
    case unmapped(GuestPhysAddr)
    case notPresent(GuestPhysAddr)
    case accessDenied(GuestPhysAddr, needed: MappingFlags, granted: MappingFlags)
    case notHostMemory(GuestPhysAddr, HostPhysAddr)
    case reservedOverlapsAllocator(GuestPhysRange)

    public var description: String {
        switch self {
        case let .emptyRange(start): "empty range at \(start)"
        case let .unaligned(what, address): "\(what) \(hex(address)) is not 4 KiB aligned"
        case let .rangeOverflow(start, size): "range \(hex(start)) + \(hex(size)) overflows 64 bits"
        case let .outsideManagedRange(start, size, managed):
            "range \(start) + \(hex(size)) is not inside the managed range \(managed)"
        case let .overlapsArea(requested, existing): "\(requested) overlaps the mapped area \(existing)"
        case let .identityUnavailable(range, error): "host memory at \(range) cannot be had for an identity map: \(error)"
        case let .outOfFrames(error): "out of frames: \(error)"
        case let .pageTable(error): "page table refused: \(error)"
        case let .unmapped(gpa): "guest-physical \(gpa) is not mapped"
        case let .notPresent(gpa): "guest-physical \(gpa) is in a lazy area and not yet present"
        case let .accessDenied(gpa, needed, granted): "guest-physical \(gpa) needs \(needed), mapping grants \(granted)"
        case let .reservedOverlapsAllocator(range):
            "reserved range \(range) overlaps the frame allocator's memory, which the caller cannot own"
        case let .notHostMemory(gpa, hpa): "guest-physical \(gpa) maps host \(hpa), which is not memory this process can touch"
        }
    }
}

/// The result of a nested page fault.
public enum PageFaultOutcome: Equatable, Sendable {
    /// A lazy page was filled; the access can be retried.
    case handled(Translation)
    case violation(PageFaultViolation)
}

public enum PageFaultViolation: Equatable, Sendable, CustomStringConvertible {
    case outsideRange(GuestPhysAddr)
    case noArea(GuestPhysAddr)
    case accessNotAllowed(GuestPhysAddr, needed: MappingFlags, area: Area)
    case linearBackend(GuestPhysAddr, area: Area)
    case alreadyPresent(GuestPhysAddr, Translation)
    case outOfFrames(GuestPhysAddr, FrameError)

    public var description: String {
        switch self {
        case let .outsideRange(gpa): "\(gpa) is outside the managed range"
        case let .noArea(gpa): "\(gpa) is in no area"
        case let .accessNotAllowed(gpa, needed, area): "\(gpa): \(needed) not allowed by area \(area)"
        case let .linearBackend(gpa, area): "\(gpa): fault in \(area), whose pages are always mapped"
        case let .alreadyPresent(gpa, t): "\(gpa) is already present (\(t))"
        case let .outOfFrames(gpa, error): "\(gpa): no frame for a lazy page: \(error)"
        }
    }
}
