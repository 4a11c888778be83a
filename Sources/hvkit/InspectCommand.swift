import ArgumentParser
import Foundation
import HVConfig
import HVCore

/// Shows the memory map a configuration plans.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the planned memory map of a VM configuration (and draw it with --svg)."
    )

    @Argument(help: "A VM configuration file.")
    var file: String

    @Option(help: "Write an SVG picture of the map here.")
    var svg: String?

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            FileHandle.standardError.write(Data("hvkit inspect: cannot read \(file)\n".utf8))
            throw ExitCode(2)
        }
        let config: VMConfig
        do { config = try ConfigParser.parse(file: file, text: String(decoding: data, as: UTF8.self)) } catch {
            FileHandle.standardError.write(Data("hvkit inspect: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let plan = VMPlanner.plan(config)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        print("\(config.name) (id \(config.id)), entry \(hex(config.entryPoint))")
        print(pad("guest range", 36) + pad("size", 14) + pad("backing", 14) + pad("host range", 36) + pad("flags", 14) + "from")
        for m in plan {
            let backing: String = switch m.backing {
            case .alloc: "alloc"
            case .identical: "identical"
            case .reserved: "reserved"
            case .passthrough: "passthrough"
            }
            let host = m.hostStart.map { "[\(hex($0)), \(hex($0 &+ m.size)))" } ?? "(allocated)"
            print(pad("[\(hex(m.gpa)), \(hex(m.end)))", 36) + pad(hex(m.size), 14) + pad(backing, 14) + pad(host, 36)
                + pad(m.flags.description, 14) + m.sources.joined(separator: ", "))
        }
        if let svg {
            try MemoryMapSVG.render(plan, title: config.name).write(toFile: svg, atomically: true, encoding: .utf8)
            print("wrote \(svg)")
        }
    }
}
