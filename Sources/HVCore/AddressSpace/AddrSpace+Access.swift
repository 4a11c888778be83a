/// Host access to guest memory: the byte buffers behind a guest range, and
/// reads and writes built on them.
extension AddrSpace {
    /// Host buffers covering `[gpa, gpa + length)`, split where the host side
    /// stops being contiguous. Fails if any byte is unmapped, lazy and not yet
    /// present, or lacks `access`. Every byte is checked page by page, so a
    /// range running past an area's end fails instead of reading beyond it.
    ///
    /// The buffers stay valid until the range is next unmapped; use
    /// `read`/`write` for access that holds the lock throughout.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func translatedBuffers(_ gpa: GuestPhysAddr, length: Int, access: MappingFlags) throws(AddrSpaceError) -> [UnsafeMutableRawBufferPointer] {
        // The pointers are plain values built under the lock; handing them out is the point.
        nonisolated(unsafe) var out: [UnsafeMutableRawBufferPointer] = []
        try state.withLock { (s: inout State) throws(AddrSpaceError) in
            out = try Self.buffers(s, gpa, length, access, allocator, bugs)
        }
        return out
    }

    static func buffers(
        _ s: borrowing State, _ gpa: GuestPhysAddr, _ length: Int, _ access: MappingFlags, _ allocator: any FrameAllocator,
        _ bugs: SeededBugSwitch
    ) throws(AddrSpaceError) -> [UnsafeMutableRawBufferPointer] {
        guard length > 0 else { return [] }
        let (end, overflow) = gpa.raw.addingReportingOverflow(UInt64(length))
        if overflow { throw .rangeOverflow(start: gpa.raw, size: UInt64(length)) }
        if bugs.on(.buffersCheckAreaSizeNotEnd), let area = s.areas.area(containing: gpa.raw), UInt64(length) <= area.size,
           let t = s.table.query(gpa), t.flags.isSuperset(of: access.intersection(.rwx)), let p = allocator.hostVirtual(t.hostAddress) {
            // The upstream check: the length fits the area's size, so the
            // rest is assumed to follow contiguously.
            return [UnsafeMutableRawBufferPointer(start: p, count: length)]
        }
        var result: [UnsafeMutableRawBufferPointer] = []
        var cursor = gpa.raw
        while cursor < end {
            let here = GuestPhysAddr(cursor)
            guard let t = s.table.query(here) else {
                if let area = s.areas.area(containing: cursor), case .alloc(.lazy) = area.backend { throw .notPresent(here) }
                throw .unmapped(here)
            }
            guard t.flags.isSuperset(of: access.intersection(.rwx)) else {
                throw .accessDenied(here, needed: access, granted: t.flags)
            }
            let leafEnd = t.leafStart.raw + t.pageSize.bytes
            let chunk = Int(min(end, leafEnd) - cursor)
            guard let p = allocator.hostVirtual(t.hostAddress), allocator.hostVirtual(HostPhysAddr(t.hostAddress.raw + UInt64(chunk) - 1)) != nil else {
                throw .notHostMemory(here, t.hostAddress)
            }
            if let last = result.last, last.baseAddress! + last.count == p {
                result[result.count - 1] = UnsafeMutableRawBufferPointer(start: last.baseAddress, count: last.count + chunk)
            } else {
                result.append(UnsafeMutableRawBufferPointer(start: p, count: chunk))
            }
            cursor += UInt64(chunk)
        }
        return result
    }

    /// Copies guest bytes at `gpa` into `destination`. Needs READ.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func read(_ gpa: GuestPhysAddr, into destination: UnsafeMutableRawBufferPointer) throws(AddrSpaceError) {
        try state.withLock { (s: inout State) throws(AddrSpaceError) in
            var offset = 0
            for b in try Self.buffers(s, gpa, destination.count, .read, allocator, bugs) {
                UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + b.count)]).copyMemory(from: UnsafeRawBufferPointer(b))
                offset += b.count
            }
        }
    }

    /// Copies `bytes` into guest memory at `gpa`. Needs WRITE.
    @_specialize(exported: true, where Format == EPTFormat)
    @_specialize(exported: true, where Format == Stage2IPA40Format)
    @_specialize(exported: true, where Format == Sv39x4Format)
    @_specialize(exported: true, where Format == Sv48x4Format)
    public func write(_ gpa: GuestPhysAddr, from bytes: UnsafeRawBufferPointer) throws(AddrSpaceError) {
        try state.withLock { (s: inout State) throws(AddrSpaceError) in
            var offset = 0
            for b in try Self.buffers(s, gpa, bytes.count, .write, allocator, bugs) {
                b.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + b.count)]))
                offset += b.count
            }
        }
    }

    public func readBytes(_ gpa: GuestPhysAddr, count: Int) throws(AddrSpaceError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let result = out.withUnsafeMutableBytes { buffer in
            Result { () throws(AddrSpaceError) in try read(gpa, into: buffer) }
        }
        try result.get()
        return out
    }

    public func writeBytes(_ gpa: GuestPhysAddr, _ bytes: [UInt8]) throws(AddrSpaceError) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(AddrSpaceError) in try write(gpa, from: buffer) }
        }.get()
    }

    /// A trivial value read from guest memory (any alignment, little-endian as stored).
    public func read<T: BitwiseCopyable>(_ type: T.Type, at gpa: GuestPhysAddr) throws(AddrSpaceError) -> T {
        let bytes = try readBytes(gpa, count: MemoryLayout<T>.size)
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    public func write<T: BitwiseCopyable>(_ value: T, at gpa: GuestPhysAddr) throws(AddrSpaceError) {
        var v = value
        try withUnsafeBytes(of: &v) { buffer in
            Result { () throws(AddrSpaceError) in try write(gpa, from: buffer) }
        }.get()
    }
}
