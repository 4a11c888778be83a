// fuzz-dtb: bytes as a flattened device tree, through the reader and the
// range resolution `hvkit check` runs on a configuration's device tree.
import FuzzSupport
import HVConfig

func fuzzOne(_ bytes: [UInt8]) {
    guard let tree = try? FlattenedDeviceTree.parse(bytes) else { return }
    _ = tree.ranges()
    _ = tree.paths.count
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// The executable's entry point (SwiftPM links `main` to it): libFuzzer's driver.
@_cdecl("fuzz_dtb_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzEntry)
}
#else
/// Without the fuzzer: replays the files given (a corpus) through the same entry point.
@main struct Replay {
    static func main() throws { try replay(CommandLine.arguments.dropFirst(), fuzzOne) }
}
#endif
