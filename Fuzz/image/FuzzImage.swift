// fuzz-image: bytes as a guest image, through what `hvkit run` does before
// a VM starts: ELF32/ELF64 or flat loading and the RAM check, the bzImage
// setup header, and the Linux boot plan for a fixed memory size.
import FuzzSupport
import HVKVM

func fuzzOne(_ bytes: [UInt8]) {
    if ELFLoader.isELF(bytes) {
        if let image = try? ELFLoader.load(bytes) { _ = try? image.check(ram: 64 << 20) }
    } else if let image = try? GuestImage.flat(bytes, at: 0x1000, entry: nil, bits: 16) {
        _ = try? image.check(ram: 64 << 20)
    }
    _ = try? BzImage(bytes)
    _ = try? LinuxBootPlan(image: bytes, initrd: nil, commandLine: "console=ttyS0", ram: 256 << 20, lazy: false)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOne(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// The executable's entry point (SwiftPM links `main` to it): libFuzzer's driver.
@_cdecl("fuzz_image_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzEntry)
}
#else
/// Without the fuzzer: replays the files given (a corpus) through the same entry point.
@main struct Replay {
    static func main() throws { try replay(CommandLine.arguments.dropFirst(), fuzzOne) }
}
#endif
