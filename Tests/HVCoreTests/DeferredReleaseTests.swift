import HVCore
import Testing

/// Deferred release (issue 18): frames an unmap or clear releases wait in
/// the space's quarantine until the invalidation token is completed.
@Suite("Deferred frame release")
struct DeferredReleaseCoreTests {
    static let base: UInt64 = 0x1_0000_0000

    static func space(_ frames: Int = 2048) throws -> (HeapFramePool, EPTAddrSpace) {
        let pool = HeapFramePool(capacity: UInt64(frames) * 4096, physicalBase: HostPhysAddr(base))
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 32), allocator: pool)
        space.defersFrameRelease = true
        return (pool, space)
    }

    @Test func unmappedFramesWaitForTheToken() throws {
        let (pool, space) = try Self.space()
        try space.mapAlloc(GuestPhysAddr(0x20_0000), size: 16 * 4096, flags: .readWrite, populate: .eager)
        let before = pool.freeFrameCount
        try space.unmap(GuestPhysAddr(0x20_0000), size: 16 * 4096)
        // 16 data frames and the emptied level-0 table, directory and PDPT.
        let quarantined = space.quarantinedFrameCount
        #expect(quarantined == 19)
        #expect(pool.freeFrameCount == before, "nothing went back to the pool")
        let token = space.takeInvalidation()
        #expect(token.frameCount == quarantined)
        #expect(token.invalidations.map(\.reason) == [.unmap])
        #expect(space.quarantinedFrameCount == 0, "the token holds them now")
        token.complete()
        #expect(pool.freeFrameCount == before + quarantined)
    }

    @Test func aDroppedTokenGivesItsFramesBack() throws {
        let (pool, space) = try Self.space()
        try space.mapAlloc(GuestPhysAddr(0), size: 4 * 4096, flags: .readWrite, populate: .eager)
        try space.unmap(GuestPhysAddr(0), size: 4096)
        let free = pool.freeFrameCount
        do {
            let token = space.takeInvalidation()
            #expect(token.frameCount == 1)
            _ = consume token   // dropped without complete(): the invalidation was not carried out
        }
        #expect(space.quarantinedFrameCount == 1, "back in the quarantine, not in the pool")
        #expect(pool.freeFrameCount == free)
        #expect(space.pendingInvalidations.count == 1, "and its invalidation is still pending")
        try space.unmap(GuestPhysAddr(4096), size: 4096)
        let next = space.takeInvalidation()
        #expect(next.frameCount == 2 && next.invalidations.count == 2, "the next token carries both")
        next.complete()
        #expect(pool.freeFrameCount == free + 2)
    }

    @Test func clearIsDeferredToo() throws {
        let (pool, space) = try Self.space(64)
        let initial = pool.freeFrameCount
        try space.mapAlloc(GuestPhysAddr(0), size: 8 * 4096, flags: .readWrite, populate: .eager)
        // A map that cannot get its frames rolls back; what it held waits too.
        let beforeFailure = pool.freeFrameCount
        #expect(throws: AddrSpaceError.self) { try space.mapAlloc(GuestPhysAddr(1 << 30), size: 128 * 4096, flags: .readWrite, populate: .eager) }
        // (It fails before mapping anything here; rolled-back frames, had
        // there been any, would wait in the quarantine like the rest.)
        #expect(pool.freeFrameCount + space.quarantinedFrameCount == beforeFailure, "nothing lost")
        let beforeClear = pool.freeFrameCount
        space.clear()
        #expect(pool.freeFrameCount == beforeClear, "clear released nothing to the pool yet")
        let token = space.takeInvalidation()
        #expect(token.invalidations.contains { $0.range.size == 1 << 32 }, "clear invalidates the whole range")
        token.complete()
        #expect(pool.freeFrameCount == initial, "every frame but the root is back (the root was never free)")
    }

    @Test func immediateReleaseIsUnchanged() throws {
        let (pool, space) = try Self.space()
        space.defersFrameRelease = false
        try space.mapAlloc(GuestPhysAddr(0), size: 4 * 4096, flags: .readWrite, populate: .eager)
        let free = pool.freeFrameCount
        try space.unmap(GuestPhysAddr(0), size: 4 * 4096)
        #expect(space.quarantinedFrameCount == 0)
        #expect(pool.freeFrameCount > free)
    }
}
