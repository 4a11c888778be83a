import Foundation
import HVCore
import HVKVM
import Testing

/// Frames an unmap releases are not handed out again while a guest can
/// still reach them (issue 18, deferred release): VM A's guest keeps
/// reading a page while the host unmaps it; VM B, on the same frame pool,
/// faults until the pool is empty. B never gets A's frame before A's slots
/// are synced; after the sync A's reads of the page are violations and the
/// frame is free again.
@Suite("Deferred frame release on KVM", .enabled(if: KVMAvailability.available, "KVM is unavailable"))
struct DeferredReleaseTests {
    static let page: UInt64 = 2 << 20          // A's page
    static let lazyStart: UInt64 = 16 << 20    // B's lazy memory, far larger than the pool

    /// A guest that reads `page` forever (32-bit flat mode).
    static func reader() -> [UInt8] {
        var c = GuestCode()
        c.label("loop")
        c.emit(0x8B, 0x05); c.emit32(UInt32(page))   // mov eax, [page]
        c.jump(0xEB, to: "loop")                     // jmp loop
        return c.assembled()
    }

    struct Outcome {
        let bReceivedAsFrame: Bool
        let quarantinedBeforeSync: Int
        let aAfterSync: RunOutcome?
        let freeAfterSync: Int
        let reusedAfterSync: HostPhysAddr?
    }

    /// Runs the scenario with A's release deferred (the shipped behaviour) or not.
    static func scenario(deferred: Bool) throws -> Outcome {
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: 8 << 20)
        let spaceA = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try spaceA.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
        try spaceA.mapAlloc(GuestPhysAddr(page), size: 4096, flags: .readWrite, populate: .eager)
        let a = try GuestRunner(space: spaceA, system: system)
        spaceA.defersFrameRelease = deferred
        let frame = HostPhysAddr(spaceA.translate(GuestPhysAddr(page))!.hostAddress.raw)
        try a.load(reader(), at: 0x1000)
        try a.startFlatProtectedMode(entry: 0x1000)

        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var aOutcome: RunOutcome?
        // A's vCPU runs on its own thread; the runner is touched only there until `done`.
        nonisolated(unsafe) let runnerA = a
        let thread = Thread {
            aOutcome = try? runnerA.run(timeLimit: .seconds(30))
            done.signal()
        }
        thread.start()
        Thread.sleep(forTimeInterval: 0.2)   // A's guest is reading the page

        try spaceA.unmap(GuestPhysAddr(page), size: 4096)   // the host unmaps it; A's slot still reaches it
        let quarantined = spaceA.quarantinedFrameCount

        // B takes every frame it can get.
        let spaceB = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try spaceB.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
        try spaceB.mapAlloc(GuestPhysAddr(lazyStart), size: 64 << 20, flags: .readWrite, populate: .lazy)
        let b = try GuestRunner(space: spaceB, system: system)
        var table: [UInt8] = []
        for v in [UInt32(lazyStart), UInt32(lazyStart + (64 << 20)), 0, 0] { table += withUnsafeBytes(of: v.littleEndian, Array.init) }
        try b.load(table, at: 0x2000)
        try b.load(TestGuests.fillAndVerify(table: 0x2000), at: 0x1000)
        try b.startFlatProtectedMode(entry: 0x1000)
        let bOutcome = try b.run()
        guard case .violation = bOutcome else { throw DeferredReleaseError.unexpected("B ended with \(bOutcome), not out of memory") }
        // As a data frame or as one of B's page tables: either way A's guest would read B's memory.
        let received = spaceB.leaves.contains { $0.hpa <= frame && frame.raw < $0.hpa.raw + $0.pageSize.bytes }
            || spaceB.tableFrameSet.contains(frame.raw)
        #expect(pool.freeFrameCount == 0, "B took every free frame")

        // A's slots follow the unmap: the frame leaves A's reach, then the pool takes it back.
        try a.slots.sync()
        let free = pool.freeFrameCount
        let reused = (0..<free).compactMap { _ in try? pool.allocateFrame() }.contains(frame) ? frame : nil
        if done.wait(timeout: .now() + 30) == .timedOut { throw DeferredReleaseError.unexpected("A's run did not end") }
        return Outcome(bReceivedAsFrame: received, quarantinedBeforeSync: quarantined, aAfterSync: aOutcome, freeAfterSync: free, reusedAfterSync: reused)
    }

    enum DeferredReleaseError: Error { case unexpected(String) }

    @Test func aFrameAGuestCanStillReachIsNeverHandedOut() throws {
        let shipped = try Self.scenario(deferred: true)
        #expect(!shipped.bReceivedAsFrame, "B was handed the frame A's guest was still reading")
        #expect(shipped.quarantinedBeforeSync == 2, "the unmapped page's frame and its emptied page table wait for the sync")
        guard case let .violation(v) = shipped.aAfterSync else {
            Issue.record("A's read after the sync was \(String(describing: shipped.aAfterSync)), not a violation")
            return
        }
        #expect(v.gpa == Self.page && !v.isWrite)
        #expect(shipped.freeAfterSync == 2, "after the sync both are free again")
        #expect(shipped.reusedAfterSync != nil, "and the page's frame can be handed out")

        // The hazard the quarantine closes: released at once, the frame goes
        // to B while A's guest can still read it.
        let immediate = try Self.scenario(deferred: false)
        #expect(immediate.bReceivedAsFrame, "without deferral B gets A's frame (the test would not see the bug otherwise)")
        KVMAvailability.ran("aFrameAGuestCanStillReachIsNeverHandedOut")
    }

    /// After the sync releases them, the host drops the freed frames
    /// (MADV_DONTNEED): they read zero and are handed out without zeroing.
    @Test func syncedFramesAreScrubbedByTheHost() throws {
        let system = try KVMSystem()
        let pool = try HostMemoryPool.make(capacity: 8 << 20)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        try space.mapAlloc(GuestPhysAddr(0), size: 1 << 20, flags: .rwx, populate: .eager)
        try space.mapAlloc(GuestPhysAddr(Self.page), size: 16 * 4096, flags: .readWrite, populate: .eager)
        let runner = try GuestRunner(space: space, system: system)
        let frames = (0..<16).map { HostPhysAddr(space.translate(GuestPhysAddr(Self.page + UInt64($0) * 4096))!.hostAddress.raw) }
        for i in 0..<16 { try space.write(UInt64(0xDEAD_0000 + i), at: GuestPhysAddr(Self.page + UInt64(i) * 4096)) }
        try space.unmap(GuestPhysAddr(Self.page), size: 16 * 4096)
        try runner.syncSlots()
        // (A frame counts as possibly holding data from its free on; in use it still counts clean.)
        #expect(pool.knownZeroFrameCount == pool.capacityFrames, "no freed frame is left holding data")
        for f in frames {
            #expect(pool.hostVirtual(f)!.load(as: UInt64.self) == 0, "frame \(f) reads zero after the host dropped it")
        }
        KVMAvailability.ran("syncedFramesAreScrubbedByTheHost")
    }
}
