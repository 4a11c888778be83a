import Foundation
import HVKVM
import Testing
import TestSupport

/// `hvkit-vmm`, the lean VMM, as a user runs it: a tiny guest's output and
/// exit status, a bad image as exit 2 with one line, and no dynamic loader
/// (a static executable: nothing to find or relocate at start).
@Suite("hvkit-vmm on the command line", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct VMMCommandTests {
    static let root = packageRoot()
    static var binary: URL? {
        let candidates = [".build/debug/hvkit-vmm", ".build/x86_64-unknown-linux-gnu/debug/hvkit-vmm"].map { root.appendingPathComponent($0) }
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
        if found == nil { print("SKIPPED: hvkit-vmm tests: no built hvkit-vmm under .build (swift build builds it)") }
        return found
    }

    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) { try runProcess(binary!, args) }

    @Test func aTinyGuestRunsAndABadImageIsExitTwo() throws {
        guard Self.binary != nil else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-vmm-test-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("hello.bin")
        try Data(TestGuests.realModeHello("hi from the lean VMM\n", status: 5)).write(to: image)
        for memory in [["--lazy"], ["--memory", "64M"]] {
            let r = try Self.run([image.path, "--mode", "real"] + memory)
            #expect(r.status == 5 && r.out.hasPrefix("hi from the lean VMM\n"), "\(memory): status \(r.status), out \(r.out), err \(r.err)")
        }
        let empty = dir.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        let bad = try Self.run([empty.path, "--mode", "real"])
        #expect(bad.status == 2, "an empty image: status \(bad.status)")
        #expect(bad.err.split(separator: "\n").count == 1 && bad.out.isEmpty, "one line on stderr: \(bad.err)")
        // No PT_INTERP program header: the kernel starts it without ld.so.
        let elf = try Data(contentsOf: Self.binary!)
        func u64(_ o: Int) -> Int { elf[o..<(o + 8)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) } }
        func u16(_ o: Int) -> Int { Int(elf[o]) | Int(elf[o + 1]) << 8 }
        let (phoff, phentsize, phnum) = (u64(0x20), u16(0x36), u16(0x38))
        let types = (0..<phnum).map { i in Int(elf[phoff + i * phentsize]) | Int(elf[phoff + i * phentsize + 1]) << 8 }
        #expect(!types.contains(3), "hvkit-vmm is a static executable (no PT_INTERP)")
        KVMAvailability.ran("aTinyGuestRunsAndABadImageIsExitTwo")
    }
}
