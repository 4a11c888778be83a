/// The values where bit-level kernels go wrong: page boundaries, the ends of
/// the 48-bit and 64-bit spaces, and their neighbours.
public enum EdgeValues {
    public static let kib4: UInt64 = 0x1000
    public static let mib2: UInt64 = 0x20_0000
    public static let gib1: UInt64 = 0x4000_0000

    public static let addresses: [UInt64] = [
        0, 1, 4095, 4096, 4097, 8192,
        mib2 - kib4, mib2 - 1, mib2, mib2 + kib4,
        gib1 - kib4, gib1 - 1, gib1, gib1 + kib4, gib1 + mib2,
        (1 << 39) - kib4, 1 << 39,
        (1 << 48) - kib4, (1 << 48) - 1, 1 << 48, (1 << 48) + kib4,
        (1 << 52) - kib4, 1 << 52,
        UInt64.max - gib1 + 1, UInt64.max - mib2 + 1,
        UInt64.max - kib4 + 1, UInt64.max - kib4, UInt64.max - 1, UInt64.max,
        1 << 63,
    ]

    public static let masks: [UInt64] = [kib4 - 1, mib2 - 1, gib1 - 1]
}
