import Foundation
import HVCore

/// A picture of VM memory maps: one column per VM of its guest-physical
/// space, and beside them one host-physical axis with a lane per VM, so
/// host ranges two VMs both claim stand out.
///
/// Sizes span twelve orders of magnitude (a 4 KiB window beside 3 GiB of
/// RAM), so the axes are piecewise: every range start and end is a tick;
/// the stretch between two ticks is drawn with a height that grows with
/// log2 of its size (4 KiB: 14 px, each doubling 5 px more), the same
/// rule everywhere, so a larger stretch is always taller; a gap of more
/// than 16 MiB is cut to a fixed height and drawn with a break mark.
/// Every box carries its exact range in `data-start`/`data-end` and a
/// tooltip.
public enum MemoryMapSVG {
    public struct VM: Sendable {
        public let config: VMConfig
        public let plan: [PlannedMapping]
        /// Names of the pass-through sources that came from the device tree.
        public let fromDeviceTree: Set<String>

        public init(config: VMConfig, plan: [PlannedMapping], fromDeviceTree: Set<String> = []) {
            self.config = config
            self.plan = plan
            self.fromDeviceTree = fromDeviceTree
        }
    }

    struct Box {
        let start: UInt128, end: UInt128
        let kind: String
        let label: String
        let detail: String
    }

