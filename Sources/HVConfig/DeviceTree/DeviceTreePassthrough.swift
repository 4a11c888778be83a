import HVCore

/// What axvisor passes through for a configuration, given the VM's device
/// tree. axvisor decides by the first `passthrough_devices` entry: when its
/// length is 0 the whole list is device-tree paths, and every node under
/// each path (the root and memory nodes excepted, the subtrees named in
/// `excluded_devices` left out) contributes its `reg` ranges, a PCIe host
/// bridge its `ranges` windows and its ECAM `reg`. The addresses are used
/// as written in `reg` (guest == host), not translated through the
/// buses' `ranges`.
public struct DeviceTreePassthrough: Sendable {
    /// The resolved ranges, as identity pass-through devices named by path.
    public var devices: [VMConfig.PassthroughDevice] = []
    /// Warnings and notes about what axvisor would do.
    public var findings: [Finding] = []

    public init(config c: VMConfig, tree: DeviceTree?) {
        func note(_ rule: Rule, _ message: String, _ entries: [String], line: Int?, witness: UInt64? = nil) {
            findings.append(Finding(rule: rule, message: message, file: c.file, line: line, entries: entries, witness: witness))
        }
        guard let first = c.passthroughDevices.first else { return }
        let entryName = { (d: VMConfig.PassthroughDevice) in "passthrough_devices[\(d.index)] \"\(d.name)\"" }
        guard first.fromDeviceTree else {
            for d in c.passthroughDevices where d.fromDeviceTree {
                note(.mixedPassthrough, "\(entryName(d)) has length 0 but the first entry gives explicit ranges, so axvisor maps nothing for it", [entryName(d)], line: d.line)
            }
            return
        }
        let explicit = c.passthroughDevices.filter { !$0.fromDeviceTree }
        if !explicit.isEmpty {
            note(.mixedPassthrough, "the first pass-through entry is a device-tree path, so axvisor takes the whole list from the device tree and ignores "
                 + explicit.map(entryName).joined(separator: ", "), explicit.map(entryName), line: explicit[0].line)
        }
        let named = c.passthroughDevices.filter(\.fromDeviceTree)
        guard let tree else {
            for d in named {
                note(.resolvedAtBoot, "\(entryName(d)) is resolved from the host's device tree at boot; give --dtb (or the dtb_path file) to check its ranges", [entryName(d)], line: d.line)
            }
            return
        }
        var excluded: [String] = []
        for (i, group) in c.excludedDevices.enumerated() {
            for path in group {
                if let p = tree.canonicalPath(path) { excluded.append(p) } else {
                    note(.unknownDeviceTreePath, "excluded_devices[\(i)] \"\(path)\" names no node of the device tree", ["excluded_devices[\(i)]"], line: c.lines["devices.excluded_devices"])
                }
            }
        }
        func under(_ path: String, _ top: String) -> Bool { top == "/" || path == top || path.hasPrefix(top + "/") }
        let all = tree.ranges()
        var taken = Set<String>()
        for d in named {
            guard let top = tree.canonicalPath(d.name) else {
                note(.unknownDeviceTreePath, "\(entryName(d)) names no node of the device tree", [entryName(d)], line: d.line)
                continue
            }
            for path in tree.paths where under(path, top) && !taken.contains(path) {
                guard let ranges = all[path], !tree.isMemoryNode(path), !excluded.contains(where: { under(path, $0) }) else { continue }
                taken.insert(path)
                for r in ranges where r.size > 0 {
                    if let t = r.translated, t != r.address {
                        note(.translatedAddress, "\(path) \(r.source) address \(hex(r.address)) is \(hex(t)) once translated through its buses' ranges; axvisor maps \(hex(r.address))",
                             [entryName(d), path], line: d.line, witness: r.address)
                    } else if r.translated == nil {
                        note(.translatedAddress, "\(path) \(r.source) address \(hex(r.address)) cannot be translated to a CPU address (a bus above it has no matching ranges); axvisor maps it as written",
                             [entryName(d), path], line: d.line, witness: r.address)
                    }
                    devices.append(.init(name: path, gpa: r.address, hpa: r.address, length: r.size, index: d.index, line: d.line))
                }
            }
        }
    }
}
