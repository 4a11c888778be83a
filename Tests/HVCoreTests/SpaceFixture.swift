import Dispatch
import Foundation
import Synchronization
import HVCore
import Testing
import TestSupport

let gib: UInt64 = 0x4000_0000
let mib2: UInt64 = 0x20_0000
let kib4: UInt64 = 0x1000

/// An address space over a tracking allocator whose pool sits at host
/// 4 GiB. `run` checks invariants when the body ends and that dropping the
/// space brings the allocator back to where it started.
struct SpaceFixture {
    static let poolBase: UInt64 = 0x1_0000_0000
    let tracker: TrackingAllocator
    let pool: HeapFramePool

    init(frames: Int = 8192) {
        pool = HeapFramePool(capacity: UInt64(frames) * frameSize, physicalBase: HostPhysAddr(Self.poolBase))
        tracker = TrackingAllocator(pool)
    }

    func run(backing: BackingPolicy = .huge2MWhenPossible, managed: UInt64 = 1 << 40,
             sourceLocation: SourceLocation = #_sourceLocation, _ body: (EPTAddrSpace) throws -> Void) throws {
        let start = tracker.liveFrames
        do {
            let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: managed), allocator: tracker, backing: backing)
            try body(space)
            #expect(space.invariantViolations() == [], sourceLocation: sourceLocation)
            #expect(tracker.liveFrames == space.tableFrameCount + space.ownedFrameCount + space.reservedFrames.count,
                    "live frames are tables, owned frames and the reserve", sourceLocation: sourceLocation)
        }
        #expect(tracker.liveFrames == start, "allocator back to its starting count", sourceLocation: sourceLocation)
    }

    /// Everything an operation must leave alone when it fails.
    struct Snapshot: Equatable {
        let leaves: [Leaf]
        let areas: [Area]
        let live: Int
    }

    func snapshot(_ space: EPTAddrSpace) -> Snapshot {
        Snapshot(leaves: space.leaves, areas: space.areas, live: tracker.liveFrames)
    }
}

/// A count several threads add to.
final class Counter: @unchecked Sendable {
    private let lock = DispatchSemaphore(value: 1)
    private var count = 0
    func add() { lock.wait(); count += 1; lock.signal() }
    var value: Int { lock.wait(); defer { lock.signal() }; return count }
}
