// fuzz-dtb: bytes as a flattened device tree, through the reader and the
// range resolution `hvkit check` runs on a configuration's device tree.
import FuzzSupport
import HVConfig

func fuzzOne(_ bytes: [UInt8]) {
    guard let tree = try? FlattenedDeviceTree.parse(bytes) else { return }
    _ = tree.ranges()
    _ = tree.paths.count
}

@main struct Target {
    static func main() throws { try fuzzTarget(fuzzOne) }
}
