// The corpus replay every fuzz target's plain build runs: each file (or
// every file of each directory) through the target's entry point.
#if canImport(Glibc)
import Glibc
#endif

public enum ReplayError: Error { case unreadable(String) }

public func replay(_ paths: ArraySlice<String>, _ body: ([UInt8]) -> Void) throws {
    var count = 0
    for path in paths {
        for file in files(path) {
            guard let bytes = contents(file) else { throw ReplayError.unreadable(file) }
            body(bytes)
            count += 1
        }
    }
    print("replayed \(count) input(s)")
}

func files(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [path] }
    defer { closedir(dir) }
    var out: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { out.append(path + "/" + name) }
    }
    return out.sorted()
}

func contents(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 { return nil }
        if n == 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

/// The whole of a fuzz target's `main`: under `-DFUZZING` (scripts/fuzz),
/// libFuzzer's driver with `body` as the target; in a plain build, the
/// corpus replay of the files named on the command line.
public func fuzzTarget(_ body: @escaping ([UInt8]) -> Void) throws {
    #if FUZZING
    target = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
    #else
    try replay(CommandLine.arguments.dropFirst(), body)
    #endif
}

#if FUZZING
/// The target libFuzzer calls, set once before the driver starts.
nonisolated(unsafe) var target: (([UInt8]) -> Void)?

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#endif
