import HVCore

/// Applies every rule to one or more VM configurations (and, with a host
/// description, the host-side rules).
public struct Checker {
    public let host: HostDescription?
    /// Each configuration's device tree, by the configuration's file.
    public var deviceTrees: [String: DeviceTree] = [:]
    /// The architecture to check for; nil: what each configuration shows.
    public var architecture: Architecture?

    public init(host: HostDescription? = nil) { self.host = host }

    /// Everything one run found.
    public struct Result: Sendable {
        public var findings: [Finding] = []
        /// Overlapping pairs the sweeps found (within VMs and across them).
        public var overlappingPairs = 0
        /// The architecture each file was checked for, why, and the nested
        /// page-table format its VM gets.
        public var architectures: [(file: String, arch: Architecture, reason: String, format: NestedFormat)] = []
    }

    func finding(_ rule: Rule, _ c: VMConfig, _ message: String, _ entries: [String], line: Int?, witness: UInt64? = nil) -> Finding {
        Finding(rule: rule, message: message, file: c.file, line: line, entries: entries, witness: witness)
    }

    public func architecture(of c: VMConfig) -> (Architecture, String) {
        if let architecture { return (architecture, "--arch") }
        return Architecture.infer(c, tree: deviceTrees[c.file])
    }

    /// The rules that look at one VM.
    public func check(_ c: VMConfig) -> [Finding] {
        var r = Result()
        check(c, resolving: resolve(c), into: &r)
        return r.findings
    }

    /// What the configuration's device tree passes through (once per configuration and run).
    func resolve(_ c: VMConfig) -> DeviceTreePassthrough { DeviceTreePassthrough(config: c, tree: deviceTrees[c.file]) }

    func check(_ c: VMConfig, resolving tree: DeviceTreePassthrough, into result: inout Result) {
        var out: [Finding] = []
        var spans: [OverlapSweep.Span] = []
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
            spans.append(.init(start: r.gpa, size: r.size, kind: .ram, name: name, line: r.line))
        }
        if c.memoryRegions.isEmpty { out.append(finding(.noRAM, c, "no memory_regions: the VM has no RAM", ["kernel.memory_regions"], line: c.lines["kernel.memory_regions"])) }

        for (key, list) in [("phys_cpu_ids", c.physCpuIds), ("phys_cpu_sets", c.physCpuSets)] {
            if let list, UInt64(list.count) != c.cpuNum {
                out.append(finding(.cpuCount, c, "cpu_num is \(c.cpuNum) but \(key) lists \(list.count) value\(list.count == 1 ? "" : "s")",
                                   ["base.cpu_num", "base.\(key)"], line: c.lines["base.\(key)"] ?? c.lines["base.cpu_num"]))
            }
        }

        // Pass-through: explicit devices, or the device tree's ranges, and the identity windows.
        out += tree.findings
        var seen: [String: Int] = [:]
        for d in c.passthroughDevices where !d.fromDeviceTree {
            let name = "passthrough_devices[\(d.index)] \"\(d.name)\""
            if let first = seen[d.name] {
                out.append(finding(.duplicateDevice, c, "device \"\(d.name)\" is listed at [\(first)] and [\(d.index)]", [name], line: d.line))
            }
            seen[d.name] = d.index
            if d.gpa.addingReportingOverflow(d.length).overflow || d.hpa.addingReportingOverflow(d.length).overflow {
                out.append(finding(.overflow, c, "\(name) gpa \(hex(d.gpa)) or hpa \(hex(d.hpa)) + length \(hex(d.length)) passes 2^64", [name], line: d.line))
            }
        }
        for a in c.passthroughAddresses {
            let name = "passthrough_addresses[\(a.index)]"
            if a.length == 0 { out.append(finding(.zeroSize, c, "\(name) has length 0", [name], line: a.line)) }
            if a.gpa.addingReportingOverflow(a.length).overflow {
                out.append(finding(.overflow, c, "\(name) base \(hex(a.gpa)) + length \(hex(a.length)) passes 2^64", [name], line: a.line))
            }
        }
        let treeNames = Set(tree.devices.map(\.name))
        let sources = VMPlanner.passthroughSources(c, resolved: tree.devices)
        for m in VMPlanner.passthrough(sources) {
            let fromTree = m.sources.allSatisfy(treeNames.contains)
            let line = sources.first { m.sources.contains($0.name) }?.line
            spans.append(.init(start: m.gpa, size: m.size, kind: fromTree ? .deviceTree : .passthrough,
                               name: (fromTree ? "device-tree " : "pass-through ") + m.sources.joined(separator: "+"), line: line))
        }
        for e in c.emuDevices {
            let name = "emu_devices[\(e.index)] \"\(e.name)\""
            if e.length == 0 { out.append(finding(.zeroSize, c, "\(name) has length 0", [name], line: e.line)); continue }
            if e.gpa.addingReportingOverflow(e.length).overflow {
                out.append(finding(.overflow, c, "\(name) base \(hex(e.gpa)) + length \(hex(e.length)) passes 2^64", [name], line: e.line))
                continue
            }
            spans.append(.init(start: e.gpa, size: e.length, kind: .emulated, name: name, line: e.line))
        }

