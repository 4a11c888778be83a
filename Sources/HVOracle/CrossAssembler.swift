import Foundation

/// Assembles one of the oracle's probe programs (`Programs/*.S`) with
/// Debian's cross binutils into a flat binary linked at `base`, once per
/// process.
enum CrossAssembler {
    static let programs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Programs")

    /// One assembly at a time (tests run oracles side by side).
    static let lock = NSLock()

    static func binary(_ program: String, prefix: String, march: [String], base: UInt64) throws(OracleError) -> URL {
        lock.lock()
        defer { lock.unlock() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-oracle-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let object = dir.appendingPathComponent("\(program).o").path, elf = dir.appendingPathComponent("\(program).elf").path
        let bin = dir.appendingPathComponent("\(program).bin")
        if FileManager.default.fileExists(atPath: bin.path) { return bin }
        let source = programs.appendingPathComponent("\(program).S").path
        _ = try OracleProcess.run("\(prefix)as", march + ["-o", object, source], timeout: 30)
        _ = try OracleProcess.run("\(prefix)ld", ["-Ttext=0x\(String(base, radix: 16))", "-o", elf, object], timeout: 30)
        _ = try OracleProcess.run("\(prefix)objcopy", ["-O", "binary", elf, bin.path], timeout: 30)
        return bin
    }

    /// An ELF executable linked at `base` (QEMU's x86 -kernel takes a
    /// multiboot ELF).
    /// `convert`: objcopy arguments applied last (QEMU's multiboot loader
    /// takes ELF32 only, so a long-mode image is relabelled elf32-i386).
    static func elf(_ program: String, assembler: String, assemblerFlags: [String], linker: String, linkerFlags: [String], base: UInt64,
                    convert: [String] = []) throws(OracleError) -> URL {
        lock.lock()
        defer { lock.unlock() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hvkit-oracle-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let object = dir.appendingPathComponent("\(program).o").path
        let elf = dir.appendingPathComponent("\(program).elf")
        if FileManager.default.fileExists(atPath: elf.path) { return elf }
        _ = try OracleProcess.run(assembler, assemblerFlags + ["-o", object, programs.appendingPathComponent("\(program).S").path], timeout: 30)
        if convert.isEmpty {
            _ = try OracleProcess.run(linker, linkerFlags + ["-Ttext=0x\(String(base, radix: 16))", "-o", elf.path, object], timeout: 30)
        } else {
            let linked = dir.appendingPathComponent("\(program).linked").path
            _ = try OracleProcess.run(linker, linkerFlags + ["-Ttext=0x\(String(base, radix: 16))", "-o", linked, object], timeout: 30)
            _ = try OracleProcess.run("objcopy", convert + [linked, elf.path], timeout: 30)
        }
        return elf
    }
}
