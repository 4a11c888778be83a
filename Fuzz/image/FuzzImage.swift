// fuzz-image: bytes as a guest image, through what `hvkit run` does before
// a VM starts: ELF32/ELF64 or flat loading and the RAM check, the bzImage
// setup header, and the Linux boot plan for a fixed memory size.
import FuzzSupport
import HVKVM

func fuzzOne(_ bytes: [UInt8]) {
    if ELFLoader.isELF(bytes) {
        if let image = try? ELFLoader.load(bytes) { _ = try? image.check(ram: 64 << 20) }
    } else if let image = try? GuestImage.flat(bytes, at: 0x1000, entry: nil, bits: 16) {
        _ = try? image.check(ram: 64 << 20)
    }
    _ = try? BzImage(bytes)
    _ = try? LinuxBootPlan(image: bytes, initrd: nil, commandLine: "console=ttyS0", ram: 256 << 20, lazy: false)
}

@main struct Target {
    static func main() throws { try fuzzTarget(fuzzOne) }
}
