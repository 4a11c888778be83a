import HVCore

/// A frame handed out to a guest, named abstractly: the model never knows
/// host addresses of allocated frames, only that each is distinct.
public typealias FrameToken = Int

/// What the model knows of the world outside the address spaces: the host
/// memory the shared allocator manages (identity maps need it) and the
/// managed guest range of each space.
public struct SpecEnvironment: Equatable, Sendable {
    public let poolStart: UInt64
    public let poolEnd: UInt64
    public let managed: [GuestPhysRange]

    public init(poolStart: UInt64, poolEnd: UInt64, managed: [GuestPhysRange]) {
        self.poolStart = poolStart
        self.poolEnd = poolEnd
        self.managed = managed
    }

    /// True when host address `hpa` is memory the host process can touch.
    public func isHostMemory(_ hpa: UInt64) -> Bool { hpa >= poolStart && hpa < poolEnd }
}

/// How the pages of an area get memory, in the model's terms.
public enum SpecBacking: Equatable, Sendable, CustomStringConvertible {
    case linear(hostStart: UInt64)
    case allocEager, allocLazy
    case identical
    case reserved

    public var ownsFrames: Bool {
        switch self {
        case .allocEager, .allocLazy, .identical: true
        case .linear, .reserved: false
        }
    }

    public var description: String {
        switch self {
        case let .linear(host): "linear(\(hex(host)))"
        case .allocEager: "alloc eager"
        case .allocLazy: "alloc lazy"
        case .identical: "identical"
        case .reserved: "reserved"
        }
    }
}

public struct SpecArea: Equatable, Sendable, CustomStringConvertible {
    public var start: UInt64
    public var size: UInt64
    public var flags: MappingFlags
    public var backing: SpecBacking
    /// A lazy Alloc area with a reserved window (the implementation's
    /// `Area.window`): its pages can also be filled by the guest through
    /// the host, and recorded afterwards (`guestFill`).
    public var windowed = false

    public var end: UInt64 { start + size }
    public func contains(_ gpa: UInt64) -> Bool { gpa >= start && gpa - start < size }

    /// The part inside `[lo, hi)`; a linear host start moves with it.
    public func slice(_ lo: UInt64, _ hi: UInt64) -> SpecArea {
        let from = max(lo, start), to = min(hi, end)
        var b = backing
        if case let .linear(host) = backing { b = .linear(hostStart: host + (from - start)) }
        return SpecArea(start: from, size: to - from, flags: flags, backing: b, windowed: windowed)
    }

    /// The fixed host address of `gpa`, for backings that have one.
    public func fixedHost(_ gpa: UInt64) -> UInt64? {
        switch backing {
        case let .linear(host): host + (gpa - start)
        case .identical, .reserved: gpa
        case .allocEager, .allocLazy: nil
        }
    }

    public var description: String { "[\(hex(start)), \(hex(end))) \(flags) \(backing)" + (windowed ? " windowed" : "") }
}

/// One guest address space in the model. As a function of guest page it is:
/// outside every area -> unmapped; in a linear or reserved area -> the
/// area's fixed host page; in an owning area -> the frame token in `frames`
/// if present, otherwise lazy-absent (Alloc lazy only).
public struct SpaceSpec: Equatable, Sendable {
    public var areas: [SpecArea] = []  // sorted by start, disjoint
    /// Present pages of owning areas: page address -> token.
    public var frames: [UInt64: FrameToken] = [:]
    /// Whether released frames wait for an invalidation (deferred release).
    public var defersRelease = false
    /// Tokens released while deferring, still owned by this space (its
    /// guest may reach them until the invalidation): in the ledger, at no page.
    public var quarantine: [FrameToken] = []
    /// Whether lazy areas mapped from now on may reserve a window (whether
    /// one does depends on the allocator having a free run, which the model
    /// does not track: it learns the outcome, see `learnWindow`).
    public var reservesWindows = false

    public init() {}

    public func area(containing gpa: UInt64) -> SpecArea? {
        // Areas are few in generated cases; a scan keeps the model obvious.
        areas.first { $0.contains(gpa) }
    }

    public func areas(overlapping lo: UInt64, _ hi: UInt64) -> [SpecArea] {
        areas.filter { $0.start < hi && lo < $0.end }
    }
}

/// The state of every address space plus the frame ledger they share.
public struct SpecState: Equatable, Sendable {
    public let environment: SpecEnvironment
    public var spaces: [SpaceSpec]
    /// Who owns each live data frame (the index of a space).
    public var ledger: [FrameToken: Int] = [:]
    /// Identity-mapped tokens know their host page; allocated ones do not.
    public var identityHost: [FrameToken: UInt64] = [:]
    /// Guest-visible contents: 8-byte words written, by space and address.
    /// Every other byte of a frame page reads as zero.
    public var words: [Int: [UInt64: UInt64]] = [:]
    public var nextToken: FrameToken = 1

    public init(environment: SpecEnvironment) {
        self.environment = environment
        spaces = Array(repeating: SpaceSpec(), count: environment.managed.count)
    }

    mutating func newToken(owner: Int) -> FrameToken {
        let t = nextToken
        nextToken += 1
        ledger[t] = owner
        return t
    }

    mutating func release(_ token: FrameToken) {
        ledger[token] = nil
        identityHost[token] = nil
    }
}

/// What a translation looks like in the model.
public enum SpecPage: Equatable, Sendable {
    case unmapped
    case lazyAbsent(flags: MappingFlags)
    case fixed(host: UInt64, flags: MappingFlags)
    case frame(FrameToken, flags: MappingFlags)
}

extension SpecState {
    /// The page-level view of space `s` at guest address `gpa`.
    public func page(_ s: Int, _ gpa: UInt64) -> SpecPage {
        let page = gpa & ~0xFFF
        guard let a = spaces[s].area(containing: gpa) else { return .unmapped }
        switch a.backing {
        case .linear, .reserved:
            return .fixed(host: a.fixedHost(page)!, flags: a.flags)
        case .identical, .allocEager, .allocLazy:
            if let t = spaces[s].frames[page] { return .frame(t, flags: a.flags) }
            return .lazyAbsent(flags: a.flags)
        }
    }
}
