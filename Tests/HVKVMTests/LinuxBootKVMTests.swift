import Foundation
import HVCore
import HVKVM
import Testing

/// Where scripts/guest-image left the kernel and initramfs: $HVKIT_GUEST_IMAGE,
/// else $HVKIT_CACHE/guest, else ~/.cache/hvkit/guest.
enum GuestImageFiles {
    static var directory: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["HVKIT_GUEST_IMAGE"] { return dir }
        let cache = env["HVKIT_CACHE"] ?? (env["HOME"] ?? "/root") + "/.cache/hvkit"
        return cache + "/guest"
    }

    static func bytes(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: directory + "/" + name).map { [UInt8]($0) }
    }

    /// The files, or nil after printing the SKIPPED line that says why.
    static func load(for test: String, _ names: String...) -> [[UInt8]]? {
        let found = names.compactMap(bytes)
        guard found.count == names.count else {
            print("SKIPPED: \(test): no guest image in \(directory) (scripts/guest-image builds it; scripts/test runs that first)")
            return nil
        }
        return found
    }
}

@Suite("Linux on KVM", .enabled(if: KVMAvailability.available, "KVM is unavailable"), .serialized)
struct LinuxBootKVMTests {
    static let commandLine = "console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr panic=-1 reboot=t"

    static func seconds(_ x: Double?) -> String { x.map { String(format: "%.1f s", $0) } ?? "never" }

    /// The kernel (an uncompressed vmlinux, so nothing decompresses in guest
    /// kernel mode) boots with lazily filled RAM until it has printed its
    /// e820 map and memory total; both must be what HVKit planned.
    @Test func theKernelSeesExactlyTheMemoryHVKitGaveIt() throws {
        guard let files = GuestImageFiles.load(for: "Linux boot to the memory line", "vmlinux", "initramfs.gz") else { return }
        let ram: UInt64 = 256 << 20
        let plan = try LinuxBootPlan(image: files[0], initrd: files[1], commandLine: Self.commandLine, ram: ram, lazy: true)
        let guest = try LinuxGuest(plan: plan, system: try KVMSystem())
        let outcome = try guest.run(stop: .memoryLine, timeLimit: .seconds(400))
        let t = guest.timeline
        print("Linux boot: \(outcome); first output \(Self.seconds(t.firstOutput)), e820 \(Self.seconds(t.e820)), memory line \(Self.seconds(t.memoryLine)); "
            + "\(guest.runner.lazyFaults) lazy pages touched by the kernel, \(guest.runner.loadFaults) by the loader")
        guard case .stopped = outcome else {
            Issue.record("the boot ended before the memory line: \(outcome)\nlast lines:\n\(guest.lines.suffix(8).joined(separator: "\n"))")
            return
        }
        #expect(guest.problems == [], "the kernel's view differs from the plan")
        #expect(guest.console.e820 == plan.plannedE820(guest.space))
        let usableKiB = plan.usableBytes(guest.space) / 1024
        #expect(guest.console.memory.map { $0.total <= usableKiB && $0.total + 4 >= usableKiB } == true)
        #expect(guest.runner.lazyFaults > 0 && guest.runner.lazyFaults < Int(ram / 4096), "the kernel touched some, not all, of its lazy RAM")
        #expect(guest.space.invariantViolations() == [])
        KVMAvailability.ran("theKernelSeesExactlyTheMemoryHVKitGaveIt")
    }

    /// The bzImage door: setup header, zero page and the 64-bit entry at
    /// +0x200 reach the kernel's own decompressor, which speaks on COM1.
    /// (It then decompresses in guest kernel mode; on KVMs that emulate
    /// that mode (PVM) it takes far longer than a test should.)
    @Test func aBzImageReachesItsDecompressor() throws {
        guard let files = GuestImageFiles.load(for: "Linux bzImage entry", "vmlinuz") else { return }
        let plan = try LinuxBootPlan(image: files[0], initrd: nil, commandLine: Self.commandLine, ram: 128 << 20, lazy: false)
        let guest = try LinuxGuest(plan: plan, system: try KVMSystem())
        let outcome = try guest.run(stop: .firstLine, timeLimit: .seconds(120))
        print("Linux bzImage: \(outcome); first line after \(Self.seconds(guest.timeline.firstOutput)): \(guest.lines.first ?? "")")
        guard case .stopped = outcome else { Issue.record("no console line from the decompressor: \(outcome)"); return }
        #expect(guest.lines.first?.contains("KASLR disabled") == true, "the decompressor read our command line: \(guest.lines)")
        KVMAvailability.ran("aBzImageReachesItsDecompressor")
    }

    /// The whole way: /init prints the guest's memory view and powers off.
    /// Long on KVMs that emulate guest kernel mode, so only when asked.
    @Test func bootsToInitAndReportsMemory() throws {
        guard ProcessInfo.processInfo.environment["HVKIT_BOOT_TO_INIT"] == "1" else {
            print("SKIPPED: Linux boot to /init: set HVKIT_BOOT_TO_INIT=1 to run it (minutes where KVM emulates guest kernel mode, as PVM does)")
            return
        }
        guard let files = GuestImageFiles.load(for: "Linux boot to /init", "vmlinux", "initramfs.gz") else { return }
        // noxsave: some KVMs (PVM) cannot hide XSAVE yet cannot emulate XRSTOR.
        let plan = try LinuxBootPlan(image: files[0], initrd: files[1], commandLine: Self.commandLine + " noxsave", ram: 256 << 20, lazy: true)
        let guest = try LinuxGuest(plan: plan, system: try KVMSystem(), hide: [.cx16])
        let outcome = try guest.run(stop: .initDone, timeLimit: .seconds(1800))
        print("Linux boot to /init: \(outcome); /init after \(Self.seconds(guest.timeline.initMarker)); MemTotal \(guest.console.memTotalKiB ?? 0) kB")
        guard case .stopped = outcome else {
            Issue.record("the boot ended before /init reported: \(outcome)\nlast lines:\n\(guest.lines.suffix(8).joined(separator: "\n"))")
            return
        }
        #expect(guest.problems == [])
        // Every System RAM range lies inside a usable e820 entry of the plan.
        let usable = plan.plannedE820(guest.space).filter { $0.type == 1 }
        for r in guest.console.iomemSystemRAM {
            #expect(usable.contains { $0.address <= r.start && r.end <= $0.address + $0.size }, "\(hex(r.start))-\(hex(r.end)) is planned RAM")
        }
        #expect((guest.console.memTotalKiB ?? 0) * 1024 <= plan.usableBytes(guest.space))
        KVMAvailability.ran("bootsToInitAndReportsMemory")
    }
}
