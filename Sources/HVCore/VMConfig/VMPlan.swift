/// The mappings a VM gets from its configuration, in guest-address order.
public struct PlannedMapping: Equatable, Sendable, CustomStringConvertible {
    public enum Backing: Equatable, Sendable {
        case alloc
        case identical
        case reserved
        /// Pass-through device memory: guest range -> this host address.
        case passthrough(hpa: UInt64)
    }

    public let gpa: UInt64
    public let size: UInt64
    public let flags: MappingFlags
    public let backing: Backing
    /// Which configuration entries it came from (merged devices name several).
    public let sources: [String]

    public var end: UInt64 { gpa + size }
    public var hostStart: UInt64? {
        switch backing {
        case .alloc: nil
        case .identical, .reserved: gpa
        case let .passthrough(hpa): hpa
        }
    }

    public var description: String {
        let host = hostStart.map { " -> \(hex($0))" } ?? ""
        return "[\(hex(gpa)), \(hex(end)))\(host) \(flags) \(backing) (\(sources.joined(separator: ", ")))"
    }
}

public enum VMPlanner {
    public static let deviceFlags: MappingFlags = [.device, .read, .write, .user]

    /// Pass-through ranges aligned outward to 4 KiB (start down, end up, so
    /// every requested byte is covered), host side shifted by the same
    /// amount (base_hpa honoured), sorted by guest address, and merged only
    /// where they overlap or touch in the guest and are contiguous on the
    /// host too. Ranges whose end would pass 2^64 are left out (a rule
    /// reports them).
    public static func passthrough(_ devices: [VMConfig.PassthroughDevice]) -> [PlannedMapping] {
        var aligned: [PlannedMapping] = []
        for d in devices where d.length > 0 {
            guard !d.gpa.addingReportingOverflow(d.length).overflow, !d.hpa.addingReportingOverflow(d.length).overflow else { continue }
            let start = d.gpa & ~0xFFF
            let (endUp, fits) = Kernels.alignUp(d.gpa + d.length, mask: UInt64(0xFFF))
            guard fits, d.hpa >= d.gpa - start else { continue }
            aligned.append(PlannedMapping(gpa: start, size: endUp - start, flags: deviceFlags,
                                          backing: .passthrough(hpa: d.hpa - (d.gpa - start)), sources: [d.name]))
        }
        aligned.sort { ($0.gpa, $0.hostStart ?? 0) < ($1.gpa, $1.hostStart ?? 0) }
        var merged: [PlannedMapping] = []
        for m in aligned {
            if let last = merged.last, m.gpa <= last.end, case let .passthrough(lh) = last.backing, case let .passthrough(mh) = m.backing,
               mh &- m.gpa == lh &- last.gpa {
                let end = max(last.end, m.end)
                merged[merged.count - 1] = PlannedMapping(gpa: last.gpa, size: end - last.gpa, flags: deviceFlags,
                                                          backing: last.backing, sources: last.sources + m.sources)
            } else {
                merged.append(m)
            }
        }
        return merged
    }

    /// The pass-through ranges a VM really gets: its explicit devices, or
    /// (when the first entry is a device-tree path) the ranges `resolved`
    /// from the device tree, plus its `passthrough_addresses` windows
    /// (guest == host).
    public static func passthroughSources(_ config: VMConfig, resolved: [VMConfig.PassthroughDevice] = []) -> [VMConfig.PassthroughDevice] {
        let fromTree = config.passthroughDevices.first?.fromDeviceTree ?? false
        var out = fromTree ? resolved : config.passthroughDevices.filter { !$0.fromDeviceTree }
        out += config.passthroughAddresses.map {
            VMConfig.PassthroughDevice(name: "passthrough_addresses[\($0.index)]", gpa: $0.gpa, hpa: $0.gpa, length: $0.length, index: $0.index, line: $0.line)
        }
        return out
    }

    /// Every mapping the VM gets: memory regions by their map type, then
    /// the merged pass-through ranges; sorted by guest address.
    public static func plan(_ config: VMConfig, resolved: [VMConfig.PassthroughDevice] = []) -> [PlannedMapping] {
        var out: [PlannedMapping] = config.memoryRegions.map { r in
            let backing: PlannedMapping.Backing = switch r.mapType {
            case .alloc: .alloc
            case .identical: .identical
            case .reserved: .reserved
            }
            return PlannedMapping(gpa: r.gpa, size: r.size, flags: MappingFlags(rawValue: r.flags), backing: backing,
                                  sources: ["memory_regions[\(r.index)]"])
        }
        out += passthrough(passthroughSources(config, resolved: resolved))
        return out.sorted { $0.gpa < $1.gpa }
    }

    /// Builds the address space a plan describes, in one call. Alloc regions
    /// are populated eagerly unless `lazy` is set.
    public static func build<F: PageTableFormat>(_ plan: [PlannedMapping], into space: AddrSpace<F>, lazy: Bool = false) throws(AddrSpaceError) {
        for m in plan {
            switch m.backing {
            case .alloc: try space.mapAlloc(GuestPhysAddr(m.gpa), size: m.size, flags: m.flags, populate: lazy ? .lazy : .eager)
            case .identical: try space.mapIdentical(GuestPhysAddr(m.gpa), size: m.size, flags: m.flags)
            case .reserved: try space.mapReserved(GuestPhysAddr(m.gpa), size: m.size, flags: m.flags)
            case let .passthrough(hpa): try space.mapLinear(GuestPhysAddr(m.gpa), to: HostPhysAddr(hpa), size: m.size, flags: m.flags)
            }
        }
    }
}
