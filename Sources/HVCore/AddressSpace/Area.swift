/// How an area's guest pages get host memory.
public enum Backend: Equatable, Sendable, CustomStringConvertible {
    /// Fixed host memory: the area's first page maps to `hostStart`. Not owned.
    case linear(hostStart: HostPhysAddr)
    /// Frames from the allocator, owned by the area; eager maps them all at
    /// once, lazy maps each page at its first fault.
    case alloc(populate: Populate)
    /// Frames allocated at host address == guest address, owned by the area.
    case identical
    /// Host memory at host address == guest address that the caller declares
    /// it owns (devices, firmware). Not owned by the area.
    case reserved

    /// True when unmapping the area returns its frames to the allocator.
    @inlinable public var ownsFrames: Bool {
        switch self {
        case .alloc, .identical: true
        case .linear, .reserved: false
        }
    }

    public var description: String {
        switch self {
        case let .linear(host): "linear -> \(host)"
        case let .alloc(populate): "alloc (\(populate))"
        case .identical: "identical"
        case .reserved: "reserved"
        }
    }
}

public enum Populate: String, Equatable, Sendable {
    case eager, lazy
}

/// Backing frame sizes an eager Alloc region may use.
public enum BackingPolicy: Equatable, Sendable {
    /// 4 KiB frames only.
    case frames4K
    /// 2 MiB frames (mapped with 2 MiB leaves) wherever the range allows and
    /// the allocator has a free aligned run; 4 KiB frames elsewhere.
    case huge2MWhenPossible
}

/// A contiguous guest-physical range with one backend and one set of flags.
public struct Area: Equatable, Sendable, CustomStringConvertible {
    public let start: UInt64
    public let size: UInt64
    public var flags: MappingFlags
    public let backend: Backend
    /// Lazy Alloc areas of a space that reserves lazy windows: the host
    /// address of the frame reserved for the area's first page. Page
    /// `start + k` is filled, when first touched, with frame `window + k`,
    /// so a VMM can hand the whole run to the hypervisor as one slot up
    /// front and let the host fault pages in. Nil: frames are chosen at
    /// each fault.
    public var window: UInt64? = nil

    @inlinable public var end: UInt64 { start + size }
    public var range: GuestPhysRange { try! GuestPhysRange(start: GuestPhysAddr(start), size: size) }

    @inlinable public func contains(_ gpa: UInt64) -> Bool {
        Kernels.rangeContainsAddress(start: start, size: size, address: gpa)
    }

    /// The part of this area inside `[lo, hi)`, with the backend adjusted.
    func slice(_ lo: UInt64, _ hi: UInt64) -> Area {
        let from = max(lo, start), to = min(hi, end)
        let backend: Backend
        switch self.backend {
        case let .linear(host): backend = .linear(hostStart: HostPhysAddr(host.raw + (from - start)))
        default: backend = self.backend
        }
        return Area(start: from, size: to - from, flags: flags, backend: backend, window: window.map { $0 + (from - start) })
    }

    /// The frame reserved for `gpa`'s page, when the area has a window.
    func windowFrame(_ gpa: UInt64) -> UInt64? {
        window.map { $0 + (gpa & ~(frameSize - 1)) - start }
    }

    /// The host address of `gpa` for backends that map to a fixed place.
    func fixedHost(_ gpa: UInt64) -> UInt64? {
        switch backend {
        case let .linear(host): host.raw + (gpa - start)
        case .identical, .reserved: gpa
        case .alloc: windowFrame(gpa)
        }
    }

    public var description: String { "\(range) \(flags) \(backend)" + (window.map { ", window \(hex($0))" } ?? "") }
}

/// Whether frames are zeroed before a guest sees them.
public enum FrameZeroing: Equatable, Sendable {
    /// Always (the default, and the only safe choice: a guest must never see
    /// another guest's or the host's old data).
    case always
    /// Never. Exists only so benchmarks can be compared with implementations
    /// that do not zero; never use it for a real guest.
    case unsafeNeverForBenchmarks
}
