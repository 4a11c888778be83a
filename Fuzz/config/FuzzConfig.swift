// fuzz-config: bytes as a VM configuration, through the same path as
// `hvkit check`: parse (TOML, axvisor's format), then every rule.
import FuzzSupport
import HVConfig

func fuzzOne(_ bytes: [UInt8]) {
    guard let config = try? ConfigParser.parse(file: "fuzz.toml", bytes: bytes) else { return }
    _ = Checker().evaluate([config])
}

@main struct Target {
    static func main() throws { try fuzzTarget(fuzzOne) }
}
