import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs the implementation (address spaces over one tracking allocator)
/// and the model side by side, one operation at a time, and reports the
/// first place where they disagree or an invariant breaks.
public final class FormatLockstep<Format: PageTableFormat> {
    public let tracker: TrackingAllocator
    public private(set) var spaces: [AddrSpace<Format>]
    public private(set) var model: SpecState
    private var refinement = Refinement()
    private var armed = false
    public private(set) var steps = 0
    /// Lazy areas that got a window, and guest fills recorded in them: how
    /// much of the window path a campaign exercised.
    public private(set) var windowsReserved = 0, guestFillsRecorded = 0

    /// - Parameters:
    ///   - spaces: how many address spaces share the allocator (1-3).
    ///   - seededBug: a bug to switch on in every space (debug builds only).
    public init(spaces count: Int, seededBug: SeededBug? = nil) throws {
        // Zero-filled memory the pool is told about: frames handed out the
        // first time are not zeroed again, reused ones are, and every page
        // given to a guest is checked to read zero (expectZero).
        let bytes = CheckerSetup.poolFrames * 0x1000
        // SAFETY: a fresh anonymous mapping reads as zero and costs nothing
        // until touched (calloc under AddressSanitizer memsets a reused
        // block, which made every fuzz input pay 64 MiB of stores); the pool
        // owns it and unmaps it when it goes.
        let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        precondition(memory != MAP_FAILED, "mmap of the checker's \(bytes)-byte pool failed")
        let pool = HeapFramePool(memory: memory, capacity: UInt64(bytes), physicalBase: HostPhysAddr(CheckerSetup.poolBase), zeroFilled: true) {
            munmap($0, bytes)
        }
        tracker = TrackingAllocator(pool, onMisuse: .record)
        let env = CheckerSetup.environment(spaces: count)
        model = SpecState(environment: env)
        var made: [AddrSpace<Format>] = []
        for range in env.managed {
            #if DEBUG
            made.append(try AddrSpace<Format>(range: range, allocator: tracker, seededBug: seededBug))
            #else
            precondition(seededBug == nil, "seeded bugs exist only in debug builds")
            made.append(try AddrSpace<Format>(range: range, allocator: tracker))
            #endif
        }
        spaces = made
    }

    static func isInjected(_ e: AddrSpaceError) -> Bool {
        switch e {
        case .outOfFrames(.injectedFailure), .pageTable(.outOfFrames(.injectedFailure)), .identityUnavailable(_, .injectedFailure): true
        default: false
        }
    }

    /// Compares a state-changing operation's outcomes and advances the model.
    private func settle(_ expected: SpecResult, _ actual: Result<Void, AddrSpaceError>) -> String? {
        switch (expected, actual) {
        case let (.success(next), .success):
            model = next
            return nil
        case let (.failure(e), .failure(a)) where e == a:
            return nil
        case let (_, .failure(a)) where armed && Self.isInjected(a):
            return nil  // an injected failure: the model stays where it was
        case let (.success, .failure(a)):
            return "implementation refused: \(a); the model accepts"
        case let (.failure(e), .success):
            return "implementation accepted; the model says: \(e)"
        case let (.failure(e), .failure(a)):
            return "implementation says: \(a)\n  the model says: \(e)"
        }
    }

    private func compareValue<T: Equatable>(_ expected: Result<T, AddrSpaceError>, _ actual: Result<T, AddrSpaceError>) -> String? {
        if expected == actual { return nil }
        return "implementation gives \(actual), the model \(expected)"
    }

    /// Applies `op` to both sides. Returns nil when they agree and every
    /// invariant holds, else what went wrong.
    public func apply(_ op: SpecOp) -> String? {
        steps += 1
        var problem = run(op)
        if case .failAllocation = op {} else {
            tracker.failAllocation(after: nil)
            armed = false
        }
        if problem == nil { problem = probe(op) }
        if problem == nil { problem = checkAll() }
        return problem
    }

