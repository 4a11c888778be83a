import HVCore

/// The outcome of a transition: the next state, or the exact error.
public typealias SpecResult = Result<SpecState, AddrSpaceError>

extension SpecState {
    func inserting(_ area: SpecArea, into s: Int) -> SpecState {
        var next = self
        next.spaces[s].areas.append(area)
        next.spaces[s].areas.sort { $0.start < $1.start }
        return next
    }

    /// mapLinear(gpa, hpa, size, flags). Preconditions, in order:
    /// 1. flags are valid; 2. the guest range is valid and managed;
    /// 3. hpa is page aligned; 4. hpa + size fits in 64 bits;
    /// 5. the guest range is free; 6. the host range fits the format's
    /// 52 host address bits.
    public func mapLinear(_ s: Int, gpa: UInt64, hpa: UInt64, size: UInt64, flags: MappingFlags) -> SpecResult {
        if let e = Preconditions.flags(flags) ?? Preconditions.range(environment, s, gpa, size) { return .failure(e) }
        if hpa & 0xFFF != 0 { return .failure(.unaligned(what: "host address", address: hpa)) }
        if hpa.addingReportingOverflow(size).overflow { return .failure(.rangeOverflow(start: hpa, size: size)) }
        if let e = Preconditions.free(spaces[s], gpa, size) { return .failure(e) }
        if hpa >= 1 << 52 || size > (1 << 52) - hpa {
            return .failure(.pageTable(.hostAddressOutOfRange(start: HostPhysAddr(hpa), size: size, addressBits: 52)))
        }
        return .success(inserting(SpecArea(start: gpa, size: size, flags: flags, backing: .linear(hostStart: hpa)), into: s))
    }

    /// mapReserved(gpa, size, flags): linear gpa -> gpa, not owned.
    /// Preconditions: 1. flags; 2. range; 3. the range does not overlap
    /// the allocator's pool (the caller cannot own that memory); 4. free;
    /// 5. host bits.
    public func mapReserved(_ s: Int, gpa: UInt64, size: UInt64, flags: MappingFlags) -> SpecResult {
        if let e = Preconditions.flags(flags) ?? Preconditions.range(environment, s, gpa, size) { return .failure(e) }
        if gpa < environment.poolEnd && environment.poolStart < gpa + size {
            return .failure(.reservedOverlapsAllocator(try! GuestPhysRange(start: GuestPhysAddr(gpa), size: size)))
        }
        if let e = Preconditions.free(spaces[s], gpa, size) { return .failure(e) }
        if gpa >= 1 << 52 || size > (1 << 52) - gpa {
            return .failure(.pageTable(.hostAddressOutOfRange(start: HostPhysAddr(gpa), size: size, addressBits: 52)))
        }
        return .success(inserting(SpecArea(start: gpa, size: size, flags: flags, backing: .reserved), into: s))
    }

    /// mapIdentical(gpa, size, flags): owns host frames at exactly gpa.
    /// Preconditions: 1. flags; 2. range; 3. free; 4. every host frame of
    /// the range is in the pool and not handed out (`hostFree` answers
    /// that from the allocator, which the model does not simulate).
    public func mapIdentical(_ s: Int, gpa: UInt64, size: UInt64, flags: MappingFlags,
                             hostFree: (UInt64, Int) -> Bool) -> SpecResult {
        if let e = Preconditions.flags(flags) ?? Preconditions.range(environment, s, gpa, size) ?? Preconditions.free(spaces[s], gpa, size) {
            return .failure(e)
        }
        let count = Int(size / 0x1000)
        guard hostFree(gpa, count) else {
            return .failure(.identityUnavailable(try! GuestPhysRange(start: GuestPhysAddr(gpa), size: size),
                                                 .unavailable(at: HostPhysAddr(gpa), frames: count)))
        }
        var next = inserting(SpecArea(start: gpa, size: size, flags: flags, backing: .identical), into: s)
        for page in stride(from: gpa, to: gpa + size, by: 0x1000) {
            let t = next.newToken(owner: s)
            next.identityHost[t] = page
            next.spaces[s].frames[page] = t
        }
        return .success(next)
    }

    /// mapAlloc(gpa, size, flags, populate). Preconditions: 1. flags;
    /// 2. range; 3. free. Eager gives every page a fresh zero frame; lazy
    /// gives none.
    public func mapAlloc(_ s: Int, gpa: UInt64, size: UInt64, flags: MappingFlags, eager: Bool) -> SpecResult {
        if let e = Preconditions.flags(flags) ?? Preconditions.range(environment, s, gpa, size) ?? Preconditions.free(spaces[s], gpa, size) {
            return .failure(e)
        }
        var next = inserting(SpecArea(start: gpa, size: size, flags: flags, backing: eager ? .allocEager : .allocLazy), into: s)
        if eager {
            for page in stride(from: gpa, to: gpa + size, by: 0x1000) {
                next.spaces[s].frames[page] = next.newToken(owner: s)
            }
        }
        return .success(next)
    }
}
