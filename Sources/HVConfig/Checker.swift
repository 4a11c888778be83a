import HVCore

/// Applies every rule to one or more VM configurations (and, with a host
/// description, the host-side rules).
public struct Checker {
    public let host: HostDescription?
    /// Ask Z3 for witnesses (off only for benchmarks that measure the sweep).
    public var witnesses = true

    public init(host: HostDescription? = nil) { self.host = host }

    struct Item {
        let start: UInt64, size: UInt64, name: String, line: Int?
    }

    func finding(_ rule: Rule, _ c: VMConfig, _ message: String, _ entries: [String], line: Int?, witness: UInt64? = nil) -> Finding {
        Finding(rule: rule, message: message, file: c.file, line: line, entries: entries, witness: witness)
    }

    /// Overlapping pairs by sort and sweep: only pairs found here are handed
    /// to Z3. Each item is reported against the earlier item reaching
    /// furthest, so n items cost O(n log n) plus the findings.
    static func overlaps(_ items: [Item]) -> [(Item, Item)] {
        let sorted = items.filter { $0.size > 0 }.sorted { $0.start < $1.start }
        var pairs: [(Item, Item)] = []
        var reach: Item?
        for item in sorted {
            if let r = reach, Kernels.rangesOverlap(r.start, r.size, item.start, item.size) { pairs.append((r, item)) }
            if reach == nil || UInt128(item.start) + UInt128(item.size) > UInt128(reach!.start) + UInt128(reach!.size) { reach = item }
        }
        return pairs
    }

    func overlapFindings(_ rule: Rule, _ c: VMConfig, _ items: [Item], what: String) -> [Finding] {
        Self.overlaps(items).map { a, b in
            let w = witnesses ? Witness.common(a.start, a.size, b.start, b.size) : nil
            return finding(rule, c, "\(what): \(a.name) [\(hex(a.start)), +\(hex(a.size))) and \(b.name) [\(hex(b.start)), +\(hex(b.size)))"
                           + (w.map { " both contain \(hex($0))" } ?? ""), [a.name, b.name], line: b.line ?? a.line, witness: w)
        }
    }

