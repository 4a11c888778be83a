import HVCore
import Testing

/// The per-space reserve of frames for faults (FrameReserve.swift): one
/// allocator call for many faults, exact accounting, and nothing held back
/// from the space itself when memory runs short.
@Suite("Address space: frame reserve")
struct FrameReserveTests {
    /// 1,000 faults take a few dozen allocator calls, not 1,000; at every
    /// step the allocator's live frames are tables + mapped frames + the
    /// reserve, the reserve is never more than one refill, and every page
    /// a fault gives reads zero.
    @Test func faultsTakeFramesInBatchesAndAccountForEveryOne() throws {
        let f = SpaceFixture()
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 4096 * kib4, flags: .readWrite, populate: .lazy)
            let calls = f.tracker.allocationCount
            for page in 0..<1000 {
                let gpa = GuestPhysAddr(gib + UInt64(page) * kib4)
                guard case let .handled(t) = space.handlePageFault(gpa, access: .write) else { Issue.record("fault \(page) not handled"); return }
                let bytes = UnsafeRawBufferPointer(start: f.tracker.hostVirtual(t.hostAddress), count: 4096)
                #expect(bytes.allSatisfy { $0 == 0 }, "page \(page) is not zero")
                if page % 97 == 0 {
                    #expect(f.tracker.liveFrames == space.tableFrameCount + space.ownedFrameCount + space.reservedFrames.count)
                    #expect(space.reservedFrames.count < EPTAddrSpace.maxReserveBatch)
                    #expect(space.invariantViolations() == [])
                }
            }
            let used = f.tracker.allocationCount - calls
            // Refills of 1, 2, 4, ..., 64 frames, then 64 at a time, plus the page tables.
            #expect(used < 40, "1,000 faults made \(used) allocator calls")
            #expect(space.ownedFrameCount == 1000)
            // The reserve's frames are live, mapped nowhere, and not tables.
            let reserved = space.reservedFrames
            #expect(!reserved.isEmpty)
            for frame in reserved { #expect(f.tracker.isLive(HostPhysAddr(frame))) }
            #expect(Set(reserved).isDisjoint(with: space.leaves.map(\.hpa.raw)))
            #expect(Set(reserved).isDisjoint(with: space.tableFrameSet))
            // clear gives everything back but the root.
            space.clear()
            #expect(space.reservedFrames.isEmpty)
            #expect(f.tracker.liveFrames == EPTFormat.rootFrames)
        }
    }

    /// An operation of the space that runs short of frames while its own
    /// reserve holds some gives the reserve back and succeeds.
    @Test func theSpaceGetsItsOwnReserveBackWhenShort() throws {
        let f = SpaceFixture(frames: 200)
        try f.run(backing: .frames4K) { space in
            try space.mapAlloc(GuestPhysAddr(0), size: 64 * kib4, flags: .readWrite, populate: .lazy)
            for page in 0..<40 { _ = space.handlePageFault(GuestPhysAddr(UInt64(page) * kib4), access: .write) }
            let held = space.reservedFrames.count
            #expect(held > 0)
            // Exactly what is free plus the reserve, less the two tables the
            // new range needs (a level-1 directory and a level-0 table).
            let wanted = f.pool.freeFrameCount + held - 2
            try space.mapAlloc(GuestPhysAddr(gib), size: UInt64(wanted) * kib4, flags: .readWrite, populate: .eager)
            #expect(space.reservedFrames.isEmpty)
            #expect(f.pool.freeFrameCount == 0)
        }
    }

    /// An identity map over frames sitting in the space's own reserve succeeds.
    @Test func identityMapOverTheOwnReserve() throws {
        let f = SpaceFixture(frames: 512)
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 64 * kib4, flags: .readWrite, populate: .lazy)
            for page in 0..<8 { _ = space.handlePageFault(GuestPhysAddr(gib + UInt64(page) * kib4), access: .write) }
            let frame = try #require(space.reservedFrames.first)
            try space.mapIdentical(GuestPhysAddr(frame), size: kib4, flags: .readWrite)
            #expect(space.translate(GuestPhysAddr(frame))?.hostAddress == HostPhysAddr(frame))
            #expect(!space.reservedFrames.contains(frame))
        }
    }

    /// An injected allocation failure during a refill fails the fault, as
    /// without a reserve, and leaves the space as it was.
    @Test func anInjectedFailureDuringARefillFailsTheFault() throws {
        let f = SpaceFixture()
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 512 * kib4, flags: .readWrite, populate: .lazy)
            var page: UInt64 = 0
            // Fault until the reserve is empty, so the next fault refills.
            repeat {
                _ = space.handlePageFault(GuestPhysAddr(gib + page * kib4), access: .write)
                page += 1
            } while !space.reservedFrames.isEmpty || page < 3
            let before = f.snapshot(space)
            f.tracker.failAllocation(after: 1)
            let outcome = space.handlePageFault(GuestPhysAddr(gib + page * kib4), access: .write)
            f.tracker.failAllocation(after: nil)
            guard case .violation(.outOfFrames(_, .injectedFailure)) = outcome else { Issue.record("\(outcome)"); return }
            #expect(f.snapshot(space) == before)
        }
    }

    /// `releaseReservedFrames` empties the reserve and the next fault starts a new one.
    @Test func releaseReservedFramesGivesThemBack() throws {
        let f = SpaceFixture()
        try f.run { space in
            try space.mapAlloc(GuestPhysAddr(gib), size: 512 * kib4, flags: .readWrite, populate: .lazy)
            for page in 0..<20 { _ = space.handlePageFault(GuestPhysAddr(gib + UInt64(page) * kib4), access: .write) }
            let free = f.pool.freeFrameCount, held = space.reservedFrames.count
            #expect(held > 0)
            space.releaseReservedFrames()
            #expect(space.reservedFrames.isEmpty)
            #expect(f.pool.freeFrameCount == free + held)
            guard case .handled = space.handlePageFault(GuestPhysAddr(gib + 100 * kib4), access: .write) else { Issue.record("fault after release"); return }
        }
    }
}
