import HVCore
import PropertyBased
import TestSupport

/// 64-bit inputs that hit the edge values a third of the time, small
/// addresses a third, and anything the rest.
let edgyUInt64 = Gen<UInt64>.oneOf(
    Gen<UInt64?>.element(of: EdgeValues.addresses).map { $0! },
    Gen<UInt64>.uint64(in: 0...(1 << 50)),
    Gen<UInt64>.uint64()
)

let pageMask = Gen<UInt64?>.element(of: EdgeValues.masks).map { $0! }

/// Flags a nested page table accepts: readable, any of W/X/U/DEV/UC.
let mappableFlags = Gen<UInt64>.uint64(in: 0...0x3F)
    .map { MappingFlags(rawValue: $0 | MappingFlags.read.rawValue) }
