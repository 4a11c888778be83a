import HVCore

/// The checks every operation starts with, in the order the specification
/// fixes: the first one that fails names the error.
enum Preconditions {
    /// Flags, checked before anything else by every operation that takes them.
    static func flags(_ flags: MappingFlags) -> AddrSpaceError? {
        // 1. No bit without a meaning.
        if !flags.subtracting(.all).isEmpty { return .pageTable(.unknownFlags(flags)) }
        // 2. Write permission needs read permission (an EPT misconfiguration otherwise).
        if flags.isWriteWithoutRead { return .pageTable(.writeWithoutRead(flags)) }
        // 3. Some access must be granted; no access is spelled "unmap".
        if flags.grantsNoAccess { return .pageTable(.noAccess(flags)) }
        return nil
    }

    /// The guest range of an operation on space `s`.
    static func range(_ env: SpecEnvironment, _ s: Int, _ gpa: UInt64, _ size: UInt64) -> AddrSpaceError? {
        // 1. Not empty.
        if size == 0 { return .emptyRange(GuestPhysAddr(gpa)) }
        // 2. Page-aligned start, 3. page-aligned size.
        if gpa & 0xFFF != 0 { return .unaligned(what: "guest address", address: gpa) }
        if size & 0xFFF != 0 { return .unaligned(what: "size", address: size) }
        // 4. The end fits in 64 bits.
        if gpa.addingReportingOverflow(size).overflow { return .rangeOverflow(start: gpa, size: size) }
        // 5. Inside the managed range.
        let managed = env.managed[s]
        if gpa < managed.start.raw || gpa + size > managed.end.raw {
            return .outsideManagedRange(start: GuestPhysAddr(gpa), size: size, managed: managed)
        }
        return nil
    }

    /// The range is free of areas; the error names the first area it meets.
    static func free(_ space: SpaceSpec, _ gpa: UInt64, _ size: UInt64) -> AddrSpaceError? {
        guard let first = space.areas(overlapping: gpa, gpa + size).first else { return nil }
        return .overlapsArea(requested: try! GuestPhysRange(start: GuestPhysAddr(gpa), size: size),
                             existing: try! GuestPhysRange(start: GuestPhysAddr(first.start), size: first.size))
    }
}
