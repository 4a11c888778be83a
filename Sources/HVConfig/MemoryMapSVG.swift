import Foundation
import HVCore

/// A picture of guest-physical space: one row per planned mapping, laid out
/// in address order (not to scale: sizes span twelve orders of magnitude),
/// each box labelled and coloured by backing.
public enum MemoryMapSVG {
    static func colour(_ b: PlannedMapping.Backing) -> String {
        switch b {
        case .alloc: "#8fbc8f"
        case .identical: "#6fa8dc"
        case .reserved: "#f6b26b"
        case .passthrough: "#e06666"
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public static func render(_ plan: [PlannedMapping], title: String) -> String {
        let rowHeight = 28, width = 900, top = 50
        let height = top + rowHeight * plan.count + 60
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"monospace\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"10\" y=\"24\" font-size=\"16\">\(escape(title)): guest-physical memory map</text>"]
        for (i, m) in plan.enumerated() {
            let y = top + i * rowHeight
            let kind: String = switch m.backing {
            case .alloc: "alloc"
            case .identical: "identical"
            case .reserved: "reserved"
            case let .passthrough(hpa): "passthrough -> \(hex(hpa))"
            }
            out.append("<rect x=\"10\" y=\"\(y)\" width=\"\(width - 20)\" height=\"\(rowHeight - 4)\" fill=\"\(colour(m.backing))\" stroke=\"#333\"/>")
            out.append("<text x=\"16\" y=\"\(y + 17)\">\(escape("[\(hex(m.gpa)), \(hex(m.end)))  \(m.flags)  \(kind)  \(m.sources.joined(separator: ", "))"))</text>")
        }
        let legendY = top + rowHeight * plan.count + 25
        for (i, (name, b)) in [("alloc", PlannedMapping.Backing.alloc), ("identical", .identical), ("reserved", .reserved), ("pass-through", .passthrough(hpa: 0))].enumerated() {
            out.append("<rect x=\"\(10 + i * 150)\" y=\"\(legendY)\" width=\"14\" height=\"14\" fill=\"\(colour(b))\" stroke=\"#333\"/>")
            out.append("<text x=\"\(30 + i * 150)\" y=\"\(legendY + 12)\">\(name)</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
