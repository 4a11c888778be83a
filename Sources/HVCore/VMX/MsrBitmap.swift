/// The VMX MSR bitmap: one 4 KiB frame in four 1 KiB quarters (reads of
/// 0x0-0x1FFF, reads of 0xC0000000-0xC0001FFF, then writes of each). A set
/// bit makes the access exit; MSRs outside both ranges always exit.
public struct MsrBitmap: ~Copyable {
    public let frame: PhysFrame

    public init(allocator: any FrameAllocator) throws(VMXError) {
        do { frame = try PhysFrame.zeroed(allocator: allocator) } catch { throw .outOfFrames(error) }
    }

    /// The bit for an access, or nil when the MSR is outside both ranges.
    public static func bit(msr: UInt32, write: Bool) -> Int? {
        let (bit, covered) = Kernels.msrBitmapBit(msr: UInt64(msr), write: write)
        return covered ? Int(bit) : nil
    }

    private func set(_ msr: UInt32, write: Bool, _ on: Bool) {
        guard let bit = Self.bit(msr: msr, write: write) else { return }  // always exits anyway
        frame.withUnsafeBytes { bytes in
            let mask = UInt8(1) << UInt8(bit & 7)
            bytes[bit >> 3] = on ? bytes[bit >> 3] | mask : bytes[bit >> 3] & ~mask
        }
    }

    public func intercept(_ msr: UInt32, read: Bool = true, write: Bool = true) {
        if read { set(msr, write: false, true) }
        if write { set(msr, write: true, true) }
    }

    public func pass(_ msr: UInt32, read: Bool = true, write: Bool = true) {
        if read { set(msr, write: false, false) }
        if write { set(msr, write: true, false) }
    }

    public func exits(msr: UInt32, write: Bool) -> Bool {
        guard let bit = Self.bit(msr: msr, write: write) else { return true }
        return frame.withUnsafeBytes { $0[bit >> 3] & (UInt8(1) << UInt8(bit & 7)) != 0 }
    }
}
