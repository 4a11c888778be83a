/// Why a VMX structure was refused.
public enum VMXError: Error, Equatable, Sendable, CustomStringConvertible {
    case zeroRevision
    case revisionTooWide(UInt32)
    case invalidMemoryType(UInt64)
    case invalidWalkLength(UInt64)
    case reservedBitsSet(UInt64)
    case addressBeyondWidth(address: UInt64, bits: Int)
    case outOfFrames(FrameError)

    public var description: String {
        switch self {
        case .zeroRevision: "VMCS revision identifier 0 is not a real revision (read it from IA32_VMX_BASIC)"
        case let .revisionTooWide(r): "revision identifier \(hex(UInt64(r))) does not fit in bits 30:0"
        case let .invalidMemoryType(t): "EPT memory type \(t) is not UC (0) or WB (6)"
        case let .invalidWalkLength(l): "EPT walk length \(l) is not supported"
        case let .reservedBitsSet(bits): "reserved EPTP bits \(hex(bits)) are set"
        case let .addressBeyondWidth(a, bits): "address \(hex(a)) is beyond the \(bits)-bit physical-address width"
        case let .outOfFrames(e): "no frame: \(e)"
        }
    }
}
