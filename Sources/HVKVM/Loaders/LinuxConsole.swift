import HVCore

/// What a Linux guest said on its console that HVKit checks: the e820 map
/// it was handed, its memory total, and the lines the guest image's /init
/// prints (see scripts/guest-image).
public struct LinuxConsole: Equatable {
    /// "BIOS-e820: [mem 0x...-0x...] usable" lines, ends made exclusive.
    public private(set) var e820: [BootParams.E820Entry] = []
    /// "Memory: 215520K/261752K available": (available, total) in KiB.
    public private(set) var memory: (available: UInt64, total: UInt64)?
    public private(set) var sawInitMarker = false
    /// /proc/meminfo MemTotal, in KiB, as /init printed it.
    public private(set) var memTotalKiB: UInt64?
    /// /proc/iomem "System RAM" ranges, ends exclusive.
    public private(set) var iomemSystemRAM: [(start: UInt64, end: UInt64)] = []
    public private(set) var poweredOff = false
    /// The first line that says the kernel gave up ("Kernel panic").
    public private(set) var panic: String?

    public static let initMarker = "HVKIT-INIT: hello from the guest's /init"

    public init() {}

    public init(text: String) {
        for line in text.split(whereSeparator: \.isNewline) { take(String(line)) }
    }

    public static func == (a: LinuxConsole, b: LinuxConsole) -> Bool {
        a.e820 == b.e820 && a.memory?.available == b.memory?.available && a.memory?.total == b.memory?.total
            && a.sawInitMarker == b.sawInitMarker && a.memTotalKiB == b.memTotalKiB && a.poweredOff == b.poweredOff
            && a.iomemSystemRAM.map(\.start) == b.iomemSystemRAM.map(\.start) && a.iomemSystemRAM.map(\.end) == b.iomemSystemRAM.map(\.end)
    }

    /// Feeds one console line (without its newline).
    public mutating func take(_ raw: String) {
        var line = Substring(raw)
        while line.last == "\r" || line.last == " " { line = line.dropLast() }
        if let r = line.firstRange(of: "BIOS-e820: [mem ") {
            let rest = line[r.upperBound...]
            let parts = rest.split(separator: "]", maxSplits: 1)
            guard parts.count == 2 else { return }
            let bounds = parts[0].split(separator: "-")
            guard bounds.count == 2, let lo = Self.hex(bounds[0]), let hi = Self.hex(bounds[1]) else { return }
            let kind = parts[1].trimmingSpaces
            e820.append(BootParams.E820Entry(address: lo, size: hi &+ 1 &- lo, type: kind == "usable" ? 1 : 2))
        } else if let r = line.firstRange(of: "Memory: "), memory == nil {
            // "Memory: 215520K/261752K available (...)"
            let figures = line[r.upperBound...].split(separator: " ").first ?? ""
            let kib = figures.split(separator: "/").map { $0.hasSuffix("K") ? UInt64($0.dropLast()) : nil }
            if kib.count == 2, let available = kib[0], let total = kib[1] { memory = (available, total) }
        } else if line.contains(Self.initMarker) {
            sawInitMarker = true
        } else if let r = line.firstRange(of: "HVKIT-MEMINFO: MemTotal:") {
            memTotalKiB = UInt64(line[r.upperBound...].trimmingSpaces.split(separator: " ").first ?? "")
        } else if let r = line.firstRange(of: "HVKIT-IOMEM: "), line.hasSuffix("System RAM") {
            let bounds = line[r.upperBound...].split(separator: " ").first?.split(separator: "-") ?? []
            if bounds.count == 2, let lo = Self.hex(bounds[0]), let hi = Self.hex(bounds[1]) { iomemSystemRAM.append((lo, hi &+ 1)) }
        } else if line.contains("reboot: Power down") {
            poweredOff = true
        } else if panic == nil, line.contains("Kernel panic") {
            panic = String(line)
        }
    }

    static func hex<S: StringProtocol>(_ text: S) -> UInt64? {
        let t = String(text)
        return UInt64(t.hasPrefix("0x") ? String(t.dropFirst(2)) : t, radix: 16)
    }

    /// Differences between what the kernel reported and what HVKit planned,
    /// empty when they agree: the e820 map must be the same entries, and the
    /// kernel's total must be the planned usable RAM less at most the one
    /// page at 0 it always takes back (`slackKiB`).
    public func problems(plannedE820 planned: [BootParams.E820Entry], slackKiB: UInt64 = 4) -> [String] {
        var out: [String] = []
        if e820.isEmpty {
            out.append("the kernel printed no BIOS-e820 lines")
        } else if e820 != planned {
            out.append("e820 differs: kernel \(e820.map(\.description)), planned \(planned.map(\.description))")
        }
        let usableKiB = planned.filter { $0.type == 1 }.reduce(0) { $0 + $1.size } / 1024
        if let memory {
            if memory.total > usableKiB || usableKiB - memory.total > slackKiB {
                out.append("the kernel counts \(memory.total) KiB of RAM; HVKit planned \(usableKiB) KiB usable")
            }
        } else {
            out.append("the kernel printed no \"Memory:\" line")
        }
        return out
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
