/// Why a page-table operation was refused. Every refusal leaves the table
/// exactly as it was.
public enum PageTableError: Error, Equatable, Sendable, CustomStringConvertible {
    case writeWithoutRead(MappingFlags)
    case noAccess(MappingFlags)
    case unknownFlags(MappingFlags)
    case emptyRange(GuestPhysAddr)
    case unaligned(what: String, address: UInt64, alignment: UInt64)
    case guestAddressOutOfRange(start: GuestPhysAddr, size: UInt64, addressBits: Int)
    case hostAddressOutOfRange(start: HostPhysAddr, size: UInt64, addressBits: Int)
    case alreadyMapped(GuestPhysAddr)
    case outOfFrames(FrameError)

    public var description: String {
        switch self {
        case let .writeWithoutRead(flags):
            "flags \(flags) grant write without read, which nested paging treats as a misconfiguration"
        case let .noAccess(flags):
            "flags \(flags) grant no access; unmap the range instead"
        case let .unknownFlags(flags):
            "flags \(hex(flags.rawValue)) have bits with no meaning"
        case let .emptyRange(start):
            "empty range at \(start)"
        case let .unaligned(what, address, alignment):
            "\(what) \(hex(address)) is not aligned to \(hex(alignment))"
        case let .guestAddressOutOfRange(start, size, bits):
            "guest range \(start) + \(hex(size)) does not fit in \(bits) address bits"
        case let .hostAddressOutOfRange(start, size, bits):
            "host range \(start) + \(hex(size)) does not fit in \(bits) address bits"
        case let .alreadyMapped(gpa):
            "guest-physical \(gpa) is already mapped"
        case let .outOfFrames(error):
            "no frame for a page table: \(error)"
        }
    }
}
