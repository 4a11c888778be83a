/// The VMX I/O bitmaps: frame A covers ports 0x0000-0x7FFF, frame B
/// 0x8000-0xFFFF, one bit per port; a set bit makes the port exit.
public struct IOBitmap: ~Copyable {
    public let a: PhysFrame
    public let b: PhysFrame

    /// Both frames zeroed: every port passes through.
    public init(allocator: any FrameAllocator) throws(VMXError) {
        let first: PhysFrame
        do { first = try PhysFrame.zeroed(allocator: allocator) } catch { throw .outOfFrames(error) }
        let second: PhysFrame
        do { second = try PhysFrame.zeroed(allocator: allocator) } catch { throw .outOfFrames(error) }  // `first` is freed on this path
        a = first
        b = second
    }

    private func locate(_ port: UInt16) -> (frame: Int, byte: Int, mask: UInt8) {
        let p = UInt64(port)
        let bit = Kernels.ioBitmapBit(port: p)
        return (Int(Kernels.ioBitmapFrame(port: p)), Int(bit >> 3), UInt8(1) << UInt8(bit & 7))
    }

    private func update(_ port: UInt16, _ on: Bool) {
        let (f, byte, mask) = locate(port)
        let body: (UnsafeMutableRawBufferPointer) -> Void = { bytes in
            bytes[byte] = on ? bytes[byte] | mask : bytes[byte] & ~mask
        }
        if f == 0 { a.withUnsafeBytes(body) } else { b.withUnsafeBytes(body) }
    }

    public func intercept(_ port: UInt16) { update(port, true) }
    public func pass(_ port: UInt16) { update(port, false) }
    public func intercept(_ ports: ClosedRange<UInt16>) { for p in ports { update(p, true) } }
    public func pass(_ ports: ClosedRange<UInt16>) { for p in ports { update(p, false) } }

    public func isIntercepted(_ port: UInt16) -> Bool {
        let (f, byte, mask) = locate(port)
        let read: (UnsafeMutableRawBufferPointer) -> Bool = { $0[byte] & mask != 0 }
        return f == 0 ? a.withUnsafeBytes(read) : b.withUnsafeBytes(read)
    }

    /// Whether an access of `width` bytes (1, 2 or 4) at `port` exits: when
    /// any port it touches is intercepted, or when it wraps past 0xFFFF
    /// (the SDM makes a wrapping access exit unconditionally).
    public func exits(port: UInt16, width: Int) -> Bool {
        precondition([1, 2, 4].contains(width), "I/O access width is 1, 2 or 4")
        if Int(port) + width - 1 > 0xFFFF { return true }
        return (0..<width).contains { isIntercepted(port + UInt16($0)) }
    }
}
