import ArgumentParser
import Foundation
import HVCore
import HVKVM

/// Runs a guest on KVM with HVCore-managed memory and reports how it ended:
/// a Linux kernel through the x86 boot protocol (--kernel), or a flat
/// binary or ELF test image.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a Linux kernel, or a flat binary or ELF guest image, on KVM in HVKit-managed memory.",
        discussion: """
        --kernel boots a bzImage through the Linux x86 boot protocol (64-bit entry): RAM [0, 640K) and \
        [1M, --memory), read-only zeros in [640K, 1M), in-kernel irqchip and PIT, KVM's CPUID less --hide-cpuid, \
        a 16550A on COM1 streamed to the terminal. It checks the kernel's e820 map and memory total against \
        HVKit's plan and exits 1 when they differ, 2 when the boot ends in a KVM error, triple fault or \
        memory violation, 3 on the time limit.

        A VM.toml (axvisor format) boots its kernel the same way: RAM is [0, N) from its normal memory \
        regions, the kernel, ramdisk and cmdline come from it; its BIOS, entry point and load address are \
        reported and not used.

        An IMAGE runs in RAM [0, --memory); it prints on COM1 and ends by writing a status byte to \
        port 0x501 (the exit status).
        """
    )

    @Argument(help: "A VM.toml whose kernel is a Linux image, or a flat binary or ELF image (ELF32/ELF64 is detected by its magic).")
    var image: String?

    @Option(help: "A Linux bzImage to boot through the x86 boot protocol.")
    var kernel: String?

    @Option(help: "An initramfs for --kernel.")
    var initrd: String?

    @Option(help: "The kernel command line.")
    var cmdline = LinuxDefaults.commandLine

    @Option(help: "CPUID features to hide from a --kernel guest, comma separated (e.g. xsave,cx16).")
    var hideCpuid: String?

    @Option(help: "Where a --kernel run stops: memory (after the e820 map and memory line), init (after /init's report), never.")
    var stopAt = "never"

    @Option(help: "Wall-clock limit in seconds (0: none).")
    var timeLimit = 0

    @Option(help: "Where a flat binary is loaded (hex or decimal).")
    var loadAddress = "0x1000"

    @Option(help: "Entry point of a flat binary (default: its load address).")
    var entry: String?

    @Option(help: "CPU mode for a flat binary: real or protected (32-bit flat).")
    var mode = "real"

    @Option(help: "Guest RAM size, e.g. 64M (default: 64M for an IMAGE, 256M for --kernel).")
    var memory: String?

    @Flag(help: "Fill guest RAM on first touch instead of up front (for --kernel: RAM above 1 MiB).")
    var lazy = false

    @Option(help: "For an IMAGE: a lazily populated region right after RAM, e.g. 256M (0 for none).")
    var lazyRegion = "0"

    @Option(help: "Stop after this many VM exits.")
    var maxExits = 10_000_000

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    static func number(_ text: String) throws -> UInt64 {
        let t = text.lowercased().replacingOccurrences(of: "_", with: "")
        let units: [(String, UInt64)] = [("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = UInt64(t.dropLast()), !v.multipliedReportingOverflow(by: scale).overflow else { break }
            return v * scale
        }
        if t.hasPrefix("0x"), let v = UInt64(t.dropFirst(2), radix: 16) { return v }
        if let v = UInt64(t) { return v }
        throw ValidationError("'\(text)' is not a number (use decimal, 0x-hex, or a K/M/G size)")
    }

    func run() throws {
        if let kernel {
            guard image == nil else { throw ValidationError("give either --kernel or an IMAGE, not both") }
            try KernelRun(kernel: kernel, initrd: initrd, cmdline: cmdline, memory: try Self.number(memory ?? "256M"), lazy: lazy,
                          hide: hideCpuid, stopAt: stopAt, timeLimit: timeLimit, json: json).run()
            return
        }
        guard let image else { throw ValidationError("give an IMAGE to run, or --kernel") }
        if image.hasSuffix(".toml") {
            try ConfigRun(path: image).run(lazy: lazy, hide: hideCpuid, stopAt: stopAt, timeLimit: timeLimit, json: json)
            return
        }
        let run = ImageRun(ram: try Self.number(memory ?? "64M"), lazy: lazy, lazyRegion: try Self.number(lazyRegion), maxExits: maxExits,
                           timeLimit: timeLimit > 0 ? .seconds(timeLimit) : nil)
        do throws(ImageRun.Problem) { try run.validate() } catch { throw ValidationError(error.description) }
        guard let data = FileManager.default.contents(atPath: image) else { throw badInput("run", "cannot read \(image)") }
        let bytes = [UInt8](data)
        let guest: GuestImage
        do {
            if ELFLoader.isELF(bytes) {
                guest = try ELFLoader.load(bytes)
            } else {
                guard mode == "real" || mode == "protected" else { throw ValidationError("--mode is real or protected") }
                let at = try Self.number(loadAddress)
                guest = try GuestImage.flat(bytes, at: at, entry: try entry.map(Self.number), bits: mode == "real" ? 16 : 32)
            }
            try guest.check(ram: run.ram)
        } catch let error as ImageError {
            throw badInput("run", "\(image): \(error)")
        }
        // The console goes out as the guest writes it (what a user, and the
        // start-up benchmark, sees), not when the run is over.
        let finished: ImageRun.Finished
        do {
            finished = try run.run(guest, console: json ? nil : { byte in withUnsafePointer(to: byte) { _ = Glibc.write(1, $0, 1) } })
        } catch let error as ImageRun.Problem {
            throw badInput("run", "\(image): \(error)")
        }
        let runner = finished.runner, outcome = finished.outcome
        if json {
            let text = runner.serialText.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            let end = outcome.description.replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            print("{\"outcome\":\"\(end)\",\"serial\":\"\(text)\",\"lazy_faults\":\(runner.lazyFaults),\"slots\":\(runner.slots.slotCount)}")
        } else {
            if !runner.serialOutput.isEmpty, !runner.serialText.hasSuffix("\n") { print() }
            print(ImageRun.summary(finished))
        }
        if let report = ImageRun.peakRSSReport(finished) { FileHandle.standardError.write(Data((report + "\n").utf8)) }
        let status = ImageRun.exitStatus(outcome)
        if status != 0 { throw ExitCode(status) }
    }
}
