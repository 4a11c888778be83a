import ArgumentParser
import Foundation
import HVConfig
import HVCore

/// Checks axvisor VM configurations for layout and isolation mistakes.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check axvisor VM configurations (TOML) for mapping and isolation mistakes.",
        discussion: "Exit status: 0 clean, 1 violations (warnings too with --strict), 2 unreadable input."
    )

    @Argument(help: "VM configuration files.")
    var files: [String]

    @Option(help: "Host description TOML (ram = [[start, size]], hypervisor = [[start, size]]) for host-side rules.")
    var host: String?

    @Option(help: "text, json or sarif.")
    var format = "text"

    @Flag(help: "Fail on warnings too.")
    var strict = false

    func validate() throws {
        guard ["text", "json", "sarif"].contains(format) else { throw ValidationError("--format is text, json or sarif") }
    }

    func run() throws {
        var configs: [VMConfig] = []
        var hostDescription: HostDescription?
        do {
            if let host {
                guard let data = FileManager.default.contents(atPath: host) else { throw ConfigError(file: host, keyPath: "", line: nil, message: "cannot read the file") }
                hostDescription = try ConfigParser.parseHost(file: host, text: String(decoding: data, as: UTF8.self))
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { throw ConfigError(file: file, keyPath: "", line: nil, message: "cannot read the file") }
                configs.append(try ConfigParser.parse(file: file, text: String(decoding: data, as: UTF8.self)))
            }
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("hvkit check: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let findings = Checker(host: hostDescription).check(configs)
        switch format {
        case "json": if !findings.isEmpty { print(Report.jsonLines(findings)) }
        case "sarif": print(Report.sarif(findings))
        default: print(Report.text(findings, files: configs.count))
        }
        let failing = findings.contains { $0.severity == .error || strict }
        if failing { throw ExitCode(1) }
    }
}
