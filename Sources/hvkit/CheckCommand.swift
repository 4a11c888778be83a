import ArgumentParser
import Foundation
import HVConfig
import HVCore

/// Checks axvisor VM configurations for layout and isolation mistakes.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check axvisor VM configurations (TOML) for mapping and isolation mistakes.",
        discussion: """
        Device-tree pass-through (a name-only passthrough_devices entry) is resolved against --dtb, or else the \
        file the configuration's dtb_path names when it exists beside the configuration.
        Exit status: 0 clean (notes never fail), 1 errors (warnings too with --strict), 2 unreadable input \
        (TOML, format or device tree).
        """
    )

    @Argument(help: "VM configuration files.")
    var files: [String]

    @Option(help: "Host description TOML (ram = [[start, size]], hypervisor = [[start, size]]) for host-side rules.")
    var host: String?

    @Option(help: "A device tree blob to resolve name-only pass-through against (for every configuration given).")
    var dtb: String?

    @Option(help: "x86_64, aarch64 or riscv64 (default: what each configuration shows).")
    var arch: String?

    @Option(help: "text, json or sarif.")
    var format = "text"

    @Flag(help: "Fail on warnings too.")
    var strict = false

    func validate() throws {
        guard ["text", "json", "sarif"].contains(format) else { throw ValidationError("--format is text, json or sarif") }
        if let arch, Architecture(rawValue: arch) == nil { throw ValidationError("--arch is x86_64, aarch64 or riscv64") }
    }

    /// The configurations and a checker holding the host description and
    /// each configuration's device tree.
    func load() throws(ConfigError) -> ([VMConfig], Checker) {
        var checker = Checker(host: try host.map { (h: String) throws(ConfigError) in try ConfigFiles.host(h) })
        var configs: [VMConfig] = []
        for file in files {
            let c = try ConfigFiles.config(file)
            if let found = try ConfigFiles.deviceTree(for: c, override: dtb) { checker.deviceTrees[c.file] = found.0 }
            configs.append(c)
        }
        return (configs, checker)
    }

    func run() throws {
        var (configs, checker): ([VMConfig], Checker)
        do {
            (configs, checker) = try load()
        } catch {
            FileHandle.standardError.write(Data("hvkit check: \(error)\n".utf8))
            throw ExitCode(2)
        }
        checker.architecture = arch.flatMap(Architecture.init(rawValue:))
        let result = checker.evaluate(configs)
        let findings = result.findings
        switch format {
        case "json":
            if !findings.isEmpty { print(Report.jsonLines(findings)) }
            print(Report.jsonSummary(result, files: configs.count))
        case "sarif": print(Report.sarif(findings))
        default: print(Report.text(findings, files: configs.count))
        }
        let failing = findings.contains { $0.severity == .error || (strict && $0.severity == .warning) }
        if failing { throw ExitCode(1) }
    }
}
