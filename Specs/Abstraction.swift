import HVCore

/// What the implementation looks like through the model's eyes: the
/// abstraction function from AddrSpace + page table + tracking allocator.
public struct ObservedSpace: Sendable {
    public var areas: [SpecArea]
    public var leaves: [Leaf]
    public var tableFrames: Set<UInt64>
    /// Frames released and waiting for an invalidation (deferred release).
    public var quarantine: [FrameRun] = []
    /// The frame runs reserved by windowed lazy areas, filled or not.
    public var windows: [FrameRun] = []
    /// Zeroed frames the space holds for its next faults (its reserve).
    public var reserved: [UInt64] = []

    /// Every frame of every window.
    public var windowFrames: [UInt64] {
        windows.flatMap { run in (0..<run.count).map { run.start.raw + UInt64($0) * 0x1000 } }
    }

    /// Every quarantined frame's host address.
    public var quarantinedFrames: [UInt64] {
        quarantine.flatMap { run in (0..<run.count).map { run.start.raw + UInt64($0) * 0x1000 } }
    }
}

public struct ObservedState: Sendable {
    public var spaces: [ObservedSpace]
    public var liveFrames: Int
    public var allocatorViolations: [String]

    public init(spaces: [ObservedSpace], liveFrames: Int, allocatorViolations: [String]) {
        self.spaces = spaces
        self.liveFrames = liveFrames
        self.allocatorViolations = allocatorViolations
    }
}

extension SpecBacking {
    init(_ backend: Backend) {
        switch backend {
        case let .linear(host): self = .linear(hostStart: host.raw)
        case .alloc(.eager): self = .allocEager
        case .alloc(.lazy): self = .allocLazy
        case .identical: self = .identical
        case .reserved: self = .reserved
        }
    }
}

public enum Abstraction {
    public static func observe<F: PageTableFormat>(_ space: AddrSpace<F>) -> ObservedSpace {
        ObservedSpace(
            areas: space.areas.map { SpecArea(start: $0.start, size: $0.size, flags: $0.flags, backing: SpecBacking($0.backend), windowed: $0.window != nil) },
            leaves: space.leaves,
            tableFrames: space.tableFrameSet,
            quarantine: space.quarantinedRuns,
            windows: space.areas.compactMap { a in a.window.map { FrameRun(start: HostPhysAddr($0), count: Int(a.size / 0x1000)) } },
            reserved: space.reservedFrames)
    }

    public static func observe<F: PageTableFormat>(_ spaces: [AddrSpace<F>], _ tracker: TrackingAllocator) -> ObservedState {
        ObservedState(spaces: spaces.map(observe), liveFrames: tracker.liveFrames, allocatorViolations: tracker.violations)
    }
}
