import Foundation
import HVCore

/// One run of an emulated machine: the probe program and the binary
/// images it reads, each loaded at its address by QEMU's generic loader;
/// what the program prints on the serial line comes back as lines, the
/// last of which must be "E".
struct QEMUMachine {
    let binary: String
    let arguments: [String]
    /// The exit status of a normal end (isa-debug-exit makes it 1).
    var exitStatus: Int32 = 0
    /// A line the program prints first, where firmware prints before it.
    var startLine: String? = nil

    /// Runs the machine with `images` loaded; returns the program's lines
    /// before the closing "E", which must be `expectedLines` of them.
    func run(program: URL?, at base: UInt64, images: [(Data, UInt64)], expectedLines: Int) throws(OracleError) -> [Substring] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-oracle-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Unique names: runs may go on side by side.
        let run = UUID().uuidString
        var loaders = program.map { ["-device", "loader,file=\($0.path),addr=0x\(String(base, radix: 16)),cpu-num=0"] } ?? []
        var files: [URL] = []
        defer { for f in files { try? FileManager.default.removeItem(at: f) } }
        for (k, (data, address)) in images.enumerated() {
            let url = dir.appendingPathComponent("\(run)-\(k).bin")
            do { try data.write(to: url) } catch { throw .malformedAnswer("cannot write an image: \(error)") }
            files.append(url)
            loaders += ["-device", "loader,file=\(url.path),addr=0x\(String(address, radix: 16))"]
        }
        // -no-reboot: a triple fault ends the machine (an error here) instead of rebooting into a hang.
        // HVKIT_QEMU_DEBUG adds QEMU's own logging (for example "-d int -D /tmp/qemu.log").
        let debug = ProcessInfo.processInfo.environment["HVKIT_QEMU_DEBUG"].map { $0.split(separator: " ").map(String.init) } ?? []
        let output = try OracleProcess.run(binary, arguments + ["-accel", "tcg", "-nographic", "-nodefaults", "-serial", "stdio", "-monitor", "none", "-no-reboot"] + debug + loaders,
                                           timeout: 120, acceptedStatus: exitStatus)
        var lines = output.split(separator: "\n").map { $0.drop { $0 == " " } }
        if let startLine {
            guard let start = lines.lastIndex(where: { $0.hasSuffix(startLine) }) else { throw .malformedAnswer("no start line \(startLine) in the output") }
            lines = Array(lines[(start + 1)...])
        }
        guard lines.last == "E", lines.count == expectedLines + 1 else {
            throw .malformedAnswer("expected \(expectedLines) lines and E, got \(lines.count) lines ending \(lines.suffix(2))")
        }
        return Array(lines.dropLast())
    }

    /// The bytes of a table's pool from its base up to its highest table frame.
    static func image<F: PageTableFormat>(of table: NestedPageTable<F>, poolBase: UInt64) -> Data {
        let end = table.tableFrames.map { $0 + ($0 == table.root.raw ? F.rootBytes : frameSize) }.max()!
        return Data(bytes: table.allocator.directMap.pointer(poolBase)!, count: Int(end - poolBase))
    }

    static func words(_ values: [UInt64]) -> Data { values.withUnsafeBufferPointer { Data(buffer: $0) } }
}