        // One sweep over everything the guest-physical space holds.
        let pairs = OverlapSweep.pairs(spans)
        result.overlappingPairs += pairs.count
        for (a, b, w) in pairs {
            let kinds = Set([a.kind, b.kind])
            let rule: Rule
            let what: String
            if kinds == [.ram] { (rule, what) = (.ramOverlap, "memory regions overlap") }
            else if kinds.contains(.emulated) {
                if kinds.contains(.ram) || kinds == [.emulated] { (rule, what) = (.emulatedOverlap, "an emulated device overlaps") }
                else if kinds.contains(.passthrough) { (rule, what) = (.emulatedOverPassthrough, "an emulated device overlaps pass-through memory") }
                else { (rule, what) = (.emulatedOverDeviceTree, "an emulated device overlaps a range the device tree passes through") }
            }
            else if kinds.contains(.ram) { (rule, what) = (.ramDeviceOverlap, "a memory region overlaps pass-through memory") }
            else { (rule, what) = (.deviceOverlap, "pass-through ranges overlap after merging (different host addresses)") }
            out.append(finding(rule, c, "\(what): \(a.name) [\(hex(a.start)), +\(hex(a.size))) and \(b.name) [\(hex(b.start)), +\(hex(b.size))) both contain \(hex(w))",
                               [a.name, b.name], line: b.line ?? a.line, witness: w))
        }

        // The guest-physical width of the format the architecture gives this VM.
        let (arch, reason) = architecture(of: c)
        let format = arch.pageTableFormat(end: spans.map(\.end).max() ?? 0)
        result.architectures.append((c.file, arch, reason, format))
        let bits = format.type.guestAddressBits
        let limit = UInt128(1) << bits
        for s in spans where s.end > limit {
            let first = max(UInt128(s.start), limit)
            out.append(finding(.beyondAddressWidth, c, "\(s.name) [\(hex(s.start)), +\(hex(s.size))) reaches past the \(bits)-bit guest-physical space of \(format.type.name) (\(arch.rawValue): \(reason))",
                               [s.name], line: s.line, witness: UInt64(first)))
        }

