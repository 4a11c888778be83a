import CKVM
#if canImport(Glibc)
import Glibc
#endif

/// The KVM subsystem: an open /dev/kvm with API version 12.
public final class KVMSystem: @unchecked Sendable {
    let fd: Int32
    public let vcpuMmapSize: Int

    public init(path: String = "/dev/kvm") throws(KVMError) {
        fd = try Sys.open(path, O_RDWR)
        do throws(KVMError) {
            let version = try Sys.ioctl(fd, CKVM_GET_API_VERSION, "KVM_GET_API_VERSION", value: 0)
            guard version == 12 else { throw KVMError.unsupportedAPIVersion(version) }
            guard try Sys.ioctl(fd, CKVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION", value: UInt(CKVM_CAP_USER_MEMORY)) > 0 else {
                throw KVMError.missingCapability("KVM_CAP_USER_MEMORY")
            }
            vcpuMmapSize = Int(try Sys.ioctl(fd, CKVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE", value: 0))
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    deinit { Sys.close(fd) }

    /// The value KVM_CHECK_EXTENSION reports for a capability (0 = absent).
    public func capability(_ cap: Int32) -> Int32 {
        do throws(KVMError) { return try Sys.ioctl(fd, CKVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION", value: UInt(cap)) } catch {
            Sys.report("capability \(cap) taken as absent: \(error)")
            return 0
        }
    }

    /// A feature MSR through KVM_GET_MSRS on /dev/kvm, or nil when KVM does
    /// not expose it (for example IA32_VMX_BASIC without nested VMX).
    public func featureMSR(_ index: UInt32) -> UInt64? {
        var value: UInt64 = 0
        return ckvm_get_feature_msr(fd, index, &value) == 1 ? value : nil
    }

    /// The VMCS revision identifier (IA32_VMX_BASIC bits 30:0) when KVM exposes it.
    public var vmcsRevision: UInt32? {
        featureMSR(0x480).map { UInt32(truncatingIfNeeded: $0) & 0x7FFF_FFFF }.flatMap { $0 == 0 ? nil : $0 }
    }

    public var supportsReadOnlyMemory: Bool { capability(CKVM_CAP_READONLY_MEM) > 0 }
    public var memslotLimit: Int { Int(capability(CKVM_CAP_NR_MEMSLOTS)) }

    /// Why KVM cannot be used here, or nil when it can: what a test prints
    /// in its SKIPPED line.
    public static func unavailableReason(path: String = "/dev/kvm") -> String? {
        do {
            _ = try KVMSystem(path: path)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
