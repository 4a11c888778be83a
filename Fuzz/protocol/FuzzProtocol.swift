// fuzz-protocol: bytes as target-protocol lines, through every reader of
// them HVKit has: `hvkit serve` answering each line as a request (one
// server for the whole input, so requests build on each other), the
// driver's reading of a `hello` answer, and the whole input as a replay file.
import FuzzSupport
import HVTarget

func fuzzOne(_ bytes: [UInt8]) {
    // A small pool: a fresh one per input keeps inputs independent, and 64 MiB
    // of it would be most of an execution under AddressSanitizer.
    let server = TargetServer(poolFrames: 256)
    var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).prefix(64)
    if lines.count == 64 { lines = lines.dropLast() }
    for line in lines {
        let answer = server.answer(Array(line))
        // Every answer is one line of JSON with "ok".
        precondition(answer["ok"]?.boolValue != nil, "an answer without ok: \(answer)")
        precondition(!answer.description.utf8.contains(0x0A), "an answer with a newline")
        if let v = try? JSONLineParser.parse(Array(line)) { _ = TargetHello.parse(v) }
    }
    _ = try? ReplayCase.parse(String(decoding: bytes, as: UTF8.self))
}

@main struct Target {
    static func main() throws { try fuzzTarget(fuzzOne) }
}
