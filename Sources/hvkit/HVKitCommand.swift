import ArgumentParser

@main
struct HVKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvkit",
        abstract: "A checked hypervisor memory core: nested page tables, guest address spaces, proofs.",
        subcommands: [DemoCommand.self, RunCommand.self, CheckCommand.self, InspectCommand.self, GenerateCommand.self, SchemaCommand.self, OracleCommand.self, BenchCommand.self, HuntCommand.self, ServeCommand.self, ReplayCommand.self, ProveCommand.self]
    )

    /// `hvkit serve` with no options starts without the argument parser
    /// (whose first use scans every type of this large binary): a hunt
    /// starts one server per case, so its start-up is the hunt's pace.
    static func main() {
        let args = CommandLine.arguments
        if args.count == 2, args[1] == "serve" {
            ServeCommand.serve(bug: nil)
            return
        }
        main(nil)
    }
}
