// The concurrent core under sanitizers, in a release build (scripts/sanitize):
// no debug pause hook, so translate takes its real lock-free path.
//   racing-translate  a reader translates one page without the lock while a
//                     writer maps, protects and unmaps it and a twin that
//                     reuses its table frames; every answer must be one the
//                     table held
//   parallel-faults   four threads fault the same 512 lazy pages; each page
//                     is filled exactly once
//   two-spaces        two threads, each with its own space over one shared
//                     pool, map, fault, write, read and unmap; nothing leaks
// Exits 1 on a wrong answer; TSan and ASan add their own reports.
import Foundation
import HVCore

let gib: UInt64 = 0x4000_0000, kib4: UInt64 = 0x1000
final class Problems: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
let problems = Problems()
func problem(_ s: String) { problems.add(s) }

func makeSpace(_ pool: HeapFramePool) throws -> EPTAddrSpace {
    try EPTAddrSpace(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: pool)
}

func racingTranslate(rounds: Int) throws {
    let pool = HeapFramePool(capacity: 4096 * 4096)
    let space = try makeSpace(pool)
    let page = GuestPhysAddr(gib + 0x1234_5000), twin = GuestPhysAddr(3 * gib + 0x1234_5000)
    let hostA: UInt64 = 0x40_0000_0000, hostB: UInt64 = 0x80_0000_0000
    let finished = ManagedAtomicFlag()
    let started = DispatchSemaphore(value: 0), over = DispatchSemaphore(value: 0)
    Thread {
        started.wait()
        do {
            for round in 0..<rounds {
                try space.mapLinear(page, to: HostPhysAddr(hostA), size: kib4, flags: .readWrite)
                if round % 4 == 0 { try space.protect(page, size: kib4, flags: .read) }
                try space.unmap(page, size: kib4)
                try space.mapLinear(twin, to: HostPhysAddr(hostB), size: kib4, flags: .readWrite)
                try space.unmap(twin, size: kib4)
            }
        } catch { problem("racing-translate: the writer failed: \(error)") }
        finished.set()
        over.signal()
    }.start()
    started.signal()
    var seen = 0, reads = 0
    while !finished.isSet {
        for _ in 0..<1024 {
            reads += 1
            guard let t = space.translate(GuestPhysAddr(page.raw + 8)) else { continue }
            seen += 1
            if t.hostAddress.raw != hostA + 8 || t.pageSize != .size4K || (t.flags != .readWrite && t.flags != .read) {
                problem("racing-translate: an answer the table never held: \(t)")
            }
        }
    }
    over.wait()
    print("racing-translate: \(rounds) writer rounds, \(reads) lock-free reads, \(seen) saw the page")
}

func parallelFaults(pages: Int) throws {
    let pool = HeapFramePool(capacity: 4096 * 4096)
    let space = try makeSpace(pool)
    try space.mapAlloc(GuestPhysAddr(gib), size: UInt64(pages) * kib4, flags: .readWrite, populate: .lazy)
    let handled = ManagedCounter()
    DispatchQueue.concurrentPerform(iterations: 4) { thread in
        var rng = SplitMix64(seed: UInt64(thread))
        for page in (0..<pages).shuffled(using: &rng) {
            let gpa = GuestPhysAddr(gib + UInt64(page) * kib4 + rng.below(4096))
            if case .handled = space.handlePageFault(gpa, access: .write) { handled.add() }
            if space.translate(gpa) == nil { problem("parallel-faults: \(gpa) absent after its fault") }
        }
    }
    if handled.value != pages || space.ownedFrameCount != pages { problem("parallel-faults: \(handled.value) handled, \(space.ownedFrameCount) frames for \(pages) pages") }
    print("parallel-faults: 4 threads, \(pages) pages, each filled once")
}

func twoSpaces(rounds: Int) throws {
    let pool = HeapFramePool(capacity: 4096 * 4096)
    let free = pool.freeFrameCount
    DispatchQueue.concurrentPerform(iterations: 2) { thread in
        do {
            let space = try makeSpace(pool)
            let base = GuestPhysAddr(UInt64(thread + 1) * gib)
            for round in 0..<rounds {
                try space.mapAlloc(base, size: 16 * kib4, flags: .readWrite, populate: round % 2 == 0 ? .eager : .lazy)
                for i in 0..<16 {
                    let g = GuestPhysAddr(base.raw + UInt64(i) * kib4 + 8)
                    _ = space.handlePageFault(g, access: .write)
                    try space.write(UInt64(round << 8 | i), at: g)
                    if try space.read(UInt64.self, at: g) != UInt64(round << 8 | i) { problem("two-spaces: lost a write") }
                }
                try space.unmap(base, size: 16 * kib4)
            }
        } catch { problem("two-spaces: \(error)") }
    }
    if pool.freeFrameCount != free { problem("two-spaces: \(free - pool.freeFrameCount) frames leaked") }
    print("two-spaces: 2 threads x \(rounds) rounds over one pool, nothing leaked")
}

final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

#if DEBUG
print("sanitize-core: warning: a debug build; the lock-free translate runs with the debug pause hook's lock")
#endif
try racingTranslate(rounds: 20_000)
try parallelFaults(pages: 512)
try twoSpaces(rounds: 500)
if !problems.all.isEmpty {
    for p in problems.all.prefix(10) { print("sanitize-core: \(p)") }
    exit(1)
}
print("sanitize-core: all scenarios agree")
