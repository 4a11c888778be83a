import Foundation
import HVConfig
import HVCore
import Testing

@Suite("Booting an axvisor configuration's Linux kernel")
struct LinuxBootConfigTests {
    @Test func theX86LinuxFixtureGivesKernelRAMAndCommandLine() throws {
        let path = Fixtures.dir.appendingPathComponent("good/x86_64-linux.toml").path
        let boot = try LinuxBootConfig(try Fixtures.config("good/x86_64-linux.toml"), path: path)
        #expect(boot.kernel == Fixtures.dir.appendingPathComponent("good/bzImage").path, "relative to the configuration")
        #expect(boot.ram == 0x4000_0000, "[0, 1 MiB) and [1 MiB, 1 GiB) join into [0, 1 GiB)")
        #expect(boot.cmdline == "console=ttyS0" && boot.initrd == nil)
        #expect(boot.notes.contains { $0.hasPrefix("bios_path axvm-bios.bin is not used") })
        #expect(boot.notes.contains { $0.contains("[0xfee00000, 0xfee01000) MapReserved") }, "the APIC page is left to KVM: \(boot.notes)")
    }

    @Test func aGapInRAMIsAClearError() throws {
        let text = """
        [base]
        id = 1
        name = "gappy"
        vm_type = 2
        cpu_num = 1
        [kernel]
        entry_point = 0x100000
        kernel_path = "vmlinux"
        kernel_load_addr = 0x100000
        ramdisk_path = "/boot/initrd.img"
        ramdisk_load_addr = 0x800000
        memory_regions = [[0x0, 0x100000, 0x7, 0], [0x200000, 0x1000000, 0x7, 0]]
        [devices]
        emu_devices = []
        passthrough_devices = []
        """
        let config = try ConfigParser.parse(file: "/vms/gappy.toml", text: text)
        #expect(throws: ConfigError.self) { try LinuxBootConfig(config, path: "/vms/gappy.toml") }
        var joined = config
        joined.memoryRegions[1].gpa = 0x10_0000
        let boot = try LinuxBootConfig(joined, path: "/vms/gappy.toml")
        #expect(boot.ram == 0x110_0000 && boot.kernel == "/vms/vmlinux" && boot.initrd == "/boot/initrd.img")
    }
}
