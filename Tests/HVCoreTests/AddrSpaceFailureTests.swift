import HVCore
import Testing
import TestSupport

/// For every k, failing the k-th frame allocation during an operation leaves
/// translations, areas and live frames exactly as before. Each loop ends
/// when the operation succeeds, so every allocation point was tried.
@Suite("Address space: all-or-nothing under allocation failure")
struct AddrSpaceFailureTests {
    static func populated(_ space: EPTAddrSpace) throws {
        try space.mapLinear(GuestPhysAddr(gib), to: HostPhysAddr(gib), size: gib, flags: .rwx)
        try space.mapAlloc(GuestPhysAddr(4 * mib2), size: 2 * mib2, flags: .readWrite, populate: .eager)
        try space.mapAlloc(GuestPhysAddr(64 * gib), size: 8 * kib4, flags: .readWrite, populate: .lazy)
    }

    static func attempt(_ op: (EPTAddrSpace) throws(AddrSpaceError) -> Void, _ space: EPTAddrSpace) -> AddrSpaceError? {
        do { try op(space); return nil } catch { return error }
    }

    static func isInjected(_ error: AddrSpaceError) -> Bool {
        switch error {
        case .outOfFrames(.injectedFailure), .pageTable(.outOfFrames(.injectedFailure)), .identityUnavailable(_, .injectedFailure): true
        default: false
        }
    }

    /// Returns how many allocation points failed before the operation succeeded.
    static func everyFailurePoint(_ name: String, backing: BackingPolicy = .huge2MWhenPossible,
                                  _ op: (EPTAddrSpace) throws(AddrSpaceError) -> Void) throws -> Int {
        var k = 1
        while k <= 200 {
            let f = SpaceFixture()
            var succeeded = false
            try f.run(backing: backing) { space in
                try populated(space)
                _ = space.takePendingInvalidations()
                let before = f.snapshot(space)
                f.tracker.failAllocation(after: k)
                if let error = attempt(op, space) {
                    #expect(isInjected(error), "\(name): unexpected error \(error)")
                    #expect(f.snapshot(space) == before, "\(name): state changed after failing allocation \(k)")
                    #expect(space.pendingInvalidations.isEmpty, "\(name): invalidation recorded by a failed operation")
                } else {
                    succeeded = true
                }
                f.tracker.failAllocation(after: nil)
            }
            if succeeded { return k - 1 }
            k += 1
        }
        Issue.record("\(name) never succeeded")
        return k
    }

    @Test func mapAllocEagerWith4KFrames() throws {
        let n = try Self.everyFailurePoint("mapAlloc 4K", backing: .frames4K) { s throws(AddrSpaceError) in
            try s.mapAlloc(GuestPhysAddr(512 * gib - 3 * kib4), size: 6 * kib4, flags: .readWrite, populate: .eager)
        }
        #expect(n >= 6 + 4, "six frames and the tables on both sides of a 512 GiB boundary")
    }

    @Test func mapAllocEagerWithHugeFrames() throws {
        let n = try Self.everyFailurePoint("mapAlloc huge") { s throws(AddrSpaceError) in
            try s.mapAlloc(GuestPhysAddr(2 * gib + mib2 - kib4), size: 2 * mib2 + 2 * kib4, flags: .readWrite, populate: .eager)
        }
        #expect(n >= 4)
    }

    @Test func mapIdentical() throws {
        let n = try Self.everyFailurePoint("mapIdentical") { s throws(AddrSpaceError) in
            try s.mapIdentical(GuestPhysAddr(SpaceFixture.poolBase + 4 * mib2), size: 4 * kib4, flags: .readWrite)
        }
        #expect(n >= 3, "the frames, then the PD and PT")
    }

    @Test func unmapWithSplit() throws {
        let n = try Self.everyFailurePoint("unmap") { s throws(AddrSpaceError) in
            try s.unmap(GuestPhysAddr(gib + mib2 + kib4), size: mib2)
        }
        #expect(n == 3)
    }

    @Test func unmapOfHugeBackingFrame() throws {
        let n = try Self.everyFailurePoint("unmap huge backing") { s throws(AddrSpaceError) in
            try s.unmap(GuestPhysAddr(4 * mib2 + kib4), size: kib4)
        }
        #expect(n == 1)
    }

    @Test func protectWithSplit() throws {
        let n = try Self.everyFailurePoint("protect") { s throws(AddrSpaceError) in
            try s.protect(GuestPhysAddr(gib + 3 * kib4), size: 2 * gib, flags: [.read])
        }
        #expect(n == 2)
    }
}
