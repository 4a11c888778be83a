/// A VMXON region or VMCS: one zeroed 4 KiB frame whose first 32-bit word
/// holds the revision identifier (bits 30:0) and the shadow-VMCS indicator
/// (bit 31).
public struct VmxRegion: ~Copyable {
    public let frame: PhysFrame
    public let revision: UInt32
    public let shadow: Bool

    public init(revision: UInt32, shadow: Bool = false, allocator: any FrameAllocator) throws(VMXError) {
        guard revision != 0 else { throw .zeroRevision }
        guard revision & 0x8000_0000 == 0 else { throw .revisionTooWide(revision) }
        let frame: PhysFrame
        do { frame = try PhysFrame.zeroed(allocator: allocator) } catch { throw .outOfFrames(error) }
        frame.withUnsafeBytes { $0.storeBytes(of: (revision | (shadow ? 0x8000_0000 : 0)).littleEndian, as: UInt32.self) }
        self.frame = frame
        self.revision = revision
        self.shadow = shadow
    }

    /// The first 32-bit word as hardware reads it.
    public var header: UInt32 { frame.withUnsafeBytes { UInt32(littleEndian: $0.load(as: UInt32.self)) } }
    public var address: HostPhysAddr { frame.start }
}
