import ArgumentParser
import Foundation
import HVConfig
import HVCore

/// Writes a starting configuration in the current axvisor format.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a commented axvisor VM configuration (current format) that hvkit check passes."
    )

    @Option(help: "x86_64, aarch64 or riscv64.")
    var arch: String

    @Option(help: "VM id.") var id: UInt64 = 1
    @Option(help: "VM name (default: ARCH-vm).") var name: String?
    @Option(help: "Number of vCPUs.") var cpus: UInt64 = 1
    @Option(help: "Entry point (default: the load address).") var entry: String?
    @Option(help: "Kernel image path (default: bzImage or Image).") var kernel: String?
    @Option(help: "Kernel load address (default: 0x20_0000 on x86_64, RAM base + 0x8_0000 elsewhere).") var loadAddr: String?
    @Option(help: "RAM size (e.g. 256M, 1G).") var memory = "256M"
    @Option(help: "Kernel command line.") var cmdline: String?
    @Option(name: .shortAndLong, help: "Write here instead of standard output.") var output: String?

    func run() throws {
        guard let a = Architecture(rawValue: arch) else { throw ValidationError("--arch is x86_64, aarch64 or riscv64") }
        var t = ConfigTemplate(arch: a)
        t.id = id
        t.name = name
        t.cpus = cpus
        t.entry = try entry.map(RunCommand.number)
        t.kernel = kernel
        t.loadAddress = try loadAddr.map(RunCommand.number)
        t.memory = try RunCommand.number(memory)
        t.cmdline = cmdline
        let text: String
        do { text = try t.text() } catch { throw ValidationError("\(error)") }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(output)\n".utf8))
        } else {
            print(text, terminator: "")
        }
    }
}

/// Prints the JSON Schema of the configuration format.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print a JSON Schema (draft 2020-12) of the axvisor VM configuration format, for editors and CI linters."
    )

    func run() { print(ConfigSchema.json) }
}
