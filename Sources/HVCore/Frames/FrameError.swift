/// Why a frame allocation failed. Allocation failure is always a thrown
/// error, never a crash and never a frame at address 0.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not enough free frames (or no free run long and aligned enough).
    case outOfMemory(requestedFrames: Int, freeFrames: Int)
    /// A frame at a fixed address was asked for but is taken or outside the pool.
    case unavailable(at: HostPhysAddr, frames: Int)
    /// Alignment must be a power of two that is a multiple of 4 KiB.
    case invalidAlignment(UInt64)
    /// A frame count must be at least one.
    case invalidCount(Int)
    /// A test told the tracking allocator to fail this allocation.
    case injectedFailure(allocationNumber: Int)

    public var description: String {
        switch self {
        case let .outOfMemory(requested, free):
            "out of frames: \(requested) requested, \(free) free"
        case let .unavailable(at, frames):
            "\(frames) frame(s) at host-physical \(at) are taken or outside the pool"
        case let .invalidAlignment(alignment):
            "alignment \(hex(alignment)) is not a power of two multiple of 4 KiB"
        case let .invalidCount(count):
            "frame count \(count) is not positive"
        case let .injectedFailure(number):
            "allocation #\(number) failed (injected by a test)"
        }
    }
}
