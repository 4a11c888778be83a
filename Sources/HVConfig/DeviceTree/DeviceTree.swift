/// A device tree as read from a blob, with what the checker needs of it:
/// node paths, `#address-cells`/`#size-cells` inheritance, `reg` decoded
/// in the parent bus's cells and translated to CPU addresses through the
/// `ranges` of every bus above it.
public struct DeviceTree: Sendable {
    public struct Node: Sendable {
        public var name: String
        public var properties: [(String, [UInt8])] = []
        public var children: [Node] = []

        init(name: String) { self.name = name }

        public func property(_ name: String) -> [UInt8]? { properties.first { $0.0 == name }?.1 }
        public func string(_ name: String) -> String? {
            property(name).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        /// Every string of a string list (`compatible`).
        public func strings(_ name: String) -> [String] {
            (property(name) ?? []).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        }
        public func cell(_ name: String) -> UInt32? {
            guard let p = property(name), p.count == 4 else { return nil }
            return FlattenedDeviceTree.word(p, 0)
        }
    }

    /// One address range a node describes, in CPU (root) addresses when
    /// translation succeeded.
    public struct Range: Equatable, Sendable {
        public let path: String
        /// The address as written in `reg` (what axvisor uses).
        public let address: UInt64
        /// The address after the parent buses' `ranges`, or nil when some
        /// bus on the way has no `ranges` (not memory-mapped there) or no
        /// window holds it.
        public let translated: UInt64?
        public let size: UInt64
        /// "reg", or "ranges" for a PCIe host bridge's windows.
        public let source: String

        public init(path: String, address: UInt64, translated: UInt64?, size: UInt64, source: String) {
            self.path = path
            self.address = address
            self.translated = translated
            self.size = size
            self.source = source
        }
    }

    public let root: Node
    /// Every node by path ("/", "/soc", "/soc/serial@9000000").
    public let paths: [String]
    /// Every node's ranges by path, decoded once when the blob is read.
    private let rangesByPath: [String: [Range]]

    init(root: Node) throws(DeviceTreeError) {
        self.root = root
        var paths: [String] = []
        func walk(_ n: Node, _ path: String) {
            paths.append(path)
            for c in n.children { walk(c, path == "/" ? "/" + c.name : path + "/" + c.name) }
        }
        walk(root, "/")
        self.paths = paths
        // Decoded now, so a bad blob is an error when it is read, not a surprise later.
        rangesByPath = try Self.decodeRanges(root)
    }

