/// A validated EPT pointer (VMCS field 0x201A).
public struct EPTPointer: Equatable, Sendable, CustomStringConvertible {
    public let raw: UInt64

    public var memoryType: UInt64 { raw & 7 }
    public var walkLength: UInt64 { ((raw >> 3) & 7) + 1 }
    public var accessedDirty: Bool { raw & (1 << 6) != 0 }
    public var root: HostPhysAddr { HostPhysAddr(raw & EPTBits.addressMask) }

    /// Builds one from fields through the proved encoding kernel, after
    /// checking each field (a root below 4 KiB alignment is refused too).
    public init(root: HostPhysAddr, memoryType: UInt64 = EPTBits.memoryTypeWB, walkLength: UInt64 = 4,
                accessedDirty: Bool = false, physicalAddressBits: Int = 52, allowFiveLevel: Bool = false) throws(VMXError) {
        guard memoryType == EPTBits.memoryTypeUC || memoryType == EPTBits.memoryTypeWB else { throw .invalidMemoryType(memoryType) }
        guard walkLength == 4 || (walkLength == 5 && allowFiveLevel) else { throw .invalidWalkLength(walkLength) }
        guard root.isAligned(to: .size4K) else { throw .reservedBitsSet(root.raw & 0xFFF) }
        try self.init(validating: Kernels.eptPointer(root: root.raw, memoryType: memoryType, walkLength: walkLength, accessedDirty: accessedDirty),
                      physicalAddressBits: physicalAddressBits, allowFiveLevel: allowFiveLevel)
        guard self.root == root else { throw .addressBeyondWidth(address: root.raw, bits: physicalAddressBits) }
    }

    /// Checks a raw value: memory type UC or WB, walk length 4 (or 5 when
    /// allowed), reserved bits 11:7 clear, nothing at or above the
    /// physical-address width.
    public init(validating raw: UInt64, physicalAddressBits: Int = 52, allowFiveLevel: Bool = false) throws(VMXError) {
        let type = raw & 7
        guard type == EPTBits.memoryTypeUC || type == EPTBits.memoryTypeWB else { throw .invalidMemoryType(type) }
        let walk = ((raw >> 3) & 7) + 1
        guard walk == 4 || (walk == 5 && allowFiveLevel) else { throw .invalidWalkLength(walk) }
        if raw & Kernels.eptpReservedLow != 0 { throw .reservedBitsSet(raw & Kernels.eptpReservedLow) }
        let high = physicalAddressBits >= 64 ? 0 : raw >> UInt64(physicalAddressBits)
        if high != 0 { throw .addressBeyondWidth(address: raw & ~0xFFF, bits: physicalAddressBits) }
        self.raw = raw
    }

    public var description: String { "EPTP \(hex(raw)) (type \(memoryType), \(walkLength)-level, A/D \(accessedDirty ? "on" : "off"), root \(root))" }
}
