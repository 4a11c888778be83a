import HVCore

extension SpecState {
    /// The error, if any, of touching `[gpa, gpa + length)` of space `s`
    /// with `access`, checked page by page from the start: a page that is
    /// unmapped, lazy and absent, lacking the access, or not host memory
    /// stops it, and the error names the first address of that page inside
    /// the range.
    public func accessError(_ s: Int, gpa: UInt64, length: UInt64, access: MappingFlags) -> AddrSpaceError? {
        guard length > 0 else { return nil }
        if gpa.addingReportingOverflow(length).overflow { return .rangeOverflow(start: gpa, size: length) }
        var cursor = gpa
        let end = gpa + length
        while cursor < end {
            let here = GuestPhysAddr(cursor)
            switch page(s, cursor) {
            case .unmapped: return .unmapped(here)
            case .lazyAbsent: return .notPresent(here)
            case let .fixed(host, flags):
                if !flags.isSuperset(of: access.intersection(.rwx)) { return .accessDenied(here, needed: access, granted: flags) }
                let hostHere = host + (cursor & 0xFFF)
                let chunkEnd = min(end, (cursor & ~0xFFF) + 0x1000)
                if !environment.isHostMemory(hostHere) || !environment.isHostMemory(hostHere + (chunkEnd - cursor) - 1) {
                    return .notHostMemory(here, HostPhysAddr(hostHere))
                }
            case let .frame(_, flags):
                if !flags.isSuperset(of: access.intersection(.rwx)) { return .accessDenied(here, needed: access, granted: flags) }
            }
            cursor = (cursor & ~0xFFF) + 0x1000
        }
        return nil
    }

    /// write(UInt64 at gpa): needs WRITE on every byte. Words are tracked
    /// only on frame pages (fixed host pages are not the space's memory).
    public func writeWord(_ s: Int, gpa: UInt64, value: UInt64) -> SpecResult {
        if let e = accessError(s, gpa: gpa, length: 8, access: .write) { return .failure(e) }
        var next = self
        next.words[s, default: [:]][gpa] = value
        return .success(next)
    }

    /// read(UInt64 at gpa): the last word written there, zero if none.
    public func readWord(_ s: Int, gpa: UInt64) -> Result<UInt64, AddrSpaceError> {
        if let e = accessError(s, gpa: gpa, length: 8, access: .read) { return .failure(e) }
        return .success(words[s]?[gpa] ?? 0)
    }
}
