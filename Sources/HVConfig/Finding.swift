import HVCore

/// One rule violation, with where it was written and, for overlaps and
/// sharing, a concrete address that lies in both ranges.
public struct Finding: Equatable, Sendable {
    /// A note is information (never fails a check, not even with --strict).
    public enum Severity: String, Sendable { case error, warning, note }

    public let rule: Rule
    public let message: String
    public let file: String
    public let line: Int?
    /// The configuration entries involved, e.g. "memory_regions[2]".
    public let entries: [String]
    public let witness: UInt64?

    public var severity: Severity { rule.severity }
}

/// Every rule `hvkit check` applies: a stable id, a severity, a summary.
public enum Rule: String, CaseIterable, Sendable {
    case unaligned = "HVC001"
    case zeroSize = "HVC002"
    case overflow = "HVC003"
    case unknownFlags = "HVC004"
    case writeWithoutRead = "HVC005"
    case deviceInRAM = "HVC006"
    case ramOverlap = "HVC007"
    case ramDeviceOverlap = "HVC008"
    case deviceOverlap = "HVC009"
    case imageOutsideRAM = "HVC010"
    case entryNotExecutable = "HVC011"
    case hostRangeNotRAM = "HVC012"
    case hostRangeHypervisor = "HVC013"
    case sharedHostRange = "HVC014"
    case duplicateDevice = "HVC015"
    case noRAM = "HVC016"
    case emulatedOverlap = "HVC017"
    case emulatedOverPassthrough = "HVC018"
    case emulatedOverDeviceTree = "HVC019"
    case imagesOverlap = "HVC020"
    case cpuCount = "HVC021"
    case mixedPassthrough = "HVC022"
    case translatedAddress = "HVC023"
    case resolvedAtBoot = "HVC024"
    case beyondAddressWidth = "HVC025"
    case unknownDeviceTreePath = "HVC026"

    public var severity: Finding.Severity {
        switch self {
        case .duplicateDevice, .noRAM, .emulatedOverDeviceTree, .mixedPassthrough, .translatedAddress, .unknownDeviceTreePath: .warning
        case .resolvedAtBoot: .note
        default: .error
        }
    }

    public var summary: String {
        switch self {
        case .unaligned: "a region's base or size is not 4 KiB aligned"
        case .zeroSize: "a region or device has size zero"
        case .overflow: "base + size does not fit in 64 bits"
        case .unknownFlags: "flags have bits with no meaning"
        case .writeWithoutRead: "flags grant write without read"
        case .deviceInRAM: "DEVICE is set on a MapAlloc RAM region"
        case .ramOverlap: "two memory regions overlap"
        case .ramDeviceOverlap: "a memory region overlaps a pass-through device"
        case .deviceOverlap: "pass-through devices overlap after merging"
        case .imageOutsideRAM: "an image is loaded outside RAM or into memory it cannot use"
        case .entryNotExecutable: "the entry point is not in executable memory"
        case .hostRangeNotRAM: "an identity or reserved range is not host RAM"
        case .hostRangeHypervisor: "an identity or reserved range overlaps the hypervisor's own memory"
        case .sharedHostRange: "two VMs own the same host range"
        case .duplicateDevice: "a pass-through device is listed twice"
        case .noRAM: "the VM has no RAM region"
        case .emulatedOverlap: "an emulated device overlaps RAM or another emulated device"
        case .emulatedOverPassthrough: "an emulated device overlaps an explicit pass-through device or passthrough_addresses window"
        case .emulatedOverDeviceTree: "an emulated device overlaps a range resolved from the device tree"
        case .imagesOverlap: "a BIOS, DTB or ramdisk image overlaps the kernel image"
        case .cpuCount: "cpu_num differs from the number of phys_cpu_ids or phys_cpu_sets"
        case .mixedPassthrough: "pass-through mixes device-tree paths and explicit ranges; axvisor uses only the kind of the first entry"
        case .translatedAddress: "a device-tree reg address changes when translated through its buses' ranges (axvisor uses the untranslated one)"
        case .resolvedAtBoot: "a device-tree pass-through entry is resolved at boot (no device tree given)"
        case .beyondAddressWidth: "a range lies beyond the architecture's guest-physical address width"
        case .unknownDeviceTreePath: "a pass-through or excluded path names no node of the device tree"
        }
    }
}
