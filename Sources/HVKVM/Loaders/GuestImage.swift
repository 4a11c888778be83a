import HVCore

/// Why an image cannot be loaded. Every check happens before the VM starts.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    case empty
    case truncated(what: String, need: Int, have: Int)
    case badMagic
    case unsupported(String)
    case outsideRAM(segment: UInt64, size: UInt64, ram: UInt64)
    case overlappingSegments(UInt64, UInt64)

    public var description: String {
        switch self {
        case .empty: "the image is empty"
        case let .truncated(what, need, have): "the image is truncated: \(what) needs \(need) bytes, the file has \(have)"
        case .badMagic: "not an ELF file (bad magic) and not loaded as a flat binary"
        case let .unsupported(why): why
        case let .outsideRAM(start, size, ram):
            "\(hex(size)) bytes at \(hex(start)) do not fit in guest RAM [0x0, \(hex(ram)))"
        case let .overlappingSegments(a, b): "segments at \(hex(a)) and \(hex(b)) overlap"
        }
    }
}

/// A guest image: pieces of memory to copy in, and where execution starts.
public struct GuestImage: Equatable {
    public struct Segment: Equatable {
        public let address: UInt64
        public let bytes: [UInt8]
        /// Bytes in memory; past `bytes.count` they are zero (ELF .bss).
        public let memorySize: UInt64

        public init(address: UInt64, bytes: [UInt8], memorySize: UInt64) {
            self.address = address
            self.bytes = bytes
            self.memorySize = memorySize
        }
    }

    public let segments: [Segment]
    public let entry: UInt64
    /// 16 for real mode, 32 for flat protected mode, 64 for long mode.
    public let bits: Int

    /// A flat binary loaded at `address`, entered at `entry` (default: its start).
    public static func flat(_ bytes: [UInt8], at address: UInt64, entry: UInt64? = nil, bits: Int) throws(ImageError) -> GuestImage {
        guard !bytes.isEmpty else { throw .empty }
        return GuestImage(segments: [Segment(address: address, bytes: bytes, memorySize: UInt64(bytes.count))], entry: entry ?? address, bits: bits)
    }

    /// Checks that every segment lies inside guest RAM `[0, ram)`.
    public func check(ram: UInt64) throws(ImageError) {
        for s in segments {
            let (end, overflow) = s.address.addingReportingOverflow(s.memorySize)
            if overflow || end > ram { throw .outsideRAM(segment: s.address, size: s.memorySize, ram: ram) }
        }
        let sorted = segments.sorted { $0.address < $1.address }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.address + a.memorySize > b.address {
            throw .overlappingSegments(a.address, b.address)
        }
        if !segments.contains(where: { entry >= $0.address && entry < $0.address + $0.memorySize }) {
            throw .unsupported("entry point \(hex(entry)) is in no loaded segment")
        }
        if bits == 16 && entry > 0xFFFF { throw .unsupported("a real-mode entry must be below 64 KiB, not \(hex(entry))") }
    }
}
