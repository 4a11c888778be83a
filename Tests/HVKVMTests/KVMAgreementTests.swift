import HVCore
import HVKVM
import Testing
import TestSupport

@Suite("Agreement and isolation on KVM", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct KVMAgreementTests {
    /// The writable areas above the code region, as guest fill ranges.
    static func writableRanges(_ space: EPTAddrSpace) -> [(UInt64, UInt64)] {
        space.areas.filter { $0.start >= 1 << 20 && $0.end <= 1 << 32 && $0.flags.contains(.write) }.map { ($0.start, $0.end) }
    }

    /// I6: random map/unmap/protect between guest runs; after every change
    /// the slots equal their derivation, and after every run each word the
    /// guest wrote is where translate says.
    @Test func randomChangesBetweenRunsNeverDiverge() throws {
        let f = try KVMFixture()
        var rng = SplitMix64(seed: 0x6B76_6D01)
        var operations = 0, succeeded = 0, runs = 0, checkedPages = 0, divergences = 0
        let code = TestGuests.fillAndVerify(table: 0x2000)
        try f.runner.load(code, at: 0x1000)
        while operations < 1000 {
            for _ in 0..<25 {
                let gpa = (16 << 20) + rng.below(120) * 0x20_0000 + (rng.below(4) == 0 ? rng.below(512) * 4096 : 0)
                let size = [4096, 8192, 0x10_0000, 0x20_0000, 0x40_0000][Int(rng.below(5))]
                // Refusals (overlaps) are part of the mix; only what succeeded counts as work.
                let done: Void? = switch rng.below(10) {
                case 0..<4:
                    try? f.space.mapAlloc(GuestPhysAddr(gpa), size: UInt64(size), flags: .readWrite, populate: rng.below(2) == 0 ? .eager : .lazy)
                case 4..<7: try? f.space.unmap(GuestPhysAddr(gpa), size: UInt64(size))
                default: try? f.space.protect(GuestPhysAddr(gpa), size: UInt64(size), flags: rng.below(2) == 0 ? [.read] : .readWrite)
                }
                operations += 1
                if done != nil { succeeded += 1 }
                try f.runner.syncSlots()
                divergences += f.runner.slots.divergence().count
            }
            // At most 64 ranges fit the table; the guest visits one word per page.
            let ranges = Array(Self.writableRanges(f.space).prefix(64))
            try f.table(ranges)
            try f.runner.startFlatProtectedMode(entry: 0x1000)
            let outcome = try f.runner.run()
            #expect(outcome == .exited(status: 0), "run \(runs): \(outcome)")
            runs += 1
            for (lo, hi) in ranges {
                for page in stride(from: lo, to: hi, by: 4096) {
                    checkedPages += 1
                    if (try? f.space.read(UInt32.self, at: GuestPhysAddr(page))) != TestGuests.pattern(page) { divergences += 1 }
                }
            }
            divergences += f.runner.slots.divergence().count
        }
        #expect(divergences == 0)
        #expect(f.space.invariantViolations().isEmpty)
        // Zero divergences means something only if the test did the work.
        #expect(succeeded >= 500, "only \(succeeded) of \(operations) changes succeeded")
        #expect(runs >= 40 && checkedPages >= 20_000, "\(runs) runs checked \(checkedPages) pages")
        #expect(f.runner.slots.operations >= 200, "\(f.runner.slots.operations) slot operations")
        print("KVM agreement: \(operations) operations (\(succeeded) succeeded), \(runs) guest runs, \(checkedPages) pages checked, \(f.runner.slots.operations) slot operations, divergences: \(divergences)")
        KVMAvailability.ran("randomChangesBetweenRunsNeverDiverge")
    }

    /// Two VMs from one pool: each sees only its own writes; a hostile guest
    /// probing every unmapped 2 MiB-aligned GPA below 4 GiB is stopped each
    /// time; host memory outside the VMs' frames is unchanged.
    @Test func twoVMsAreIsolated() throws {
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: 128 << 20)
        let tracker = TrackingAllocator(pool)
        func makeVM() throws -> (EPTAddrSpace, GuestRunner) {
            let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: tracker)
            try space.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
            try space.mapAlloc(GuestPhysAddr(8 << 20), size: 2 << 20, flags: .readWrite, populate: .eager)
            return (space, try GuestRunner(space: space, system: system))
        }
        let (spaceA, runnerA) = try makeVM()
        let (spaceB, runnerB) = try makeVM()
        // Checksum every pool frame neither VM owns.
        func outsideChecksum() -> UInt64 {
            let owned = tracker.liveFrameSet
            var sum: UInt64 = 0
            for frame in 0..<pool.capacityFrames {
                let hpa = pool.physicalBase.raw + UInt64(frame) * 4096
                guard !owned.contains(hpa), let p = pool.hostVirtual(HostPhysAddr(hpa)) else { continue }
                let words = p.assumingMemoryBound(to: UInt64.self)
                for i in stride(from: 0, to: 512, by: 61) { sum = sum &* 31 &+ words[i] }
            }
            return sum
        }
        let before = outsideChecksum()
        for (runner, space) in [(runnerA, spaceA), (runnerB, spaceB)] {
            _ = space
            try runner.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
            try runner.load([UInt32(8 << 20), UInt32(10 << 20), 0, 0].withUnsafeBytes(Array.init), at: 0x2000)
            try runner.startFlatProtectedMode(entry: 0x1000)
            #expect(try runner.run() == .exited(status: 0))
        }
        // B overwrites its region with its own marks; A's pattern is untouched.
        try spaceB.write(UInt32(0xB0B0_B0B0), at: GuestPhysAddr(8 << 20))
        #expect(try spaceA.read(UInt32.self, at: GuestPhysAddr(8 << 20)) == TestGuests.pattern(8 << 20))
        #expect(spaceA.translate(GuestPhysAddr(8 << 20))?.hostAddress != spaceB.translate(GuestPhysAddr(8 << 20))?.hostAddress)
        // The hostile guest: one probe per unmapped 2 MiB-aligned GPA.
        var stopped = 0, probes = 0
        for gpa in stride(from: UInt64(0), to: 1 << 32, by: 0x20_0000) where spaceA.area(containing: GuestPhysAddr(gpa)) == nil {
            probes += 1
            try runnerA.load(TestGuests.probe(UInt32(gpa), write: probes % 2 == 0), at: 0x1000)
            try runnerA.startFlatProtectedMode(entry: 0x1000)
            let outcome = try runnerA.run()
            if case let .violation(v) = outcome, v.gpa == gpa { stopped += 1 } else if probes < 4 { print("probe \(hex(gpa)): \(outcome)") }
        }
        #expect(probes == 2048 - 2 && stopped == probes)
        #expect(outsideChecksum() == before, "host memory outside the VMs' frames is unchanged")
        print("KVM isolation: \(probes) hostile probes, \(stopped) stopped")
        KVMAvailability.ran("twoVMsAreIsolated")
    }
}
