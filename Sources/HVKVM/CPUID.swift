import CKVM
import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// A CPUID feature bit HVKit can hide from a guest.
public struct CPUIDFeature: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Register: String, Sendable { case eax, ebx, ecx, edx }
    public let name: String
    public let leaf: UInt32
    public let subleaf: UInt32
    public let register: Register
    public let bit: Int

    public var description: String { "\(name) (leaf \(hex(UInt64(leaf))).\(subleaf) \(register.rawValue) bit \(bit))" }

    public static let xsave = CPUIDFeature(name: "xsave", leaf: 1, subleaf: 0, register: .ecx, bit: 26)
    public static let osxsave = CPUIDFeature(name: "osxsave", leaf: 1, subleaf: 0, register: .ecx, bit: 27)
    public static let avx = CPUIDFeature(name: "avx", leaf: 1, subleaf: 0, register: .ecx, bit: 28)
    public static let cx16 = CPUIDFeature(name: "cx16", leaf: 1, subleaf: 0, register: .ecx, bit: 13)
    public static let x2apic = CPUIDFeature(name: "x2apic", leaf: 1, subleaf: 0, register: .ecx, bit: 21)
    public static let tscDeadline = CPUIDFeature(name: "tsc-deadline", leaf: 1, subleaf: 0, register: .ecx, bit: 24)
    public static let rdrand = CPUIDFeature(name: "rdrand", leaf: 1, subleaf: 0, register: .ecx, bit: 30)
    public static let pcid = CPUIDFeature(name: "pcid", leaf: 1, subleaf: 0, register: .ecx, bit: 17)
    public static let avx2 = CPUIDFeature(name: "avx2", leaf: 7, subleaf: 0, register: .ebx, bit: 5)
    public static let avx512f = CPUIDFeature(name: "avx512f", leaf: 7, subleaf: 0, register: .ebx, bit: 16)
    public static let rdseed = CPUIDFeature(name: "rdseed", leaf: 7, subleaf: 0, register: .ebx, bit: 18)
    public static let smap = CPUIDFeature(name: "smap", leaf: 7, subleaf: 0, register: .ebx, bit: 20)
    public static let smep = CPUIDFeature(name: "smep", leaf: 7, subleaf: 0, register: .ebx, bit: 7)
    public static let pku = CPUIDFeature(name: "pku", leaf: 7, subleaf: 0, register: .ecx, bit: 3)
    public static let rdtscp = CPUIDFeature(name: "rdtscp", leaf: 0x8000_0001, subleaf: 0, register: .edx, bit: 27)
    public static let gbPages = CPUIDFeature(name: "pdpe1gb", leaf: 0x8000_0001, subleaf: 0, register: .edx, bit: 26)

    public static let known: [CPUIDFeature] = [
        xsave, osxsave, avx, cx16, x2apic, tscDeadline, rdrand, pcid, avx2, avx512f, rdseed, smap, smep, pku, rdtscp, gbPages,
    ]

    /// Parses "xsave,cx16"; an unknown name is an error listing the known ones.
    public static func parseList(_ text: String) throws(KVMError) -> [CPUIDFeature] {
        var out: [CPUIDFeature] = []
        for raw in text.split(separator: ",") {
            let name = raw.filter { $0 != " " }.lowercased()
            guard let f = known.first(where: { $0.name == name }) else {
                throw .invalidConfiguration("unknown CPUID feature '\(name)'; known: \(known.map(\.name).joined(separator: ", "))")
            }
            out.append(f)
        }
        return out
    }
}

/// A guest's CPUID table: what KVM supports, minus what the caller hides.
public struct CPUIDTable: Sendable {
    public var entries: [kvm_cpuid_entry2]

    public init(entries: [kvm_cpuid_entry2]) { self.entries = entries }

    /// Clears `feature` wherever its leaf and subleaf appear. XSAVE takes
    /// its dependants (OSXSAVE, AVX and the XSAVE state leaf 0xD) with it,
    /// since a guest must never see AVX without XSAVE.
    public mutating func hide(_ feature: CPUIDFeature) {
        var features = [feature]
        if feature == .xsave { features += [.osxsave, .avx, .avx2, .avx512f] }
        if feature == .avx { features += [.avx2, .avx512f] }
        for f in features {
            let mask = ~(UInt32(1) << UInt32(f.bit))
            for i in entries.indices where entries[i].function == f.leaf && entries[i].index == f.subleaf {
                switch f.register {
                case .eax: entries[i].eax &= mask
                case .ebx: entries[i].ebx &= mask
                case .ecx: entries[i].ecx &= mask
                case .edx: entries[i].edx &= mask
                }
            }
        }
        if feature == .xsave {
            for i in entries.indices where entries[i].function == 0xD {
                entries[i].eax = 0; entries[i].ebx = 0; entries[i].ecx = 0; entries[i].edx = 0
            }
        }
    }

    public func has(_ feature: CPUIDFeature) -> Bool {
        guard let e = entries.first(where: { $0.function == feature.leaf && $0.index == feature.subleaf }) else { return false }
        let value: UInt32 = switch feature.register {
        case .eax: e.eax
        case .ebx: e.ebx
        case .ecx: e.ecx
        case .edx: e.edx
        }
        return value >> UInt32(feature.bit) & 1 != 0
    }
}

extension KVMSystem {
    /// KVM_GET_SUPPORTED_CPUID: every leaf KVM can present to a guest.
    public func supportedCPUID() throws(KVMError) -> CPUIDTable {
        var room: UInt32 = 128
        while true {
            var entries = [kvm_cpuid_entry2](repeating: kvm_cpuid_entry2(), count: Int(room))
            var count = room
            let r = entries.withUnsafeMutableBufferPointer { ckvm_get_supported_cpuid(fd, $0.baseAddress, &count) }
            if r >= 0 { return CPUIDTable(entries: Array(entries.prefix(Int(count)))) }
            guard ckvm_errno() == E2BIG, room < 4096 else { throw Sys.error("KVM_GET_SUPPORTED_CPUID") }
            room *= 2
        }
    }
}

extension VCPU {
    /// KVM_SET_CPUID2: what the guest's CPUID instruction returns.
    public func setCPUID(_ table: CPUIDTable) throws(KVMError) {
        let r = table.entries.withUnsafeBufferPointer { ckvm_set_cpuid2(fd, $0.baseAddress, UInt32($0.count)) }
        if r < 0 { throw Sys.error("KVM_SET_CPUID2") }
    }
}
