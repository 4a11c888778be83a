/// The nested page-table formats by name, for command lines and campaigns
/// that pick one at run time and then run generic code on its type.
public enum NestedFormat: String, CaseIterable, Sendable, CustomStringConvertible {
    case ept, stage2, sv39x4, sv48x4

    /// The format's type: stage 2 is the 40-bit IPA layout (QEMU virt's and
    /// most boards' PARange); `Stage2IPA48Format` is there for 48-bit IPAs.
    public var type: any PageTableFormat.Type {
        switch self {
        case .ept: EPTFormat.self
        case .stage2: Stage2IPA40Format.self
        case .sv39x4: Sv39x4Format.self
        case .sv48x4: Sv48x4Format.self
        }
    }

    public var description: String { rawValue }

    /// Runs generic code on the format's type.
    public func accept<V: NestedFormatVisitor>(_ visitor: V) -> V.Result {
        switch self {
        case .ept: visitor.visit(EPTFormat.self)
        case .stage2: visitor.visit(Stage2IPA40Format.self)
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
