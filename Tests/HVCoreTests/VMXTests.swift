import HVCore
import Testing

@Suite("VMX structures")
struct VMXTests {
    static func tracker() -> TrackingAllocator { TrackingAllocator(HeapFramePool(capacity: 16 * frameSize)) }

    @Test func vmxRegionLayout() throws {
        let t = Self.tracker()
        do {
            let r = try VmxRegion(revision: 0x12, allocator: t)
            #expect(r.header == 0x12)
            let s = try VmxRegion(revision: 0x7FFF_FFFF, shadow: true, allocator: t)
            #expect(s.header == 0xFFFF_FFFF)
            #expect(s.frame.withUnsafeBytes { $0.dropFirst(4).allSatisfy { $0 == 0 } }, "the rest of the frame is zero")
            #expect(t.liveFrames == 2)
        }
        #expect(t.liveFrames == 0, "regions give their frames back")
        #expect(throws: VMXError.zeroRevision) { _ = try VmxRegion(revision: 0, allocator: t) }
        #expect(throws: VMXError.revisionTooWide(0x8000_0001)) { _ = try VmxRegion(revision: 0x8000_0001, allocator: t) }
        #expect(t.liveFrames == 0)
    }

    @Test func ioBitmapCoversEveryPortAndItsEdges() throws {
        let t = Self.tracker()
        let io = try IOBitmap(allocator: t)
        // Every one of the 65,536 ports can be intercepted and passed, and
        // lands in the right frame at the right bit.
        for port in 0...0xFFFF {
            let p = UInt16(port)
            io.intercept(p)
            let inA = io.a.withUnsafeBytes { $0[(port & 0x7FFF) >> 3] & (1 << (port & 7)) != 0 }
            let inB = io.b.withUnsafeBytes { $0[(port & 0x7FFF) >> 3] & (1 << (port & 7)) != 0 }
            if (port < 0x8000 ? !inA || inB : inA || !inB) { Issue.record("port \(port) set the wrong bit"); break }
            if !io.isIntercepted(p) { Issue.record("port \(port) not intercepted"); break }
            io.pass(p)
            if io.isIntercepted(p) { Issue.record("port \(port) not passed"); break }
        }
        #expect(holds(io.a.withUnsafeBytes { $0.allSatisfy { $0 == 0 } } && io.b.withUnsafeBytes { $0.allSatisfy { $0 == 0 } }))
        // Accesses that straddle A/B or run past 0xFFFF.
        io.intercept(0x8000)
        #expect(holds(io.exits(port: 0x7FFF, width: 2)), "a word at 0x7FFF touches 0x8000 in B")
        #expect(holds(io.exits(port: 0x7FFD, width: 4)))
        #expect(holds(!io.exits(port: 0x7FFC, width: 4)))
        #expect(holds(!io.exits(port: 0x7FFF, width: 1)))
        #expect(holds(io.exits(port: 0xFFFF, width: 2)), "wraps past 0xFFFF")
        #expect(holds(io.exits(port: 0xFFFD, width: 4)))
        #expect(holds(!io.exits(port: 0xFFFC, width: 4)))
        io.intercept(0x3F8...0x3FF)
        #expect(holds(io.exits(port: 0x3F8, width: 1) && io.exits(port: 0x3FF, width: 1) && !io.exits(port: 0x400, width: 1)))
        // Upstream's panic: ports at or above 0x2000 in either half.
        io.intercept(0x2000); io.intercept(0xA000)
        #expect(holds(io.isIntercepted(0x2000) && io.isIntercepted(0xA000)))
    }

    @Test func msrBitmapQuartersAndBoundaries() throws {
        let t = Self.tracker()
        let msr = try MsrBitmap(allocator: t)
        #expect(MsrBitmap.bit(msr: 0, write: false) == 0)
        #expect(MsrBitmap.bit(msr: 0x1FFF, write: false) == 0x1FFF)
        #expect(MsrBitmap.bit(msr: 0x2000, write: false) == nil)
        #expect(MsrBitmap.bit(msr: 0xC000_0000, write: false) == 0x400 * 8)
        #expect(MsrBitmap.bit(msr: 0xC000_1FFF, write: false) == 0x400 * 8 + 0x1FFF)
        #expect(MsrBitmap.bit(msr: 0xC000_2000, write: false) == nil)
        #expect(MsrBitmap.bit(msr: 0xBFFF_FFFF, write: true) == nil)
        #expect(MsrBitmap.bit(msr: 0x10, write: true) == 0x800 * 8 + 0x10)
        #expect(MsrBitmap.bit(msr: 0xC000_0080, write: true) == 0xC00 * 8 + 0x80)
        // Nothing intercepted: covered MSRs pass, uncovered ones always exit.
        #expect(holds(!msr.exits(msr: 0x10, write: false) && msr.exits(msr: 0x2000, write: false) && msr.exits(msr: 0xFFFF_FFFF, write: true)))
        msr.intercept(0xC000_0080, read: false, write: true)  // EFER writes
        #expect(holds(msr.exits(msr: 0xC000_0080, write: true) && !msr.exits(msr: 0xC000_0080, write: false)))
        msr.intercept(0x1FFF)
        #expect(holds(msr.exits(msr: 0x1FFF, write: false) && msr.exits(msr: 0x1FFF, write: true) && !msr.exits(msr: 0x1FFE, write: false)))
        msr.pass(0x1FFF)
        #expect(holds(!msr.exits(msr: 0x1FFF, write: false)))
        // Each quarter is where the SDM puts it.
        msr.intercept(0x0, read: true, write: false)
        msr.intercept(0xC000_0000, read: true, write: false)
        msr.intercept(0x0, read: false, write: true)
        msr.intercept(0xC000_0000, read: false, write: true)
        msr.frame.withUnsafeBytes { b in
            #expect(b[0x000] & 1 == 1 && b[0x400] & 1 == 1 && b[0x800] & 1 == 1 && b[0xC00] & 1 == 1)
        }
    }

    @Test func eptPointerValidation() throws {
        let p = try EPTPointer(root: HostPhysAddr(0x1234_5000), accessedDirty: true)
        #expect(p.raw == 0x1234_505E && p.walkLength == 4 && p.memoryType == 6 && p.accessedDirty)
        #expect(throws: VMXError.invalidMemoryType(1)) { try EPTPointer(validating: 0x1234_5019) }
        #expect(throws: VMXError.invalidWalkLength(3)) { try EPTPointer(validating: 0x1234_5016) }
        #expect(throws: VMXError.invalidWalkLength(5)) { try EPTPointer(validating: 0x1234_5026) }
        #expect(try EPTPointer(validating: 0x1234_5026, allowFiveLevel: true).walkLength == 5)
        #expect(throws: VMXError.reservedBitsSet(0x80)) { try EPTPointer(validating: 0x1234_509E) }
        #expect(throws: VMXError.self) { try EPTPointer(validating: (1 << 40) | 0x1E, physicalAddressBits: 39) }
        #expect(throws: VMXError.self) { try EPTPointer(root: HostPhysAddr(0x1234_5010)) }
        #expect(throws: VMXError.self) { try EPTPointer(root: HostPhysAddr(1 << 46), physicalAddressBits: 46) }
        #expect(try EPTPointer(root: HostPhysAddr(0x1000), memoryType: 0).memoryType == 0)
    }
}

func holds(_ condition: Bool) -> Bool { condition }
