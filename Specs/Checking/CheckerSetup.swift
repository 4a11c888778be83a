import HVCore

/// The fixed world every model-based case runs in: one shared 64 MiB frame
/// pool at host 4 GiB, 1-3 address spaces each managing [0, 8 GiB).
public enum CheckerSetup {
    public static let poolBase: UInt64 = 0x1_0000_0000
    public static let poolFrames = 16_384
    public static let poolEnd: UInt64 = poolBase + UInt64(poolFrames) * 0x1000
    public static let managedSize: UInt64 = 0x2_0000_0000
    /// Identity maps are generated in the pool's top quarter, which the
    /// lowest-first allocator reaches last.
    public static let identityBase: UInt64 = poolBase + 48 << 20
    /// Linear mappings point at host memory outside the pool (device-like),
    /// so guest writes through them cannot touch frames the model tracks.
    public static let linearHostBase: UInt64 = 0x40_0000_0000

    public static func environment(spaces: Int) -> SpecEnvironment {
        SpecEnvironment(poolStart: poolBase, poolEnd: poolEnd,
                        managed: Array(repeating: try! GuestPhysRange(start: GuestPhysAddr(0), size: managedSize), count: spaces))
    }
}
