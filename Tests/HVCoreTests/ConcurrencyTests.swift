import Dispatch
import Foundation
import Synchronization
import HVCore
import Testing
import TestSupport

// The core's concurrency tests, in one file so that scripts/sanitize can
// run exactly these in a release build under ThreadSanitizer (the
// sanitize-tests runner compiles this file and SpaceFixture.swift through
// symlinks in Sanitize/tests). Only what those two files define is used.

@Suite("Address space: threads")
struct ConcurrencyTests {
    @Test func concurrentFaultsFillEachPageOnce() throws {
        let f = SpaceFixture()
        try f.run { space in
            let pages = 512
            try space.mapAlloc(GuestPhysAddr(gib), size: UInt64(pages) * kib4, flags: .readWrite, populate: .lazy)
            let handled = Counter()
            DispatchQueue.concurrentPerform(iterations: 4) { thread in
                var rng = SplitMix64(seed: UInt64(thread))
                var order = Array(0..<pages)
                order.shuffle(using: &rng)
                for page in order {
                    let gpa = GuestPhysAddr(gib + UInt64(page) * kib4 + rng.below(4096))
                    if case .handled = space.handlePageFault(gpa, access: .write) { handled.add() }
                    #expect(space.translate(gpa) != nil)
                }
            }
            #expect(handled.value == pages)
            #expect(space.lazyFillCount == pages)
            #expect(space.ownedFrameCount == pages)
        }
    }

    /// Two threads, each with its own space over one shared pool, map
    /// (eager and lazy in turn), fault, write, read back and unmap, over
    /// and over: no write is lost and the pool gets every frame back.
    @Test func twoSpacesOverOnePoolLoseNothing() throws {
        let f = SpaceFixture(frames: 4096)
        let free = f.pool.freeFrameCount
        let lost = Counter(), failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            do {
                let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: f.tracker)
                let base = UInt64(thread + 1) * gib
                for round in 0..<300 {
                    try space.mapAlloc(GuestPhysAddr(base), size: 16 * kib4, flags: .readWrite, populate: round % 2 == 0 ? .eager : .lazy)
                    for i in 0..<16 {
                        let g = GuestPhysAddr(base + UInt64(i) * kib4 + 8)
                        _ = space.handlePageFault(g, access: .write)
                        let value = UInt64(round << 8 | i)
                        try space.write(value, at: g)
                        if try space.read(UInt64.self, at: g) != value { lost.add() }
                    }
                    try space.unmap(GuestPhysAddr(base), size: 16 * kib4)
                    if space.invariantViolations() != [] { failures.add() }
                }
            } catch { failures.add() }
        }
        #expect(lost.value == 0, "writes read back as something else")
        #expect(failures.value == 0, "an operation failed or an invariant broke")
        #expect(f.pool.freeFrameCount == free, "the pool got every frame back")
        #expect(f.tracker.liveFrames == 0 && f.tracker.violations.isEmpty)
    }
}

@Suite("Address space: lock-free translate")
struct LockFreeTranslateTests {
    #if DEBUG
    /// The same race made deterministic: half way through a lock-free walk
    /// (after the entry at `level` is read) the page is unmapped and a page
    /// at the same table slots of another 1 GiB region is mapped, reusing the
    /// freed table frames. The walk must notice and answer from the table as
    /// it is now (unmapped), never with the other page's host address.
    /// A 4 KiB page takes the two-load path through the level-0 table index
    /// (reported as level 1), a 2 MiB page the one through the level-1 index
    /// (reported as level 2), and a 1 GiB page is walked from the root.
    @Test(arguments: [(PageSize.size4K, 1), (.size4K, 0), (.size2M, 2), (.size2M, 1), (.size1G, 3), (.size1G, 2)])
    func aWalkThatRacedAWriterIsRetried(size: PageSize, level: Int) throws {
        let f = SpaceFixture()
        try f.run { space in
            let offset: UInt64 = size == .size1G ? 0 : 0x1220_0000
            let page = GuestPhysAddr(4 * gib + offset), twin = GuestPhysAddr(6 * gib + offset)
            try space.mapLinear(page, to: HostPhysAddr(0x40_0000_0000), size: size.bytes, flags: .readWrite)
            #expect(space.translate(page)?.pageSize == size)
            let armed = Mutex(true)
            let levels = Mutex<[Int]>([])
            space.setPauseInLockFreeWalk { [unowned space] at in
                levels.withLock { $0.append(at) }
                guard at == level, armed.withLock({ let a = $0; $0 = false; return a }) else { return }
                try! space.unmap(page, size: size.bytes)
                try! space.mapLinear(twin, to: HostPhysAddr(0x80_0000_0000), size: size.bytes, flags: .readWrite)
            }
            let answer = space.translate(page)
            space.setPauseInLockFreeWalk(nil)
            #expect(levels.withLock { $0.first } == [PageSize.size4K: 1, .size2M: 2, .size1G: 3][size], "the walk took the path this case is for")
            #expect(armed.withLock { !$0 }, "the writer ran inside the walk")
            #expect(answer == nil, "the page was unmapped before the walk ended; got \(String(describing: answer))")
            #expect(space.translate(twin)?.hostAddress.raw == 0x80_0000_0000)
            try space.unmap(twin, size: size.bytes)
        }
    }
    #endif