    /// The rules that look at one VM.
    public func check(_ c: VMConfig) -> [Finding] {
        var out: [Finding] = []
        var ram: [Item] = []
        for r in c.memoryRegions {
            let name = "memory_regions[\(r.index)]"
            if r.size == 0 { out.append(finding(.zeroSize, c, "\(name) has size 0", [name], line: r.line)); continue }
            if r.gpa & 0xFFF != 0 || r.size & 0xFFF != 0 {
                out.append(finding(.unaligned, c, "\(name) base \(hex(r.gpa)) or size \(hex(r.size)) is not 4 KiB aligned", [name], line: r.line))
            }
            if r.gpa.addingReportingOverflow(r.size).overflow {
                out.append(finding(.overflow, c, "\(name) base \(hex(r.gpa)) + size \(hex(r.size)) passes 2^64", [name], line: r.line))
                continue
            }
            let unknown = r.flags & ~MappingFlags.all.rawValue
            if unknown != 0 { out.append(finding(.unknownFlags, c, "\(name) flags \(hex(r.flags)) have unknown bits \(hex(unknown))", [name], line: r.line)) }
            let flags = MappingFlags(rawValue: r.flags)
            if flags.isWriteWithoutRead { out.append(finding(.writeWithoutRead, c, "\(name) flags \(flags) grant write without read", [name], line: r.line)) }
            if r.mapType == .alloc && flags.contains(.device) {
                out.append(finding(.deviceInRAM, c, "\(name) is MapAlloc RAM but has DEVICE set", [name], line: r.line))
            }
            ram.append(Item(start: r.gpa, size: r.size, name: name, line: r.line))
        }
        if c.memoryRegions.isEmpty { out.append(finding(.noRAM, c, "no memory_regions: the VM has no RAM", [], line: nil)) }
        out += overlapFindings(.ramOverlap, c, ram, what: "memory regions overlap")

        var seen: [String: Int] = [:]
        var devices: [Item] = []
        for d in c.passthroughDevices {
            let name = "passthrough_devices[\(d.index)] \"\(d.name)\""
            if let first = seen[d.name] {
                out.append(finding(.duplicateDevice, c, "device \"\(d.name)\" is listed at [\(first)] and [\(d.index)]", [name], line: d.line))
            }
            seen[d.name] = d.index
            if d.length == 0 { out.append(finding(.zeroSize, c, "\(name) has length 0", [name], line: d.line)); continue }
            if d.gpa.addingReportingOverflow(d.length).overflow || d.hpa.addingReportingOverflow(d.length).overflow {
                out.append(finding(.overflow, c, "\(name) gpa \(hex(d.gpa)) or hpa \(hex(d.hpa)) + length \(hex(d.length)) passes 2^64", [name], line: d.line))
            }
        }
        let merged = VMPlanner.passthrough(c.passthroughDevices)
        for m in merged {
            let line = c.passthroughDevices.first { m.sources.contains($0.name) }?.line
            devices.append(Item(start: m.gpa, size: m.size, name: "device " + m.sources.joined(separator: "+"), line: line))
        }
        out += overlapFindings(.deviceOverlap, c, devices, what: "pass-through devices overlap after merging")
        // RAM against devices: pairs across the two sets only.
        for (a, b) in Self.overlaps(ram + devices) where ram.contains(where: { $0.name == a.name }) != ram.contains(where: { $0.name == b.name }) {
            let w = witnesses ? Witness.common(a.start, a.size, b.start, b.size) : nil
            out.append(finding(.ramDeviceOverlap, c, "\(a.name) and \(b.name) overlap" + (w.map { " at \(hex($0))" } ?? ""),
                               [a.name, b.name], line: b.line ?? a.line, witness: w))
        }

        // Images and the entry point.
        func region(containing address: UInt64) -> VMConfig.MemoryRegion? {
            c.memoryRegions.first { $0.size > 0 && Kernels.rangeContainsAddress(start: $0.gpa, size: $0.size, address: address) }
        }
        for image in c.images {
            let name = "kernel.\(image.kind)_load_addr"
            guard let r = region(containing: image.loadAddress) else {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) load address \(hex(image.loadAddress)) is in no memory region", [name], line: nil))
                continue
            }
            if let size = image.size, size > 0,
               !Kernels.rangeContains(outerStart: r.gpa, outerSize: r.size, innerStart: image.loadAddress, innerSize: size) {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) (\(image.path), \(hex(size)) bytes) at \(hex(image.loadAddress)) runs past the end of memory_regions[\(r.index)]",
                                   [name, "memory_regions[\(r.index)]"], line: r.line))
            }
            let flags = MappingFlags(rawValue: r.flags)
            if !flags.contains(.read) || flags.contains(.device) {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) is loaded into memory_regions[\(r.index)], which is \(flags)", [name, "memory_regions[\(r.index)]"], line: r.line))
            }
        }
        if let r = region(containing: c.entryPoint) {
            if !MappingFlags(rawValue: r.flags).contains(.execute) {
                out.append(finding(.entryNotExecutable, c, "entry point \(hex(c.entryPoint)) is in memory_regions[\(r.index)], which is not executable",
                                   ["kernel.entry_point", "memory_regions[\(r.index)]"], line: r.line))
            }
        } else {
            out.append(finding(.entryNotExecutable, c, "entry point \(hex(c.entryPoint)) is in no memory region", ["kernel.entry_point"], line: nil))
        }

        // Host side.
        if let host {
            for (start, size, name, line) in hostRanges(c) {
                let inRAM = host.ram.contains { Kernels.rangeContains(outerStart: $0.start, outerSize: $0.size, innerStart: start, innerSize: size) }
                if !inRAM { out.append(finding(.hostRangeNotRAM, c, "\(name) host range [\(hex(start)), +\(hex(size))) is not inside host RAM", [name], line: line)) }
                for h in host.hypervisor where Kernels.rangesOverlap(h.start, h.size, start, size) {
                    let w = witnesses ? Witness.common(h.start, h.size, start, size) : nil
                    out.append(finding(.hostRangeHypervisor, c, "\(name) overlaps the hypervisor's [\(hex(h.start)), +\(hex(h.size)))" + (w.map { " at \(hex($0))" } ?? ""),
                                       [name], line: line, witness: w))
                }
            }
        }
        return out
    }

    /// Host ranges a VM claims: identity and reserved regions (host ==
    /// guest) and pass-through devices (their host side).
    func hostRanges(_ c: VMConfig, includeDevices: Bool = false) -> [(UInt64, UInt64, String, Int?)] {
        var out: [(UInt64, UInt64, String, Int?)] = c.memoryRegions.filter { $0.mapType != .alloc && $0.size > 0 && !$0.gpa.addingReportingOverflow($0.size).overflow }
            .map { ($0.gpa, $0.size, "memory_regions[\($0.index)]", $0.line) }
        if includeDevices {
            out += c.passthroughDevices.filter { $0.length > 0 && !$0.hpa.addingReportingOverflow($0.length).overflow }
                .map { ($0.hpa, $0.length, "passthrough_devices[\($0.index)] \"\($0.name)\"", $0.line) }
        }
        return out
    }

    /// Every rule over a set of VMs, the cross-VM ownership rule included.
    public func check(_ configs: [VMConfig]) -> [Finding] {
        var out = configs.flatMap(check)
        for (i, a) in configs.enumerated() {
            for b in configs[(i + 1)...] {
                for ra in hostRanges(a, includeDevices: true) {
                    for rb in hostRanges(b, includeDevices: true) where Kernels.rangesOverlap(ra.0, ra.1, rb.0, rb.1) {
                        let deviceName = { (s: String) -> String? in s.split(separator: "\"").dropFirst().first.map(String.init) }
                        if let n = deviceName(ra.2), let m = deviceName(rb.2), a.sharedDevices.contains(n) && b.sharedDevices.contains(m) { continue }
                        let w = witnesses ? Witness.common(ra.0, ra.1, rb.0, rb.1) : nil
                        out.append(Finding(rule: .sharedHostRange,
                                           message: "\(a.file) \(ra.2) and \(b.file) \(rb.2) own the same host memory" + (w.map { ", e.g. \(hex($0))" } ?? ""),
                                           file: b.file, line: rb.3, entries: [ra.2, rb.2], witness: w))
                    }
                }
            }
        }
        return out
    }
}
