// The corpus replay every fuzz target's plain build runs: each file (or
// every file of each directory) through the target's entry point.
#if canImport(Glibc)
import Glibc
#endif

public enum ReplayError: Error { case unreadable(String) }

/// `--slowest N` first: also times each input and prints the N slowest
/// with their milliseconds and the total (where a target's time goes).
public func replay(_ arguments: ArraySlice<String>, _ body: ([UInt8]) -> Void) throws {
    var paths = arguments
    var slowest = 0
    if paths.first == "--slowest", paths.count >= 2, let n = Int(paths[paths.startIndex + 1]), n >= 0 {
        slowest = n
        paths = paths.dropFirst(2)
    }
    var count = 0
    var times: [(ms: Double, file: String)] = []
    for path in paths {
        for file in files(path) {
            guard let bytes = contents(file) else { throw ReplayError.unreadable(file) }
            let start = monotonicNanoseconds()
            body(bytes)
            if slowest > 0 { times.append((Double(monotonicNanoseconds() - start) / 1e6, file)) }
            count += 1
        }
    }
    print("replayed \(count) input(s)")
    if slowest > 0 {
        let total = times.reduce(0) { $0 + $1.ms }
        print("total \(Int(total)) ms; the \(min(slowest, times.count)) slowest:")
        for t in times.sorted(by: { $0.ms > $1.ms }).prefix(slowest) { print("  \(Int(t.ms)) ms  \(t.file)") }
    }
}

func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
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