    private func run(_ op: SpecOp) -> String? {
        switch op {
        case let .failAllocation(k):
            tracker.failAllocation(after: k)
            armed = true
            return nil
        case let .mapLinear(s, g, h, size, flags):
            return settle(model.mapLinear(s, gpa: g, hpa: h, size: size, flags: flags),
                          Result { () throws(AddrSpaceError) in try spaces[s].mapLinear(GuestPhysAddr(g), to: HostPhysAddr(h), size: size, flags: flags) })
        case let .mapAlloc(s, g, size, flags, eager):
            let actual = Result { () throws(AddrSpaceError) in try spaces[s].mapAlloc(GuestPhysAddr(g), size: size, flags: flags, populate: eager ? .eager : .lazy) }
            if let p = settle(model.mapAlloc(s, gpa: g, size: size, flags: flags, eager: eager), actual) { return p }
            if case .success = actual, eager { return expectZero(s, g, size) }
            if case .success = actual {
                let windowed = spaces[s].area(containing: GuestPhysAddr(g))?.window != nil
                guard let next = model.learnWindow(s, at: g, windowed: windowed) else {
                    return "the lazy area at \(hex(g)) got a window, which the model does not allow here"
                }
                model = next
                if windowed { windowsReserved += 1 }
            }
            return nil
        case let .mapIdentical(s, g, size, flags):
            // Frames in this space's own reserve count as free: the space
            // gives its reserve back when it runs short.
            let live = tracker.liveFrameSet.subtracting(spaces[s].reservedFrames)
            let hostFree: (UInt64, Int) -> Bool = { start, count in
                (0..<count).allSatisfy { i in
                    let f = start + UInt64(i) * 0x1000
                    return f >= CheckerSetup.poolBase && f < CheckerSetup.poolEnd && !live.contains(f)
                }
            }
            let actual = Result { () throws(AddrSpaceError) in try spaces[s].mapIdentical(GuestPhysAddr(g), size: size, flags: flags) }
            if let p = settle(model.mapIdentical(s, gpa: g, size: size, flags: flags, hostFree: hostFree), actual) { return p }
            if case .success = actual { return expectZero(s, g, size) }
            return nil
        case let .mapReserved(s, g, size, flags):
            return settle(model.mapReserved(s, gpa: g, size: size, flags: flags),
                          Result { () throws(AddrSpaceError) in try spaces[s].mapReserved(GuestPhysAddr(g), size: size, flags: flags) })
        case let .unmap(s, g, size):
            let removes = model.unmapRemovesPresentPages(s, gpa: g, size: size)
            _ = spaces[s].takePendingInvalidations()
            let expected = model.unmap(s, gpa: g, size: size)
            let actual = Result { () throws(AddrSpaceError) in try spaces[s].unmap(GuestPhysAddr(g), size: size) }
            if let p = settle(expected, actual) { return p }
            if case .success = actual, removes {
                let wanted = Invalidation(range: try! GuestPhysRange(start: GuestPhysAddr(g), size: size), reason: .unmap)
                if !spaces[s].takePendingInvalidations().contains(where: { $0.covers(wanted) }) { return "unmap removed present pages but recorded no invalidation" }
            }
            return nil
        case let .protect(s, g, size, flags):
            return settle(model.protect(s, gpa: g, size: size, flags: flags),
                          Result { () throws(AddrSpaceError) in try spaces[s].protect(GuestPhysAddr(g), size: size, flags: flags) })
        case let .fault(s, g, access):
            let (next, expected) = model.fault(s, gpa: g, access: access)
            let outcome = spaces[s].handlePageFault(GuestPhysAddr(g), access: access)
            guard let actual = outcome.specFault else {
                return armed ? nil : "fault ran out of frames without an injected failure: \(outcome)"
            }
            if actual != expected { return "fault outcome \(outcome), the model says \(expected.rawValue)" }
            model = next
            if actual == .handled { return expectZero(s, g & ~0xFFF, 0x1000) }
            return nil
        case let .write(s, g, value):
            return settle(model.writeWord(s, gpa: g, value: value),
                          Result { () throws(AddrSpaceError) in try spaces[s].write(value, at: GuestPhysAddr(g)) })
        case let .read(s, g):
            return compareValue(model.readWord(s, gpa: g),
                                Result { () throws(AddrSpaceError) in try spaces[s].read(UInt64.self, at: GuestPhysAddr(g)) })
        case let .buffers(s, g, length, access):
            let expected: Result<UInt64, AddrSpaceError> = model.accessError(s, gpa: g, length: length, access: access).map { .failure($0) } ?? .success(length)
            let actual = Result { () throws(AddrSpaceError) in
                try spaces[s].translatedBuffers(GuestPhysAddr(g), length: Int(length), access: access).reduce(UInt64(0)) { $0 + UInt64($1.count) }
            }
            return compareValue(expected, actual)
        case let .clear(s):
            spaces[s].clear()
            model = model.clear(s)
            return nil
        case let .deferRelease(s):
            spaces[s].defersFrameRelease = true
            model = model.deferRelease(s)
            return nil
        case let .reserveWindows(s):
            spaces[s].reservesLazyWindows = true
            model = model.reserveWindows(s)
            return nil
        case let .guestFill(s, g):
            // What a VMM does once the host says the guest touched the page:
            // reports the page's frame of the window, if it has one.
            var frames: [UInt64] = []
            if let area = spaces[s].area(containing: GuestPhysAddr(g)), let window = area.window {
                frames = [window + (g & ~0xFFF) - area.start]
            }
            let filled = spaces[s].recordWindowFills(frames)
            let (next, expected) = model.guestFill(s, gpa: g)
            if (filled == 1) != expected {
                return filled == 0 && armed ? nil : "recording a guest fill at \(hex(g)) filled \(filled) page(s); the model says \(expected ? 1 : 0)"
            }
            model = next
            if expected { guestFillsRecorded += 1 }
            return expected ? expectZero(s, g & ~0xFFF, 0x1000) : nil
        case let .completeInvalidation(s):
            let token = spaces[s].takeInvalidation()
            if token.frameCount < model.spaces[s].quarantine.count {
                return "the invalidation token holds \(token.frameCount) frames; the model has \(model.spaces[s].quarantine.count) waiting data frames"
            }
            token.complete()
            model = model.completeInvalidation(s)
            return nil
        }
    }

