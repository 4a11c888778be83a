import Foundation
import HVConfig
import HVCore
import Testing

/// Blobs built from a compiled tree with one field broken.
enum BrokenBlobs {
    static func put(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
    }
    static func word(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(b[at + $1]) } }

    /// (name, blob, what the error must say)
    static func all(_ good: [UInt8]) -> [(String, [UInt8], String)] {
        let structOff = Int(word(good, 8)), structSize = Int(word(good, 36))
        var out: [(String, [UInt8], String)] = []
        func variant(_ name: String, _ expect: String, _ change: (inout [UInt8]) -> Void) {
            var b = good
            change(&b)
            out.append((name, b, expect))
        }
        out.append(("short", Array(good.prefix(10)), "truncated"))
        variant("magic", "bad magic") { put(&$0, 0, 0xFEED_D00D) }
        variant("version", "version 15") { put(&$0, 20, 15); put(&$0, 24, 15) }
        variant("totalsize", "totalsize") { put(&$0, 4, UInt32($0.count + 4096)) }
        variant("struct-outside", "structure block") { put(&$0, 8, UInt32($0.count - 8)) }
        variant("strings-outside", "strings block") { put(&$0, 32, 0x10_0000) }
        // The root's name is empty (one NUL); a structure block of 5 bytes cuts it off.
        variant("unterminated-name", "no terminating NUL") { $0[structOff + 4] = 0x41; put(&$0, 36, 5) }
        variant("bad-token", "unknown token") { put(&$0, structOff, 7) }
        variant("end-node-first", "closes no node") { put(&$0, structOff, 2) }
        variant("no-end", "without closing every node") { put(&$0, 36, UInt32(structSize - 4)) }
        // The first property after the root's BEGIN_NODE and its 4-byte name block.
        let firstProp = structOff + 8
        variant("name-outside-strings", "outside the strings block") { put(&$0, firstProp + 8, 0xFFFF) }
        variant("property-too-long", "runs past the structure block") { put(&$0, firstProp + 4, 0xFFFF) }
        return out
    }
}

@Suite("Device trees")
struct DeviceTreeTests {
    @Test func readsNodesCellsRegAndRanges() throws {
        let tree = try Fixtures.deviceTree("aarch64-virt")
        #expect(tree.paths.contains("/pl011@9000000") && tree.paths.contains("/soc/virtio_mmio@a000200"))
        let ranges = tree.ranges()
        #expect(ranges["/intc@8000000"]?.map(\.address) == [0x0800_0000, 0x080a_0000])
        #expect(ranges["/intc@8000000"]?.map(\.size) == [0x1_0000, 0xf6_0000])
        // One-cell addresses of the simple-bus children, identity ranges.
        #expect(ranges["/soc/virtio_mmio@a000000"]?.first == .init(path: "/soc/virtio_mmio@a000000", address: 0x0a00_0000, translated: 0x0a00_0000, size: 0x200, source: "reg"))
        // PCIe: ECAM from reg, three windows from ranges; its children are not MMIO.
        let pcie = try #require(ranges["/pcie@10000000"])
        #expect(pcie.map(\.source) == ["reg", "ranges", "ranges", "ranges"])
        #expect(pcie.map(\.address) == [0x40_1000_0000, 0x3eff_0000, 0x1000_0000, 0x80_0000_0000])
        #expect(ranges["/pcie@10000000/pci@0,0"] == nil)
        // cpus have #size-cells = 0: no ranges.
        #expect(ranges["/cpus/cpu@0"]?.allSatisfy { $0.size == 0 } ?? true)
        #expect(tree.canonicalPath("/pl031") == "/pl031@9010000", "a unique name may leave out its unit address")
        #expect(tree.canonicalPath("/pl011") == nil, "two pl011 nodes: ambiguous")
        #expect(tree.isMemoryNode("/memory@40000000") && tree.isMemoryNode("/reserved-memory/shm@7f000000"))
    }

    @Test func translatesThroughNonIdentityRanges() throws {
        let ranges = try Fixtures.deviceTree("aarch64-translated").ranges()
        let uart = try #require(ranges["/soc/serial@10000"]?.first)
        #expect(uart.address == 0x1_0000 && uart.translated == 0x2001_0000 && uart.size == 0x1000)
    }

    @Test func resolvesNameOnlyPassthroughLikeAxvisor() throws {
        let tree = try Fixtures.deviceTree("aarch64-virt")
        let c = try Fixtures.config("good/aarch64-qemu-virt.toml")
        let r = DeviceTreePassthrough(config: c, tree: tree)
        #expect(r.findings.isEmpty, "\(r.findings)")
        let paths = Set(r.devices.map(\.name))
        #expect(paths == ["/pl011@9000000", "/pl011@9040000", "/pl031@9010000", "/soc/virtio_mmio@a000000", "/soc/virtio_mmio@a000200"])
        #expect(r.devices.allSatisfy { $0.gpa == $0.hpa }, "identity")
        // Without the exclusions the GIC and the PCIe ranges come too; memory never does.
        var all = c
        all.excludedDevices = []
        let everything = DeviceTreePassthrough(config: all, tree: tree).devices
        #expect(everything.contains { $0.name == "/intc@8000000" } && everything.filter { $0.name == "/pcie@10000000" }.count == 4)
        #expect(!everything.contains { $0.name.hasPrefix("/memory") || $0.name.hasPrefix("/reserved-memory") })
        // Without a tree: one note per entry, and no error.
        let atBoot = DeviceTreePassthrough(config: c, tree: nil)
        #expect(atBoot.devices.isEmpty && atBoot.findings.map(\.rule) == [.resolvedAtBoot])
    }

    @Test func malformedBlobsAreClearErrors() throws {
        let good = try Fixtures.deviceTreeBlob("aarch64-virt")
        _ = try FlattenedDeviceTree.parse(good)
        let broken = BrokenBlobs.all(good)
        #expect(broken.count >= 10)
        for (name, blob, expect) in broken {
            do {
                _ = try FlattenedDeviceTree.parse(blob)
                Issue.record("\(name): accepted")
            } catch {
                #expect(error.description.contains(expect), "\(name): \(error)")
            }
        }
    }

    @Test func cellsThatDoNotDivideThePropertyAreErrors() throws {
        #expect(throws: DeviceTreeError.self) { try Fixtures.deviceTree("bad-reg-cells") }
        #expect(throws: DeviceTreeError.self) { try Fixtures.deviceTree("bad-address-cells") }
    }

    /// A random walk of byte flips over a real blob never crashes the reader.
    @Test func randomCorruptionNeverCrashes() throws {
        let good = try Fixtures.deviceTreeBlob("aarch64-virt")
        var rng = SplitMix64(seed: 0xD7B)
        var rejected = 0
        for _ in 0..<3000 {
            var b = good
            for _ in 0...Int(rng.below(4)) { b[Int(rng.below(UInt64(b.count)))] = UInt8(truncatingIfNeeded: rng.next()) }
            if rng.below(4) == 0 { b = Array(b.prefix(Int(rng.below(UInt64(b.count))))) }
            if (try? FlattenedDeviceTree.parse(b)) == nil { rejected += 1 }
        }
        #expect(rejected > 0)
    }
}
