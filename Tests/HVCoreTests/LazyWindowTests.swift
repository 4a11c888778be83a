import HVCore
import Testing

/// Lazy windows (issue 18): a lazy area reserves one run of frames when it
/// is mapped, and each page's fill, at a fault or recorded afterwards, is
/// that page's frame of the run.
@Suite("Lazy windows")
struct LazyWindowTests {
    static let base: UInt64 = 0x1_0000_0000
    static let lazy = GuestPhysAddr(0x40_0000)

    static func space(_ frames: Int = 4096) throws -> (HeapFramePool, TrackingAllocator, EPTAddrSpace) {
        let pool = HeapFramePool(capacity: UInt64(frames) * 4096, physicalBase: HostPhysAddr(base))
        let tracker = TrackingAllocator(pool)
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: tracker)
        space.reservesLazyWindows = true
        return (pool, tracker, space)
    }

    @Test func aFaultFillsThePageWithItsOwnFrameOfTheWindow() throws {
        let (_, tracker, space) = try Self.space()
        let live = tracker.liveFrames
        try space.mapAlloc(Self.lazy, size: 0x40_0000, flags: .readWrite, populate: .lazy)
        let area = try #require(space.area(containing: Self.lazy))
        let window = try #require(area.window, "a 4 MiB lazy area in an empty pool gets a window")
        #expect(window % 0x20_0000 == 0, "aligned like the guest range")
        #expect(tracker.liveFrames == live + 1024, "the whole run is allocated up front")
        #expect(space.translate(Self.lazy) == nil, "and nothing is present yet")
        let before = tracker.liveFrames, tablesBefore = space.tableFrameCount
        let page = GuestPhysAddr(Self.lazy.raw + 0x12_3000)
        guard case let .handled(t) = space.handlePageFault(GuestPhysAddr(page.raw + 8), access: .write) else {
            Issue.record("the fault was not handled"); return
        }
        #expect(t.hostAddress.raw == window + 0x12_3000 + 8)
        #expect(tracker.liveFrames - before == space.tableFrameCount - tablesBefore, "only page tables were allocated, no data frame")
        guard case .violation(.alreadyPresent) = space.handlePageFault(page, access: .read) else {
            Issue.record("a second fault must find the page present"); return
        }
        #expect(space.invariantViolations().isEmpty)
    }

    @Test func recordedFillsAreTheFramesTheHostReports() throws {
        let (_, _, space) = try Self.space()
        try space.mapAlloc(Self.lazy, size: 64 * 4096, flags: .readWrite, populate: .lazy)
        let window = try #require(space.area(containing: Self.lazy)?.window)
        // The guest wrote page 3 through the window, as it would through a memslot.
        try #require(space.allocator.hostVirtual(HostPhysAddr(window + 3 * 4096))).storeBytes(of: 0xABCD as UInt64, as: UInt64.self)
        let outside: UInt64 = 0x2_0000_0000   // no window's frame: ignored
        #expect(space.recordWindowFills([window + 3 * 4096, window + 5 * 4096 + 0x10, outside]) == 2)
        #expect(space.translate(GuestPhysAddr(Self.lazy.raw + 3 * 4096))?.hostAddress.raw == window + 3 * 4096)
        #expect(try space.read(UInt64.self, at: GuestPhysAddr(Self.lazy.raw + 3 * 4096)) == 0xABCD, "what the guest wrote is kept, not zeroed")
        #expect(space.translate(GuestPhysAddr(Self.lazy.raw + 5 * 4096)) != nil)
        #expect(space.recordWindowFills([window + 3 * 4096]) == 0, "a present page is recorded once")
        #expect(space.lazyFillCount == 2)
        #expect(space.invariantViolations().isEmpty)
    }

    @Test func theWindowIsZeroedWhenReservedFromUsedFrames() throws {
        let (pool, _, space) = try Self.space(64)
        // Fill every frame with data and give them back: the pool knows they are dirty.
        let run = try pool.allocateContiguous(count: 48, alignment: 4096)
        pool.hostVirtual(run)!.initializeMemory(as: UInt8.self, repeating: 0xEE, count: 48 * 4096)
        pool.free(run, count: 48)
        try space.mapAlloc(Self.lazy, size: 16 * 4096, flags: .readWrite, populate: .lazy)
        let window = try #require(space.area(containing: Self.lazy)?.window)
        for page in 0..<16 {
            let p = pool.hostVirtual(HostPhysAddr(window + UInt64(page) * 4096))!
            #expect(UnsafeRawBufferPointer(start: p, count: 4096).allSatisfy { $0 == 0 }, "window page \(page) is zero before any guest sees it")
        }
    }

    @Test func unmapReturnsTheWholeWindowFilledOrNot() throws {
        let (_, tracker, space) = try Self.space()
        let live = tracker.liveFrames
        try space.mapAlloc(Self.lazy, size: 32 * 4096, flags: .readWrite, populate: .lazy)
        let window = try #require(space.area(containing: Self.lazy)?.window)
        for page in [0, 7, 31] { _ = space.handlePageFault(GuestPhysAddr(Self.lazy.raw + UInt64(page) * 4096), access: .read) }
        // Cut out the middle: the two ends keep their part of the run.
        try space.unmap(GuestPhysAddr(Self.lazy.raw + 4 * 4096), size: 8 * 4096)
        #expect(space.areas.compactMap(\.window) == [window, window + 12 * 4096])
        #expect(space.translate(GuestPhysAddr(Self.lazy.raw + 7 * 4096)) == nil)
        #expect(!tracker.isLive(HostPhysAddr(window + 4 * 4096)) && !tracker.isLive(HostPhysAddr(window + 11 * 4096)))
        #expect(tracker.isLive(HostPhysAddr(window + 3 * 4096)) && tracker.isLive(HostPhysAddr(window + 12 * 4096)))
        #expect(space.invariantViolations().isEmpty)
        // A fault after the cut still finds its own frame.
        guard case let .handled(t) = space.handlePageFault(GuestPhysAddr(Self.lazy.raw + 20 * 4096), access: .read) else {
            Issue.record("not handled"); return
        }
        #expect(t.hostAddress.raw == window + 20 * 4096)
        // An unmap across the window's end and a hole, then everything.
        try space.unmap(GuestPhysAddr(Self.lazy.raw + 30 * 4096), size: 8 * 4096)
        try space.unmap(GuestPhysAddr(0), size: 1 << 30)
        #expect(tracker.liveFrames == live, "every frame of the window went back, with the tables")
        #expect(tracker.violations.isEmpty)
    }

    @Test func deferredReleaseHoldsTheWindowUntilTheToken() throws {
        let (pool, _, space) = try Self.space()
        space.defersFrameRelease = true
        try space.mapAlloc(Self.lazy, size: 16 * 4096, flags: .readWrite, populate: .lazy)
        _ = space.handlePageFault(Self.lazy, access: .write)
        let free = pool.freeFrameCount
        try space.unmap(Self.lazy, size: 16 * 4096)
        #expect(pool.freeFrameCount == free, "the window waits for the invalidation")
        #expect(space.quarantinedFrameCount >= 16)
        space.takeInvalidation().complete()
        #expect(pool.freeFrameCount > free + 15)
    }

    @Test func noRunNoWindowAndTheAreaStillWorks() throws {
        let (pool, _, space) = try Self.space(64)
        // Every other frame taken: no run of 16 contiguous frames is left.
        var held: [HostPhysAddr] = []
        while let f = try? pool.allocateFrame() { held.append(f) }
        for (i, f) in held.enumerated() where i % 2 == 0 { pool.free(f, count: 1) }
        try space.mapAlloc(Self.lazy, size: 16 * 4096, flags: .readWrite, populate: .lazy)
        #expect(space.area(containing: Self.lazy)?.window == nil, "no run: a frame per fault")
        guard case .handled = space.handlePageFault(Self.lazy, access: .write) else { Issue.record("not handled"); return }
        #expect(space.invariantViolations().isEmpty)
    }

    @Test func clearReturnsWindows() throws {
        let (_, tracker, space) = try Self.space()
        let live = tracker.liveFrames
        try space.mapAlloc(Self.lazy, size: 16 * 4096, flags: .readWrite, populate: .lazy)
        _ = space.handlePageFault(Self.lazy, access: .write)
        space.clear()
        #expect(tracker.liveFrames == live)
        #expect(tracker.violations.isEmpty)
    }
}