    /// Frames handed to a guest are zero: every byte of a page the
    /// operation just gave memory to.
    private func expectZero(_ s: Int, _ gpa: UInt64, _ size: UInt64) -> String? {
        do {
            for buffer in try spaces[s].translatedBuffers(GuestPhysAddr(gpa), length: Int(size), access: []) {
                // Word-wise first (buffers are whole pages here), then the byte.
                let words = UnsafeRawBufferPointer(buffer).withMemoryRebound(to: UInt64.self) { $0.contains { $0 != 0 } }
                if words || buffer.count % 8 != 0, let i = buffer.firstIndex(where: { $0 != 0 }) {
                    let offset = buffer.baseAddress! - spaces[s].allocator.hostVirtual(HostPhysAddr(CheckerSetup.poolBase))!
                    return "a page handed to the guest is not zero: byte \(hex(UInt64(buffer[i]))) at host \(hex(CheckerSetup.poolBase + UInt64(offset + i)))"
                }
            }
        } catch {
            return "the new pages cannot be read back: \(error)"
        }
        return nil
    }

    /// translate() at the edges of what the operation touched agrees with the model.
    private func probe(_ op: SpecOp) -> String? {
        guard let s = op.space else { return nil }
        var points: [UInt64] = []
        switch op {
        case let .mapLinear(_, g, _, size, _), let .mapAlloc(_, g, size, _, _), let .mapIdentical(_, g, size, _),
             let .mapReserved(_, g, size, _), let .unmap(_, g, size), let .protect(_, g, size, _):
            points = [g &- 1, g, g &+ size &- 1, g &+ size]
        case let .fault(_, g, _), let .write(_, g, _), let .read(_, g), let .guestFill(_, g): points = [g]
        case let .buffers(_, g, length, _): points = [g, g &+ length]
        default: return nil
        }
        // Two pages nobody asked about, different at every step.
        var r = CheckerRandom(seed: UInt64(steps))
        points += [r.next() % CheckerSetup.managedSize, OpGenerator.anchors[Int(r.next() % UInt64(OpGenerator.anchors.count))]]
        for p in points where p < CheckerSetup.managedSize {
            let t = spaces[s].translate(GuestPhysAddr(p))
            switch model.page(s, p) {
            case .unmapped, .lazyAbsent:
                if let t { return "translate(\(hex(p))) = \(t), the model has no page there" }
            case let .fixed(host, flags):
                if t?.hostAddress.raw != host + (p & 0xFFF) || t?.flags != flags {
                    return "translate(\(hex(p))) = \(String(describing: t)), the model says \(hex(host + (p & 0xFFF))) \(flags)"
                }
            case let .frame(_, flags):
                if t?.flags != flags { return "translate(\(hex(p))) = \(String(describing: t)), the model says a frame with \(flags)" }
            }
        }
        return nil
    }

    private func checkAll() -> String? {
        let observed = Abstraction.observe(spaces, tracker)
        var problems = refinement.check(model, observed) + Invariants.all(model, observed)
        for (i, space) in spaces.enumerated() { problems += space.invariantViolations().map { "space \(i): \($0)" } }
        return problems.isEmpty ? nil : problems.prefix(4).joined(separator: "\n  ")
    }

    /// Tears everything down: after clear only the roots are live, after
    /// the spaces are gone nothing is, and no free was refused.
    public func finish() -> String? {
        for space in spaces {
            space.clear()
            space.takeInvalidation().complete()
        }
        if tracker.liveFrames != spaces.count * Format.rootFrames {
            return "after clear, \(tracker.liveFrames) frames are live; expected the \(spaces.count) root table(s), \(Format.rootFrames) frame(s) each"
        }
        spaces.removeAll()
        if tracker.liveFrames != 0 { return "after teardown \(tracker.liveFrames) frames are still live" }
        if !tracker.violations.isEmpty { return "allocator: \(tracker.violations.prefix(3).joined(separator: "; "))" }
        return nil
    }
}

/// The campaign on EPT, the format counterexamples name by default.
public typealias Lockstep = FormatLockstep<EPTFormat>
