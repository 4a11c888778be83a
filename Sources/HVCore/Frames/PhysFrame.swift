/// Owns one frame, or a physically contiguous run of frames, and gives it
/// back to its allocator when dropped. Not copyable: a frame has exactly one
/// owner, and the type system says so.
public struct PhysFrame: ~Copyable {
    public let start: HostPhysAddr
    public let count: Int
    public let allocator: any FrameAllocator
    private var owned = true

    /// One frame with unspecified contents.
    public init(allocator: any FrameAllocator) throws(FrameError) {
        start = try allocator.allocateFrame()
        count = 1
        self.allocator = allocator
    }

    /// `count` contiguous frames aligned to `alignment`.
    public init(contiguous count: Int, alignment: UInt64, allocator: any FrameAllocator) throws(FrameError) {
        start = try allocator.allocateContiguous(count: count, alignment: alignment)
        self.count = count
        self.allocator = allocator
    }

    /// Exactly the frames at `start`, for identity maps.
    public init(at start: HostPhysAddr, count: Int, allocator: any FrameAllocator) throws(FrameError) {
        try allocator.allocate(at: start, count: count)
        self.start = start
        self.count = count
        self.allocator = allocator
    }

    /// Takes back ownership of frames released with `intoRaw()`.
    ///
    /// SAFETY: the caller must own these frames and must not free them again.
    public init(unsafeAdopting start: HostPhysAddr, count: Int = 1, allocator: any FrameAllocator) {
        self.start = start
        self.count = count
        self.allocator = allocator
    }

    /// One zero-filled frame: what a guest is given.
    public static func zeroed(allocator: any FrameAllocator) throws(FrameError) -> PhysFrame {
        PhysFrame(unsafeAdopting: try allocator.allocateZeroedFrame(), allocator: allocator)
    }

    /// A zeroed frame for a page table (`FrameAllocator.allocateTableFrame`).
    public static func zeroedTable(allocator: any FrameAllocator) throws(FrameError) -> PhysFrame {
        PhysFrame(unsafeAdopting: try allocator.allocateTableFrame(), allocator: allocator)
    }

    public var byteCount: Int { count * Int(frameSize) }
    public var end: HostPhysAddr { HostPhysAddr(start.raw + UInt64(byteCount)) }

    /// Scoped access to the frame's bytes through the allocator's window.
    public func withUnsafeBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        guard let base = allocator.hostVirtual(start) else {
            preconditionFailure("frame \(start) is outside its allocator's window")
        }
        return try body(UnsafeMutableRawBufferPointer(start: base, count: byteCount))
    }

    public func fill(_ byte: UInt8) {
        _ = withUnsafeBytes { $0.initializeMemory(as: UInt8.self, repeating: byte) }
    }

    /// Gives up ownership without freeing; the caller now owns the frames and
    /// must free them (or adopt them again).
    public consuming func intoRaw() -> HostPhysAddr {
        owned = false
        return start
    }

    deinit {
        if owned { allocator.free(start, count: count) }
    }
}
