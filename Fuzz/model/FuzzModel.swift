// fuzz-model: bytes decoded into an operation sequence (1-3 spaces, every
// operation kind, injected allocation failures) run in lockstep against
// the specification; a disagreement, an invariant violation, a leak at
// teardown or a trap is a crash: differential fuzzing of the core.
import FuzzSupport
import HVCore
import HVSpecs

/// Reads the input a byte at a time; zeros once it runs out.
struct Bytes {
    let bytes: [UInt8]
    var i = 0
    var done: Bool { i >= bytes.count }
    mutating func byte() -> Int { defer { i += 1 }; return i < bytes.count ? Int(bytes[i]) : 0 }
    mutating func pick<T>(_ options: [T]) -> T { options[byte() % options.count] }
}

let kib4: UInt64 = 0x1000, mib2: UInt64 = 0x20_0000, gib: UInt64 = 0x4000_0000
let anchors: [UInt64] = [0, kib4, mib2 - kib4, mib2, 2 * mib2, gib - mib2, gib, gib + kib4, 2 * gib - kib4, 3 * gib,
                         CheckerSetup.managedSize - mib2, CheckerSetup.managedSize - kib4, CheckerSetup.managedSize]
let offsets: [UInt64] = [0, 0, kib4, 2 * kib4, mib2, 0x10, 8, 0xFF8]
let sizes: [UInt64] = [kib4, 2 * kib4, 3 * kib4, mib2 - kib4, mib2, mib2 + kib4, 2 * mib2, gib, kib4 - 1, 0]
let smallSizes: [UInt64] = [kib4, 2 * kib4, 3 * kib4, mib2 - kib4, mib2, mib2 + kib4, kib4 - 1, 0]
let flagChoices: [MappingFlags] = [.readWrite, [.read], .rwx, [.read, .execute], [.read, .write, .device], [.write], [], [.execute],
                                   MappingFlags(rawValue: 0x41)]

func decode(_ input: [UInt8]) -> (spaces: Int, format: NestedFormat, ops: [SpecOp]) {
    var b = Bytes(bytes: input)
    let spaces = 1 + b.byte() % 3
    let format = b.pick(NestedFormat.campaign)
    var ops: [SpecOp] = []
    while !b.done, ops.count < 32 {
        let s = b.byte() % spaces
        let gpa = b.pick(anchors) &+ b.pick(offsets)
        switch b.byte() % 17 {
        case 0, 1:
            // Eager areas stay small, as the generator's do: the model has no
            // allocator limit, and a 1 GiB eager map would only exhaust the 64 MiB pool.
            let eager = b.byte() & 1 == 0
            let size = eager ? b.pick(smallSizes) : b.pick(sizes)
            ops.append(.mapAlloc(space: s, gpa: gpa, size: size, flags: b.pick(flagChoices), eager: eager))
        case 2:
            // The host offset keeps 2 MiB alignment for 1 GiB regions, as the
            // generator's do: a 1 GiB linear map in 4 KiB leaves is 262,144
            // leaves, and every step's full check then walks them all (one
            // such input took 0.8 s of a 17 s corpus replay). Smaller maps still
            // take every offset, so 4 KiB leaves across 2 MiB and 1 GiB
            // boundaries stay in reach.
            let shift = b.byte(), size = b.pick(sizes)
            let host = CheckerSetup.linearHostBase + (gpa & (4 * gib - 1)) + (size >= gib ? [0, mib2, gib, mib2] : [0, kib4, mib2, gib])[shift % 4]
            ops.append(.mapLinear(space: s, gpa: gpa, hpa: host, size: size, flags: b.pick(flagChoices)))
        case 3: ops.append(.mapIdentical(space: s, gpa: CheckerSetup.identityBase + UInt64(b.pick([0, 1, 512, 513, 1024])) * kib4,
                                         size: b.pick(Array(smallSizes.prefix(6))), flags: b.pick(flagChoices)))
        case 4: ops.append(.mapReserved(space: s, gpa: b.pick([0xFEC0_0000, 0xFEE0_0000, gib - mib2, 3 * gib]), size: b.pick(sizes), flags: b.pick(flagChoices)))
        case 5, 6: ops.append(.unmap(space: s, gpa: gpa, size: b.pick(sizes)))
        case 7: ops.append(.protect(space: s, gpa: gpa, size: b.pick(sizes), flags: b.pick(flagChoices)))
        case 8: ops.append(.fault(space: s, gpa: gpa &+ UInt64(b.byte()) * 8, access: b.pick([.read, .write, .execute, .readWrite])))
        case 9: ops.append(.write(space: s, gpa: gpa, value: UInt64(b.byte()) << 8 | 1))
        case 10: ops.append(.read(space: s, gpa: gpa))
        case 11: ops.append(.buffers(space: s, gpa: gpa, length: b.pick([1, 8, 0x800, 0x1000, 0x1001, 0x2000, mib2]), access: b.pick([.read, .write])))
        case 12: ops.append(.clear(space: s))
        case 13: ops.append(.deferRelease(space: s))
        case 14: ops.append(.completeInvalidation(space: s))
        case 15: ops.append(b.byte() & 1 == 0 ? .reserveWindows(space: s) : .guestFill(space: s, gpa: gpa &+ UInt64(b.byte()) * kib4))
        default: ops.append(.failAllocation(k: 1 + b.byte() % 6))
        }
    }
    return (spaces, format, ops)
}

func fuzzOne(_ bytes: [UInt8]) {
    let (spaces, format, ops) = decode(bytes)
    if let failure = Campaign.failure(of: ops, spaces: spaces, bug: nil, format: format) {
        preconditionFailure("implementation and model disagree on \(format) with \(spaces) space(s):\n\(ops.map { "  \($0)" }.joined(separator: "\n"))\n\(failure)")
    }
}

@main struct Target {
    static func main() throws { try fuzzTarget(fuzzOne) }
}
