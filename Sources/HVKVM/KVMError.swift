import SystemPackage

/// Why talking to KVM failed. Every system-call failure names the call
/// (or ioctl) and carries its errno.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    case call(String, Errno)
    case unsupportedAPIVersion(Int32)
    case missingCapability(String)
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case let .call(name, errno): "\(name) failed: \(errno) (errno \(errno.rawValue))"
        case let .unsupportedAPIVersion(v): "KVM API version \(v); HVKit needs 12"
        case let .missingCapability(name): "KVM lacks \(name)"
        case let .invalidConfiguration(why): why
        }
    }
}