        // Images and the entry point.
        func region(containing address: UInt64) -> VMConfig.MemoryRegion? {
            c.memoryRegions.first { $0.size > 0 && Kernels.rangeContainsAddress(start: $0.gpa, size: $0.size, address: address) }
        }
        for image in c.images {
            let name = "kernel.\(image.kind)_load_addr"
            guard let r = region(containing: image.loadAddress) else {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) load address \(hex(image.loadAddress)) is in no memory region", [name], line: image.line))
                continue
            }
            if let size = image.size, size > 0,
               !Kernels.rangeContains(outerStart: r.gpa, outerSize: r.size, innerStart: image.loadAddress, innerSize: size) {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) (\(image.path), \(hex(size)) bytes) at \(hex(image.loadAddress)) runs past the end of memory_regions[\(r.index)]",
                                   [name, "memory_regions[\(r.index)]"], line: image.line ?? r.line))
            }
            let flags = MappingFlags(rawValue: r.flags)
            if !flags.contains(.read) || flags.contains(.device) {
                out.append(finding(.imageOutsideRAM, c, "\(image.kind) is loaded into memory_regions[\(r.index)], which is \(flags)", [name, "memory_regions[\(r.index)]"], line: image.line ?? r.line))
            }
        }
        if let kernel = c.image("kernel"), let kSize = kernel.size, kSize > 0 {
            for image in c.images where image.kind != "kernel" {
                guard let size = image.size, size > 0, Kernels.rangesOverlap(kernel.loadAddress, kSize, image.loadAddress, size) else { continue }
                let w = Kernels.overlapWitness(kernel.loadAddress, image.loadAddress)
                out.append(finding(.imagesOverlap, c, "\(image.kind) (\(image.path)) [\(hex(image.loadAddress)), +\(hex(size))) overlaps the kernel (\(kernel.path)) [\(hex(kernel.loadAddress)), +\(hex(kSize))) at \(hex(w))",
                                   ["kernel.\(image.kind)_load_addr", "kernel.kernel_load_addr"], line: image.line, witness: w))
            }
        }
        if let r = region(containing: c.entryPoint) {
            if !MappingFlags(rawValue: r.flags).contains(.execute) {
                out.append(finding(.entryNotExecutable, c, "entry point \(hex(c.entryPoint)) is in memory_regions[\(r.index)], which is not executable",
                                   ["kernel.entry_point", "memory_regions[\(r.index)]"], line: r.line))
            }
        } else {
            out.append(finding(.entryNotExecutable, c, "entry point \(hex(c.entryPoint)) is in no memory region", ["kernel.entry_point"], line: c.lines["kernel.entry_point"]))
        }

        // Host side.
        if let host {
            for (start, size, name, line, _) in hostRanges(c, resolved: tree) {
                let inRAM = host.ram.contains { Kernels.rangeContains(outerStart: $0.start, outerSize: $0.size, innerStart: start, innerSize: size) }
                if !inRAM { out.append(finding(.hostRangeNotRAM, c, "\(name) host range [\(hex(start)), +\(hex(size))) is not inside host RAM", [name], line: line)) }
                for h in host.hypervisor where Kernels.rangesOverlap(h.start, h.size, start, size) {
                    let w = Kernels.overlapWitness(h.start, start)
                    out.append(finding(.hostRangeHypervisor, c, "\(name) overlaps the hypervisor's [\(hex(h.start)), +\(hex(h.size))) at \(hex(w))",
                                       [name], line: line, witness: w))
                }
            }
        }
        result.findings += out
    }

    /// Host ranges a VM claims: identity and reserved regions (host ==
    /// guest) and, with `includeDevices`, its merged pass-through ranges
    /// (their host side).
    func hostRanges(_ c: VMConfig, resolved: DeviceTreePassthrough, includeDevices: Bool = false) -> [(UInt64, UInt64, String, Int?, devices: [String])] {
        var out: [(UInt64, UInt64, String, Int?, devices: [String])] = c.memoryRegions
            .filter { $0.mapType != .alloc && $0.size > 0 && !$0.gpa.addingReportingOverflow($0.size).overflow }
            .map { ($0.gpa, $0.size, "memory_regions[\($0.index)]", $0.line, []) }
        if includeDevices {
            let sources = VMPlanner.passthroughSources(c, resolved: resolved.devices)
            for m in VMPlanner.passthrough(sources) {
                guard let h = m.hostStart, !h.addingReportingOverflow(m.size).overflow else { continue }
                let line = sources.first { m.sources.contains($0.name) }?.line
                out.append((h, m.size, "pass-through \"" + m.sources.joined(separator: "+") + "\"", line, m.sources))
            }
        }
        return out
    }

    /// Every rule over a set of VMs, the cross-VM ownership rule included.
    public func check(_ configs: [VMConfig]) -> [Finding] { evaluate(configs).findings }

    public func evaluate(_ configs: [VMConfig]) -> Result {
        var result = Result()
        let trees = configs.map(resolve)
        for (c, tree) in zip(configs, trees) { check(c, resolving: tree, into: &result) }
        let ranges = zip(configs, trees).map { hostRanges($0, resolved: $1, includeDevices: true) }
        for (i, a) in configs.enumerated() {
            for j in (i + 1)..<configs.count {
                let b = configs[j]
                for ra in ranges[i] {
                    for rb in ranges[j] where Kernels.rangesOverlap(ra.0, ra.1, rb.0, rb.1) {
                        // Shared only when both name every device of their range as shared.
                        if !ra.devices.isEmpty, !rb.devices.isEmpty, ra.devices.allSatisfy(a.sharedDevices.contains),
                           rb.devices.allSatisfy(b.sharedDevices.contains) { continue }
                        result.overlappingPairs += 1
                        let w = Kernels.overlapWitness(ra.0, rb.0)
                        result.findings.append(Finding(rule: .sharedHostRange,
                                                       message: "\(a.file) \(ra.2) and \(b.file) \(rb.2) own the same host memory, e.g. \(hex(w))",
                                                       file: b.file, line: rb.3, entries: [ra.2, rb.2], witness: w))
                    }
                }
            }
        }
        return result
    }
}
