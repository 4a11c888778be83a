/// A VM configuration in axvisor's format, as typed values. Numbers are
/// kept as written (UInt64) so that rules, not the parser, judge them.
public struct VMConfig: Equatable, Sendable {
    public enum VMType: Int, Sendable { case host = 0, rtos = 1, linux = 2 }

    public enum MapType: Int, Sendable, CustomStringConvertible {
        case alloc = 0, identical = 1, reserved = 2
        public var description: String {
            switch self {
            case .alloc: "MapAlloc"
            case .identical: "MapIdentical"
            case .reserved: "MapReserved"
            }
        }
    }

    public struct MemoryRegion: Equatable, Sendable {
        public var gpa: UInt64
        public var size: UInt64
        /// Raw MappingFlags bits, unknown bits included (a rule reports them).
        public var flags: UInt64
        public var mapType: MapType
        /// Where it was written: index in memory_regions and the TOML line if known.
        public var index: Int
        public var line: Int?

        public init(gpa: UInt64, size: UInt64, flags: UInt64, mapType: MapType, index: Int, line: Int? = nil) {
            self.gpa = gpa
            self.size = size
            self.flags = flags
            self.mapType = mapType
            self.index = index
            self.line = line
        }
    }

    public struct PassthroughDevice: Equatable, Sendable {
        public var name: String
        public var gpa: UInt64
        public var hpa: UInt64
        public var length: UInt64
        public var irq: UInt64
        public var index: Int
        public var line: Int?

        public init(name: String, gpa: UInt64, hpa: UInt64, length: UInt64, irq: UInt64, index: Int, line: Int? = nil) {
            self.name = name
            self.gpa = gpa
            self.hpa = hpa
            self.length = length
            self.irq = irq
            self.index = index
            self.line = line
        }
    }

    public struct EmulatedDevice: Equatable, Sendable {
        public var name: String
        public var gpa: UInt64
        public var length: UInt64
        public var irq: UInt64
        public var type: UInt64
        public var index: Int

        public init(name: String, gpa: UInt64, length: UInt64, irq: UInt64, type: UInt64, index: Int) {
            self.name = name
            self.gpa = gpa
            self.length = length
            self.irq = irq
            self.type = type
            self.index = index
        }
    }

    /// An image the VM loads into guest memory before it starts.
    public struct LoadedImage: Equatable, Sendable {
        public var kind: String  // "kernel", "bios", "dtb", "ramdisk"
        public var path: String
        public var loadAddress: UInt64
        /// The image's size when its file could be found next to the
        /// configuration; the load range is then [loadAddress, +size).
        public var size: UInt64?

        public init(kind: String, path: String, loadAddress: UInt64, size: UInt64? = nil) {
            self.kind = kind
            self.path = path
            self.loadAddress = loadAddress
            self.size = size
        }
    }

    public var file: String
    public var id: UInt64
    public var name: String
    public var vmType: UInt64
    public var cpuNum: UInt64
    public var physCpuIds: [UInt64]
    public var entryPoint: UInt64
    public var images: [LoadedImage]
    public var cmdline: String?
    public var imageLocation: String?
    public var memoryRegions: [MemoryRegion]
    public var interruptMode: String?
    public var emuDevices: [EmulatedDevice]
    public var passthroughDevices: [PassthroughDevice]
    public var passthroughAddresses: [(gpa: UInt64, length: UInt64)]
    public var excludedDevices: [String]
    /// Devices whose host ranges may be shared between VMs (`shared = [...]`).
    public var sharedDevices: [String]

    public init(file: String, id: UInt64 = 0, name: String = "", vmType: UInt64 = 0, cpuNum: UInt64 = 1, physCpuIds: [UInt64] = [],
                entryPoint: UInt64 = 0, images: [LoadedImage] = [], cmdline: String? = nil, imageLocation: String? = nil,
                memoryRegions: [MemoryRegion] = [], interruptMode: String? = nil, emuDevices: [EmulatedDevice] = [],
                passthroughDevices: [PassthroughDevice] = [], passthroughAddresses: [(gpa: UInt64, length: UInt64)] = [],
                excludedDevices: [String] = [], sharedDevices: [String] = []) {
        self.file = file
        self.id = id
        self.name = name
        self.vmType = vmType
        self.cpuNum = cpuNum
        self.physCpuIds = physCpuIds
        self.entryPoint = entryPoint
        self.images = images
        self.cmdline = cmdline
        self.imageLocation = imageLocation
        self.memoryRegions = memoryRegions
        self.interruptMode = interruptMode
        self.emuDevices = emuDevices
        self.passthroughDevices = passthroughDevices
        self.passthroughAddresses = passthroughAddresses
        self.excludedDevices = excludedDevices
        self.sharedDevices = sharedDevices
    }

    public static func == (a: VMConfig, b: VMConfig) -> Bool {
        a.file == b.file && a.id == b.id && a.name == b.name && a.memoryRegions == b.memoryRegions
            && a.passthroughDevices == b.passthroughDevices && a.images == b.images && a.entryPoint == b.entryPoint
            && a.passthroughAddresses.map(\.gpa) == b.passthroughAddresses.map(\.gpa)
            && a.passthroughAddresses.map(\.length) == b.passthroughAddresses.map(\.length)
    }
}

/// What the host offers (an optional second TOML): RAM ranges, and ranges
/// the hypervisor keeps for itself.
public struct HostDescription: Equatable, Sendable {
    public var ram: [(start: UInt64, size: UInt64)]
    public var hypervisor: [(start: UInt64, size: UInt64)]

    public init(ram: [(start: UInt64, size: UInt64)], hypervisor: [(start: UInt64, size: UInt64)]) {
        self.ram = ram
        self.hypervisor = hypervisor
    }

    public static func == (a: HostDescription, b: HostDescription) -> Bool {
        a.ram.map(\.start) == b.ram.map(\.start) && a.ram.map(\.size) == b.ram.map(\.size)
            && a.hypervisor.map(\.start) == b.hypervisor.map(\.start) && a.hypervisor.map(\.size) == b.hypervisor.map(\.size)
    }
}
