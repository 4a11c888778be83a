import ArgumentParser

@main
struct HVKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvkit",
        abstract: "A checked hypervisor memory core: nested page tables, guest address spaces, proofs.",
        subcommands: [DemoCommand.self, RunCommand.self, CheckCommand.self, InspectCommand.self, GenerateCommand.self, SchemaCommand.self, OracleCommand.self, BenchCommand.self, HuntCommand.self, ServeCommand.self, ReplayCommand.self, ProveCommand.self]
    )
}