    static func colour(_ kind: String) -> String {
        switch kind {
        case "alloc": "#8fbc8f"
        case "identical": "#6fa8dc"
        case "reserved": "#f6b26b"
        case "passthrough": "#e06666"
        case "device-tree": "#f4a6c0"
        case "emulated": "#b4a7d6"
        default: "#cccccc"
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func h(_ v: UInt128) -> String { v > UInt128(UInt64.max) ? "0x1" + String(repeating: "0", count: 16) : hex(UInt64(v)) }

    static let brokenGap: UInt128 = 16 << 20

    static func height(_ size: UInt128) -> Double {
        let pages = max(Double(size) / 4096, 1)
        return 14 + 5 * log2(pages)
    }

    /// A piecewise axis over the ticks: y of each tick, and which gaps are broken.
    struct Axis {
        let ticks: [UInt128]
        let ys: [Double]
        let broken: [Bool]

        init(boxes: [Box], top: Double) {
            let ticks = Array(Set(boxes.flatMap { [$0.start, $0.end] })).sorted()
            var ys: [Double] = [], broken: [Bool] = []
            var y = top
            for (i, t) in ticks.enumerated() {
                ys.append(y)
                guard i + 1 < ticks.count else { break }
                let next = ticks[i + 1]
                let covered = boxes.contains { $0.start <= t && $0.end >= next }
                let isBroken = !covered && next - t > brokenGap
                broken.append(isBroken)
                y += isBroken ? 18 : height(next - t)
            }
            self.ticks = ticks
            self.ys = ys
            self.broken = broken
        }

        func y(_ a: UInt128) -> Double { ys[ticks.firstIndex(of: a)!] }
        var bottom: Double { ys.last ?? 0 }
    }

    static func guestBoxes(_ vm: VM) -> [Box] {
        var out: [Box] = vm.plan.map { m in
            let (kind, host): (String, String) = switch m.backing {
            case .alloc: ("alloc", "allocated")
            case .identical: ("identical", "host == guest")
            case .reserved: ("reserved", "host == guest, reserved")
            case let .passthrough(hpa): (m.sources.allSatisfy(vm.fromDeviceTree.contains) ? "device-tree" : "passthrough", "host \(hex(hpa))")
            }
            return Box(start: UInt128(m.gpa), end: UInt128(m.gpa) + UInt128(m.size), kind: kind, label: m.sources.joined(separator: ", "),
                       detail: "[\(hex(m.gpa)), \(h(UInt128(m.gpa) + UInt128(m.size)))) \(m.flags) \(kind), \(host): \(m.sources.joined(separator: ", "))")
        }
        for e in vm.config.emuDevices where e.length > 0 && !e.gpa.addingReportingOverflow(e.length).overflow {
            out.append(Box(start: UInt128(e.gpa), end: UInt128(e.gpa) + UInt128(e.length), kind: "emulated", label: e.name,
                           detail: "[\(hex(e.gpa)), \(hex(e.gpa + e.length))) emulated \(e.type): \(e.name)"))
        }
        return out
    }

    /// Boxes may overlap (that is what a check reports); overlapping ones
    /// share the column side by side.
    static func lanes(_ boxes: [Box]) -> [Int] {
        var laneEnds: [UInt128] = []
        var out = [Int](repeating: 0, count: boxes.count)
        for i in boxes.indices.sorted(by: { (boxes[$0].start, $0) < (boxes[$1].start, $1) }) {
            if let l = laneEnds.firstIndex(where: { $0 <= boxes[i].start }) { out[i] = l; laneEnds[l] = boxes[i].end } else {
                out[i] = laneEnds.count
                laneEnds.append(boxes[i].end)
            }
        }
        return out
    }

    static func column(_ boxes: [Box], x: Double, width: Double, top: Double, group: String, extra: (Box) -> String = { _ in "" }) -> (svg: [String], bottom: Double) {
        guard !boxes.isEmpty else { return (["<text x=\"\(x)\" y=\"\(top + 14)\">(nothing mapped)</text>"], top + 20) }
        let axis = Axis(boxes: boxes, top: top)
        var out: [String] = []
        for (i, t) in axis.ticks.enumerated() {
            out.append("<text class=\"tick\" x=\"\(x - 4)\" y=\"\(axis.ys[i] + 3)\" text-anchor=\"end\" font-size=\"9\">\(h(t))</text>")
            if i < axis.broken.count, axis.broken[i] {
                let y0 = axis.ys[i] + 4, mid = x + width / 2
                out.append("<path class=\"break\" d=\"M\(mid - 20) \(y0 + 5) l10 -5 l10 10 l10 -10 l10 5\" stroke=\"#555\" fill=\"none\"/>")
                out.append("<text x=\"\(mid + 26)\" y=\"\(y0 + 8)\" font-size=\"9\" fill=\"#555\">gap of \(h(axis.ticks[i + 1] - t)) (not to scale)</text>")
            }
        }
        let lane = lanes(boxes)
        let laneCount = (lane.max() ?? 0) + 1
        let w = width / Double(laneCount)
        for (i, b) in boxes.enumerated() {
            let y0 = axis.y(b.start), y1 = axis.y(b.end)
            let bx = x + Double(lane[i]) * w
            let dash = b.kind == "device-tree" ? " stroke-dasharray=\"4 2\"" : ""
            out.append("<rect class=\"range\" data-group=\"\(escape(group))\" data-kind=\"\(b.kind)\" data-start=\"\(h(b.start))\" data-end=\"\(h(b.end))\" "
                       + "x=\"\(bx)\" y=\"\(y0)\" width=\"\(w - 2)\" height=\"\(y1 - y0)\" fill=\"\(colour(b.kind))\" stroke=\"#333\"\(dash)\(extra(b))>"
                       + "<title>\(escape(b.detail))</title></rect>")
            if y1 - y0 >= 12 {
                out.append("<text x=\"\(bx + 4)\" y=\"\(min(y0 + 12, y1 - 2))\" font-size=\"10\">\(escape(String(b.label.prefix(Int(w / 6.5)))))</text>")
            }
        }
        return (out, axis.bottom)
    }

    public static func render(_ vms: [VM], title: String? = nil) -> String {
        let colWidth = 240.0, gutter = 110.0, top = 70.0
        var body: [String] = []
        var bottom = top
        for (k, vm) in vms.enumerated() {
            let x = gutter + Double(k) * (colWidth + gutter)
            body.append("<text x=\"\(x)\" y=\"\(top - 24)\" font-size=\"13\">\(escape("\(vm.config.name) (id \(vm.config.id))"))</text>")
            body.append("<text x=\"\(x)\" y=\"\(top - 10)\" font-size=\"10\" fill=\"#555\">guest-physical</text>")
            let (svg, b) = column(guestBoxes(vm), x: x, width: colWidth, top: top, group: "guest \(vm.config.name)")
            body += svg
            bottom = max(bottom, b)
        }
        // Host-physical: one axis, a lane per VM; ranges two VMs claim are outlined.
        let hostX = gutter + Double(vms.count) * (colWidth + gutter)
        var hostBoxes: [(Box, Int)] = []
        for (k, vm) in vms.enumerated() {
            for m in vm.plan {
                guard let host = m.hostStart, !host.addingReportingOverflow(m.size).overflow else { continue }
                let kind: String = switch m.backing {
                case .identical: "identical"
                case .reserved: "reserved"
                default: m.sources.allSatisfy(vm.fromDeviceTree.contains) ? "device-tree" : "passthrough"
                }
                hostBoxes.append((Box(start: UInt128(host), end: UInt128(host) + UInt128(m.size), kind: kind, label: "\(vm.config.name): \(m.sources.joined(separator: ", "))",
                                      detail: "\(vm.config.name): host [\(hex(host)), \(hex(host + m.size))) \(kind) for guest \(hex(m.gpa))"), k))
            }
        }
        let shared = Set(hostBoxes.indices.filter { i in
            hostBoxes.indices.contains { j in
                hostBoxes[j].1 != hostBoxes[i].1 && hostBoxes[i].0.start < hostBoxes[j].0.end && hostBoxes[j].0.start < hostBoxes[i].0.end
            }
        })
        body.append("<text x=\"\(hostX)\" y=\"\(top - 24)\" font-size=\"13\">host-physical</text>")
        body.append("<text x=\"\(hostX)\" y=\"\(top - 10)\" font-size=\"10\" fill=\"#555\">\(escape(vms.map(\.config.name).joined(separator: " | "))); red outline: claimed by two VMs</text>")
        if !hostBoxes.isEmpty {
            let axis = Axis(boxes: hostBoxes.map(\.0), top: top)
            let laneWidth = colWidth * 0.7
            for (i, t) in axis.ticks.enumerated() {
                body.append("<text class=\"tick\" x=\"\(hostX - 4)\" y=\"\(axis.ys[i] + 3)\" text-anchor=\"end\" font-size=\"9\">\(h(t))</text>")
            }
            for (i, (b, k)) in hostBoxes.enumerated() {
                let y0 = axis.y(b.start), y1 = axis.y(b.end), bx = hostX + Double(k) * laneWidth
                let outline = shared.contains(i) ? "#cc0000\" stroke-width=\"3" : "#333"
                body.append("<rect class=\"host\(shared.contains(i) ? " host-shared" : "")\" data-vm=\"\(k)\" data-start=\"\(h(b.start))\" data-end=\"\(h(b.end))\" "
                            + "x=\"\(bx)\" y=\"\(y0)\" width=\"\(laneWidth - 4)\" height=\"\(y1 - y0)\" fill=\"\(colour(b.kind))\" stroke=\"\(outline)\"><title>\(escape(b.detail))</title></rect>")
            }
            bottom = max(bottom, axis.bottom)
        }
        let width = hostX + colWidth * 0.7 * Double(max(vms.count, 1)) + 40
        let legendY = bottom + 30
        var legend: [String] = []
        for (i, kind) in ["alloc", "identical", "reserved", "passthrough", "device-tree", "emulated"].enumerated() {
            legend.append("<rect x=\"\(20 + Double(i) * 130)\" y=\"\(legendY)\" width=\"14\" height=\"14\" fill=\"\(colour(kind))\" stroke=\"#333\"/>")
            legend.append("<text x=\"\(40 + Double(i) * 130)\" y=\"\(legendY + 12)\">\(kind)</text>")
        }
        legend.append("<text x=\"20\" y=\"\(legendY + 34)\" font-size=\"10\" fill=\"#555\">heights grow with log2 of each stretch's size (4 KiB = 14 px, +5 px per doubling); gaps over 16 MiB are cut</text>")
        let name = title ?? vms.map(\.config.name).joined(separator: ", ")
        let head = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(legendY + 50))\" font-family=\"monospace\" font-size=\"12\">",
                    "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                    "<text x=\"20\" y=\"22\" font-size=\"16\">\(escape(name)): memory map</text>"]
        return (head + body + legend + ["</svg>"]).joined(separator: "\n") + "\n"
    }
}