    static func number(_ cells: ArraySlice<UInt8>) -> UInt64 {
        // More than two cells (PCI's phys.hi): the low 64 bits.
        cells.suffix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    struct Bus {
        let addressCells: Int, sizeCells: Int
        /// (child address, parent address, size) triples of the bus node's
        /// `ranges`, in the bus's parent's addresses; nil: no `ranges`.
        let windows: [(UInt64, UInt64, UInt64)]?
        let identity: Bool
    }

    /// Translates an address of a bus's children to a root address through
    /// the buses from the innermost out.
    static func translate(_ address: UInt64, size: UInt64, through buses: [Bus]) -> UInt64? {
        var a = address
        for bus in buses.reversed() {
            if bus.identity { continue }
            guard let windows = bus.windows,
                  let w = windows.first(where: { a >= $0.0 && a &- $0.0 < $0.2 && size <= $0.2 - (a &- $0.0) }) else { return nil }
            a = w.1 &+ (a &- w.0)
        }
        return a
    }

    /// Every `reg` range of every node (with the cells its parent gives)
    /// and every window of a PCIe host bridge's `ranges`, by node path.
    public func ranges() -> [String: [Range]] { rangesByPath }

    static func decodeRanges(_ root: Node) throws(DeviceTreeError) -> [String: [Range]] {
        var out: [String: [Range]] = [:]
        func decode(_ bytes: [UInt8], _ groups: [Int], path: String, property: String) throws(DeviceTreeError) -> [[UInt64]] {
            let width = groups.reduce(0, +) * 4
            guard width > 0 else { return [] }
            guard bytes.count % width == 0 else { throw .badCells(path: path, property: property, length: bytes.count, cellBytes: width) }
            return stride(from: 0, to: bytes.count, by: width).map { start in
                var k = start
                return groups.map { n in
                    defer { k += n * 4 }
                    return Self.number(bytes[k..<(k + n * 4)])
                }
            }
        }
        func cells(_ n: Node, _ name: String, default d: Int, path: String) throws(DeviceTreeError) -> Int {
            guard let p = n.property(name) else { return d }
            guard p.count == 4 else { throw .badCells(path: path, property: name, length: p.count, cellBytes: 4) }
            return Int(FlattenedDeviceTree.word(p, 0))
        }
        // `buses` are the ancestors below the root with their translation;
        // (ac, sc) are the cells the node's parent gives its children.
        func walk(_ n: Node, path: String, ac: Int, sc: Int, buses: [Bus]) throws(DeviceTreeError) {
            var mine: [Range] = []
            if let reg = n.property("reg"), path != "/" {
                for r in try decode(reg, [ac, sc], path: path, property: "reg") {
                    mine.append(Range(path: path, address: r[0], translated: Self.translate(r[0], size: r[1], through: buses), size: r[1], source: "reg"))
                }
            }
            let childAC = try cells(n, "#address-cells", default: 2, path: path), childSC = try cells(n, "#size-cells", default: 1, path: path)
            let isPCI = n.string("device_type") == "pci" || n.strings("compatible").contains { $0.hasPrefix("pci-host") }
            var windows: [(UInt64, UInt64, UInt64)]?
            var identity = false
            if let r = n.property("ranges"), path != "/" {
                if r.isEmpty {
                    identity = true
                } else {
                    windows = try decode(r, [childAC, ac, childSC], path: path, property: "ranges").map { ($0[0], $0[1], $0[2]) }
                }
            }
            if isPCI, let windows {
                for (_, parentAddress, size) in windows {
                    mine.append(Range(path: path, address: parentAddress, translated: Self.translate(parentAddress, size: size, through: buses),
                                      size: size, source: "ranges"))
                }
            }
            if !mine.isEmpty { out[path] = mine }
            // A PCI bridge's children are addressed in configuration space,
            // not memory: their reg is not MMIO.
            guard !isPCI else { return }
            let bus = Bus(addressCells: childAC, sizeCells: childSC, windows: windows, identity: identity)
            for c in n.children {
                try walk(c, path: path + "/" + c.name, ac: childAC, sc: childSC, buses: buses + [bus])
            }
        }
        let rootAC = try cells(root, "#address-cells", default: 2, path: "/"), rootSC = try cells(root, "#size-cells", default: 1, path: "/")
        for c in root.children {
            try walk(c, path: "/" + c.name, ac: rootAC, sc: rootSC, buses: [])
        }
        return out
    }

    /// The node at a path and the path spelled with every unit address;
    /// a part may leave out its unit address when no sibling shares the name.
    func lookup(_ path: String) -> (Node, String)? {
        guard path.hasPrefix("/") else { return nil }
        var n = root, spelled = ""
        for part in path.split(separator: "/") {
            let exact = n.children.first { $0.name == part }
            let loose = n.children.filter { $0.name.split(separator: "@").first.map(String.init) == String(part) }
            guard let c = exact ?? (loose.count == 1 ? loose[0] : nil) else { return nil }
            n = c
            spelled += "/" + c.name
        }
        return (n, spelled.isEmpty ? "/" : spelled)
    }

    public func node(at path: String) -> Node? { lookup(path)?.0 }
    public func canonicalPath(_ path: String) -> String? { lookup(path)?.1 }

    /// Memory nodes (device_type "memory") and /reserved-memory hold RAM,
    /// not devices.
    public func isMemoryNode(_ path: String) -> Bool {
        if path == "/reserved-memory" || path.hasPrefix("/reserved-memory/") { return true }
        guard let n = node(at: path) else { return false }
        return n.string("device_type") == "memory" || n.name == "memory" || n.name.hasPrefix("memory@")
    }
}
