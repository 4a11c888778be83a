import HVCore

/// One step of a model-based test case. `description` is Swift source for
/// the same value, so a counterexample can be pasted into a test.
public enum SpecOp: Equatable, Sendable, CustomStringConvertible {
    case mapLinear(space: Int, gpa: UInt64, hpa: UInt64, size: UInt64, flags: MappingFlags)
    case mapAlloc(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags, eager: Bool)
    case mapIdentical(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags)
    case mapReserved(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags)
    case unmap(space: Int, gpa: UInt64, size: UInt64)
    case protect(space: Int, gpa: UInt64, size: UInt64, flags: MappingFlags)
    case fault(space: Int, gpa: UInt64, access: MappingFlags)
    case write(space: Int, gpa: UInt64, value: UInt64)
    case read(space: Int, gpa: UInt64)
    case buffers(space: Int, gpa: UInt64, length: UInt64, access: MappingFlags)
    case clear(space: Int)
    /// From now on frames the space releases wait for an invalidation.
    case deferRelease(space: Int)
    /// The space's invalidation is carried out: its waiting frames are released.
    case completeInvalidation(space: Int)
    /// From now on lazy areas the space maps may reserve windows.
    case reserveWindows(space: Int)
    /// The guest touched `gpa` through a lazy window; the VMM records it.
    case guestFill(space: Int, gpa: UInt64)
    /// Makes the k-th frame allocation of the next operation fail.
    case failAllocation(k: Int)

    public var space: Int? {
        switch self {
        case let .mapLinear(s, _, _, _, _), let .mapAlloc(s, _, _, _, _), let .mapIdentical(s, _, _, _),
             let .mapReserved(s, _, _, _), let .unmap(s, _, _), let .protect(s, _, _, _), let .fault(s, _, _),
             let .write(s, _, _), let .read(s, _), let .buffers(s, _, _, _), let .clear(s), let .deferRelease(s),
             let .completeInvalidation(s), let .reserveWindows(s), let .guestFill(s, _):
            s
        case .failAllocation: nil
        }
    }

    public var description: String {
        func f(_ flags: MappingFlags) -> String {
            let names: [(MappingFlags, String)] = [(.read, ".read"), (.write, ".write"), (.execute, ".execute"),
                                                   (.user, ".user"), (.device, ".device"), (.uncached, ".uncached")]
            let unknown = flags.subtracting(.all)
            if !unknown.isEmpty { return "MappingFlags(rawValue: \(hex(flags.rawValue)))" }
            return "[" + names.filter { flags.contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
        }
        switch self {
        case let .mapLinear(s, g, h, size, flags):
            return ".mapLinear(space: \(s), gpa: \(hex(g)), hpa: \(hex(h)), size: \(hex(size)), flags: \(f(flags)))"
        case let .mapAlloc(s, g, size, flags, eager):
            return ".mapAlloc(space: \(s), gpa: \(hex(g)), size: \(hex(size)), flags: \(f(flags)), eager: \(eager))"
        case let .mapIdentical(s, g, size, flags):
            return ".mapIdentical(space: \(s), gpa: \(hex(g)), size: \(hex(size)), flags: \(f(flags)))"
        case let .mapReserved(s, g, size, flags):
            return ".mapReserved(space: \(s), gpa: \(hex(g)), size: \(hex(size)), flags: \(f(flags)))"
        case let .unmap(s, g, size): return ".unmap(space: \(s), gpa: \(hex(g)), size: \(hex(size)))"
        case let .protect(s, g, size, flags): return ".protect(space: \(s), gpa: \(hex(g)), size: \(hex(size)), flags: \(f(flags)))"
        case let .fault(s, g, access): return ".fault(space: \(s), gpa: \(hex(g)), access: \(f(access)))"
        case let .write(s, g, v): return ".write(space: \(s), gpa: \(hex(g)), value: \(hex(v)))"
        case let .read(s, g): return ".read(space: \(s), gpa: \(hex(g)))"
        case let .buffers(s, g, length, access): return ".buffers(space: \(s), gpa: \(hex(g)), length: \(hex(length)), access: \(f(access)))"
        case let .clear(s): return ".clear(space: \(s))"
        case let .deferRelease(s): return ".deferRelease(space: \(s))"
        case let .completeInvalidation(s): return ".completeInvalidation(space: \(s))"
        case let .reserveWindows(s): return ".reserveWindows(space: \(s))"
        case let .guestFill(s, g): return ".guestFill(space: \(s), gpa: \(hex(g)))"
        case let .failAllocation(k): return ".failAllocation(k: \(k))"
        }
    }
}