    /// The table indexes cover the managed range up to their 1 TiB cap, from
    /// a start that is not 2 MiB aligned; past the cap (where the level-1
    /// index may still cover the 1 GiB region the level-0 index stops in)
    /// the longer paths answer. Each page, 4 KiB or 2 MiB, translates to its
    /// own frame, and the invariant check (which compares every index slot
    /// with the tables) passes after every step.
    @Test func theIndexesCoverTheRangeUpToTheirCapAndTheWalkTheRest() throws {
        let f = SpaceFixture()
        let start: UInt64 = 0x7_0012_3000, size: UInt64 = (2 << 40) + 0x20_0000
        let cap = start + (1 << 40)   // 0x107_0012_3000, inside the 1 GiB region 0x107_0000_0000
        let space = try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(start), size: size), allocator: f.tracker)
        let mib2 = PageSize.size2M.bytes
        let pages: [(gpa: UInt64, size: UInt64)] = [
            (start, kib4), (start + 0x1_d000, kib4), (0x8_0000_0000, mib2),          // inside both indexes
            (cap & ~0xfff - kib4, kib4),                                            // the last indexed 2 MiB region
            (cap + 0x40_0000, kib4), (0x107_0060_0000, mib2),                       // past the level-0 index only
            (0x108_0020_0000, mib2), (start + size - kib4, kib4),                   // past both
        ]
        let host: (Int) -> UInt64 = { 0x40_0000_0000 + UInt64($0) * mib2 }
        for (i, page) in pages.enumerated() {
            try space.mapLinear(GuestPhysAddr(page.gpa), to: HostPhysAddr(host(i)), size: page.size, flags: .readWrite)
            #expect(space.translate(GuestPhysAddr(page.gpa))?.pageSize.bytes == page.size)
            #expect(space.invariantViolations() == [])
        }
        for (i, page) in pages.enumerated() {
            let t = space.translate(GuestPhysAddr(page.gpa + page.size - 8))
            #expect(t?.hostAddress.raw == host(i) + page.size - 8, "page \(i) at \(String(page.gpa, radix: 16))")
            let beside = page.gpa + page.size
            #expect(space.translate(GuestPhysAddr(beside)) == nil || pages.contains { $0.gpa == beside })
        }
        for page in pages {
            try space.unmap(GuestPhysAddr(page.gpa), size: page.size)
            #expect(space.invariantViolations() == [])
            #expect(space.translate(GuestPhysAddr(page.gpa)) == nil)
        }
    }

    /// A reader translates one page while a writer maps and unmaps it and a
    /// page of another 1 GiB region at the same table slots, over and over:
    /// the tables freed by one unmap are the frames the next map takes, so a
    /// walk that kept following a stale table would read the other page's
    /// entry and answer with its host address. Every answer must be one the
    /// table really held: unmapped, or this page's own host address with one
    /// of the flags it had.
    @Test func answersAreAlwaysOnesTheTableHeld() throws {
        let f = SpaceFixture()
        try f.run { space in
            let page = GuestPhysAddr(gib + 0x1234_5000), twin = GuestPhysAddr(3 * gib + 0x1234_5000)
            let hostA: UInt64 = 0x40_0000_0000, hostB: UInt64 = 0x80_0000_0000
            let rounds = 20_000
            let done = Counter(), failures = Counter()
            // Two real threads (not pool work items, which a busy pool may run
            // one after the other): the writer starts once the reader runs.
            let readerStarted = DispatchSemaphore(value: 0), writerDone = DispatchSemaphore(value: 0)
            // The closure holds the space unowned: a Thread may release its
            // closure after writerDone is signalled, and a strong reference
            // there kept the space (and its root frame) alive past the
            // fixture's leak check now and then.
            let writer = Thread { [unowned space] in
                readerStarted.wait()
                for round in 0..<rounds {
                    do {
                        try space.mapLinear(page, to: HostPhysAddr(hostA), size: kib4, flags: .readWrite)
                        if round % 4 == 0 { try space.protect(page, size: kib4, flags: .read) }
                        try space.unmap(page, size: kib4)
                        try space.mapLinear(twin, to: HostPhysAddr(hostB), size: kib4, flags: .readWrite)
                        try space.unmap(twin, size: kib4)
                    } catch { failures.add() }
                }
                done.add()
                writerDone.signal()
            }
            writer.start()
            var answers = 0
            var wrong: [Translation] = []
            readerStarted.signal()
            while done.value == 0 {
                for _ in 0..<4096 {
                    guard let t = space.translate(GuestPhysAddr(page.raw + 8)) else { continue }
                    answers += 1
                    if t.hostAddress.raw != hostA + 8 || t.pageSize != .size4K || (t.flags != .readWrite && t.flags != .read) {
                        wrong.append(t)
                    }
                }
            }
            writerDone.wait()
            #expect(failures.value == 0)
            #expect(wrong.isEmpty, "lock-free answers the table never held: \(wrong.prefix(3))")
            #expect(answers > 0, "the reader saw the page mapped at least once")
            #expect(space.translate(page) == nil && space.areas.isEmpty)
        }
    }
}
