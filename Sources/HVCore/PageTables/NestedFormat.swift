/// The nested page-table formats by name, for command lines and campaigns
/// that pick one at run time and then run generic code on its type.
public enum NestedFormat: String, CaseIterable, Sendable, CustomStringConvertible {
    case ept, stage2, stage2IPA48 = "stage2-48", sv39x4, sv48x4

    /// The formats the model-based campaign runs by default: one per
    /// architecture mode (stage 2 with its common 40-bit IPA).
    public static let campaign: [NestedFormat] = [.ept, .stage2, .sv39x4, .sv48x4]

    /// The format's type: stage 2 is the 40-bit IPA layout (QEMU virt's and
    /// most boards' PARange); `Stage2IPA48Format` is there for 48-bit IPAs.
    public var type: any PageTableFormat.Type {
        switch self {
        case .ept: EPTFormat.self
        case .stage2: Stage2IPA40Format.self
        case .stage2IPA48: Stage2IPA48Format.self
        case .sv39x4: Sv39x4Format.self
        case .sv48x4: Sv48x4Format.self
        }
    }

    /// The root register value(s) of a table of this format rooted at
    /// `root` for VM `vmid`, by name.
    public func rootRegisters(root: UInt64, vmid: UInt16) -> [(name: String, value: UInt64)] {
        switch self {
        case .ept: [("EPTP", Kernels.eptPointer(root: root, memoryType: EPTBits.memoryTypeWB, walkLength: 4, accessedDirty: false))]
        case .stage2: [("VTTBR_EL2", Kernels.vttbr(root: root, vmid: UInt64(vmid))), ("VTCR_EL2", Stage2IPA40Format.vtcr)]
        case .stage2IPA48: [("VTTBR_EL2", Kernels.vttbr(root: root, vmid: UInt64(vmid))), ("VTCR_EL2", Stage2IPA48Format.vtcr)]
        case .sv39x4: [("hgatp", Kernels.hgatp(root: root, vmid: UInt64(vmid), mode: Sv39x4Format.hgatpMode))]
        case .sv48x4: [("hgatp", Kernels.hgatp(root: root, vmid: UInt64(vmid), mode: Sv48x4Format.hgatpMode))]
        }
    }

    public var description: String { rawValue }

    /// Runs generic code on the format's type.
    public func accept<V: NestedFormatVisitor>(_ visitor: V) -> V.Result {
        switch self {
        case .ept: visitor.visit(EPTFormat.self)
        case .stage2: visitor.visit(Stage2IPA40Format.self)
        case .stage2IPA48: visitor.visit(Stage2IPA48Format.self)
        case .sv39x4: visitor.visit(Sv39x4Format.self)
        case .sv48x4: visitor.visit(Sv48x4Format.self)
        }
    }
}

/// Generic code to run on a format chosen at run time.
public protocol NestedFormatVisitor {
    associatedtype Result
    func visit<F: PageTableFormat>(_ format: F.Type) -> Result
}
