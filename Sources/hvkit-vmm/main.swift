// hvkit-vmm: `hvkit run IMAGE` without the rest of the tool. Built on
// HVCore and HVKVM only (no Foundation, no Z3, no argument parser), so it
// starts in a few milliseconds and a few MiB: the VMM path loads nothing
// it does not use. Options are `hvkit run`'s for an IMAGE.
import HVCore
import HVKVM
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String, status: Int32 = 2) -> Never {
    var line = "hvkit-vmm: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(status)
}

func number(_ text: String) -> UInt64 {
    let t = text.lowercased().filter { $0 != "_" }
    for (suffix, scale) in [("k", UInt64(1) << 10), ("m", 1 << 20), ("g", 1 << 30)] where t.hasSuffix(suffix) {
        if let v = UInt64(t.dropLast()), !v.multipliedReportingOverflow(by: scale).overflow { return v * scale }
    }
    if t.hasPrefix("0x"), let v = UInt64(t.dropFirst(2), radix: 16) { return v }
    if let v = UInt64(t) { return v }
    fail("'\(text)' is not a number (use decimal, 0x-hex, or a K/M/G size)", status: 64)
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fail("cannot read \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 { fail("cannot read \(path): \(String(cString: strerror(errno)))") }
        if n == 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

let usage = "usage: hvkit-vmm IMAGE [--mode real|protected] [--memory SIZE] [--lazy] [--lazy-region SIZE] [--load-address A] [--entry A] [--max-exits N] [--time-limit S]"
var image: String?
var mode = "real", memory: UInt64 = 64 << 20, lazy = false, lazyRegion: UInt64 = 0, loadAddress: UInt64 = 0x1000
var entry: UInt64?, maxExits = 10_000_000, timeLimit: Duration?
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    func value() -> String {
        guard let v = args.popFirst() else { fail("\(a) needs a value\n\(usage)", status: 64) }
        return v
    }
    switch a {
    case "--mode": mode = value()
    case "--memory": memory = number(value())
    case "--lazy": lazy = true
    case "--lazy-region": lazyRegion = number(value())
    case "--load-address": loadAddress = number(value())
    case "--entry": entry = number(value())
    case "--max-exits": maxExits = Int(number(value()))
    case "--time-limit": timeLimit = .seconds(Int64(number(value())))
    case "-h", "--help": print(usage); exit(0)
    default:
        if a.hasPrefix("-") || image != nil { fail("unexpected '\(a)'\n\(usage)", status: 64) }
        image = a
    }
}
guard let image else { fail(usage, status: 64) }
guard mode == "real" || mode == "protected" else { fail("--mode is real or protected", status: 64) }

let bytes = readFile(image)
let guest: GuestImage
do {
    guest = ELFLoader.isELF(bytes) ? try ELFLoader.load(bytes) : try GuestImage.flat(bytes, at: loadAddress, entry: entry, bits: mode == "real" ? 16 : 32)
} catch {
    fail("\(image): \(error)")
}
do {
    let finished = try ImageRun(ram: memory, lazy: lazy, lazyRegion: lazyRegion, maxExits: maxExits, timeLimit: timeLimit)
        .run(guest) { byte in withUnsafePointer(to: byte) { _ = write(1, $0, 1) } }
    if !finished.runner.serialOutput.isEmpty, finished.runner.serialOutput.last != 10 { print() }
    print(ImageRun.summary(finished))
    if let report = ImageRun.peakRSSReport(finished) {
        var line = report + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
    exit(ImageRun.exitStatus(finished.outcome))
} catch {
    fail("\(image): \(error)")
}
