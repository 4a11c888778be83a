/// Why a blob is not a flattened device tree (exit status 2).
public enum DeviceTreeError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(needed: Int, have: Int)
    case badMagic(UInt32)
    case unsupportedVersion(version: UInt32, lastCompatible: UInt32)
    case totalSizeMismatch(header: UInt32, blob: Int)
    case blockOutsideBlob(block: String, offset: UInt32, size: UInt32, total: UInt32)
    case unterminatedName(offset: Int)
    case badToken(UInt32, offset: Int)
    case propertyOutsideBlock(name: String, offset: Int)
    case propertyNameOutsideStrings(nameOffset: UInt32)
    case propertyOutsideNode(offset: Int)
    case unbalanced(offset: Int)
    case noEndToken
    case badCells(path: String, property: String, length: Int, cellBytes: Int)

    public var description: String {
        func h<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .truncated(needed, have): return "truncated: the header needs \(needed) bytes, the blob has \(have)"
        case let .badMagic(m): return "bad magic \(h(m)) (a device tree blob starts with 0xd00dfeed)"
        case let .unsupportedVersion(v, last): return "version \(v) (last compatible \(last)) is not readable; version 16 or 17 is"
        case let .totalSizeMismatch(header, blob): return "the header's totalsize \(header) is larger than the blob (\(blob) bytes)"
        case let .blockOutsideBlob(block, offset, size, total): return "the \(block) block [\(h(offset)), +\(h(size))) lies outside the blob's \(total) bytes"
        case let .unterminatedName(offset): return "node name at structure offset \(h(offset)) has no terminating NUL"
        case let .badToken(t, offset): return "unknown token \(h(t)) at structure offset \(h(offset))"
        case let .propertyOutsideBlock(name, offset): return "property \(name) at structure offset \(h(offset)) runs past the structure block"
        case let .propertyNameOutsideStrings(off): return "property name offset \(h(off)) lies outside the strings block (or has no NUL)"
        case let .propertyOutsideNode(offset): return "property at structure offset \(h(offset)) is outside any node"
        case let .unbalanced(offset): return "END_NODE at structure offset \(h(offset)) closes no node"
        case .noEndToken: return "the structure block ends without closing every node and the END token"
        case let .badCells(path, property, length, cellBytes): return "\(path): \(property) has \(length) bytes, not a multiple of \(cellBytes)"
        }
    }
}

/// Reads a flattened device tree (DTB, devicetree specification v0.4
/// chapter 5): the header, the structure block's tokens and the strings
/// block. Every offset and length is checked against the blob before it
/// is used, so a malformed blob is an error, never a crash.
public enum FlattenedDeviceTree {
    static let magic: UInt32 = 0xD00D_FEED
    static let beginNode: UInt32 = 1, endNode: UInt32 = 2, prop: UInt32 = 3, nop: UInt32 = 4, end: UInt32 = 9

    static func word(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    public static func parse(_ blob: [UInt8]) throws(DeviceTreeError) -> DeviceTree {
        guard blob.count >= 40 else { throw .truncated(needed: 40, have: blob.count) }
        let m = word(blob, 0)
        guard m == magic else { throw .badMagic(m) }
        let total = word(blob, 4), structOff = word(blob, 8), stringsOff = word(blob, 12)
        let version = word(blob, 20), lastCompatible = word(blob, 24)
        guard version >= 16, lastCompatible <= 17 else { throw .unsupportedVersion(version: version, lastCompatible: lastCompatible) }
        guard Int(total) <= blob.count else { throw .totalSizeMismatch(header: total, blob: blob.count) }
        let stringsSize = word(blob, 32)
        // Version 16 has no size_dt_struct: the block runs to the blob's end.
        let structSize = version >= 17 ? word(blob, 36) : total &- min(total, structOff)
        for (name, off, size) in [("structure", structOff, structSize), ("strings", stringsOff, stringsSize)] {
            guard UInt64(off) + UInt64(size) <= UInt64(total) else { throw .blockOutsideBlob(block: name, offset: off, size: size, total: total) }
        }
        let s = Int(structOff), sEnd = Int(structOff) + Int(structSize)
        let strings = Array(blob[Int(stringsOff)..<(Int(stringsOff) + Int(stringsSize))])

        func propertyName(_ off: UInt32) throws(DeviceTreeError) -> String {
            guard Int(off) < strings.count, let nul = strings[Int(off)...].firstIndex(of: 0) else { throw .propertyNameOutsideStrings(nameOffset: off) }
            return String(decoding: strings[Int(off)..<nul], as: UTF8.self)
        }

        // A stack of nodes being read; the root is the first BEGIN_NODE.
        var stack: [DeviceTree.Node] = []
        var root: DeviceTree.Node?
        var i = s
        while true {
            guard i + 4 <= sEnd else { throw .noEndToken }
            let token = word(blob, i)
            let at = i - s
            i += 4
            switch token {
            case beginNode:
                guard let nul = blob[i..<sEnd].firstIndex(of: 0) else { throw .unterminatedName(offset: at) }
                let name = String(decoding: blob[i..<nul], as: UTF8.self)
                i = (nul + 1 + 3) & ~3
                guard root == nil else { throw .badToken(token, offset: at) }  // a second root
                stack.append(DeviceTree.Node(name: name))
            case endNode:
                guard let node = stack.popLast() else { throw .unbalanced(offset: at) }
                if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
            case prop:
                guard i + 8 <= sEnd else { throw .propertyOutsideBlock(name: "?", offset: at) }
                let length = Int(word(blob, i)), nameOff = word(blob, i + 4)
                i += 8
                let name = try propertyName(nameOff)
                guard length <= sEnd - i else { throw .propertyOutsideBlock(name: name, offset: at) }
                guard !stack.isEmpty else { throw .propertyOutsideNode(offset: at) }
                stack[stack.count - 1].properties.append((name, Array(blob[i..<(i + length)])))
                i = (i + length + 3) & ~3
            case nop:
                continue
            case end:
                guard stack.isEmpty, let root else { throw .noEndToken }
                return try DeviceTree(root: root)
            default:
                throw .badToken(token, offset: at)
            }
        }
    }
}
