import HVCore

/// A copyable view of an `IOBitmap`'s decision, for the runner (the bitmap
/// itself owns its frames and stays with the caller).
public struct IOBitmapView {
    public let exits: (UInt16, Int) -> Bool

    /// Snapshots which ports `bitmap` intercepts.
    public init(_ bitmap: borrowing IOBitmap) {
        var intercepted = [Bool](repeating: false, count: 0x1_0000)
        for p in 0...0xFFFF { intercepted[p] = bitmap.isIntercepted(UInt16(p)) }
        let table = intercepted
        exits = { port, width in
            if Int(port) + width - 1 > 0xFFFF { return true }
            return (0..<width).contains { table[Int(port) + $0] }
        }
    }
}
