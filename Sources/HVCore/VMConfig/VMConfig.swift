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

        public init(name: String, gpa: UInt64 = 0, hpa: UInt64 = 0, length: UInt64 = 0, irq: UInt64 = 0, index: Int, line: Int? = nil) {
            self.name = name
            self.gpa = gpa
            self.hpa = hpa
            self.length = length
            self.irq = irq
            self.index = index
            self.line = line
        }

        /// Length 0 (usually written as the name alone): the name is a path
        /// in the device tree, and the ranges come from there.
        public var fromDeviceTree: Bool { length == 0 }
    }

    /// An identity window (`passthrough_addresses`): guest == host.
    public struct PassthroughAddress: Equatable, Sendable {
        public var gpa: UInt64
        public var length: UInt64
        public var index: Int
        public var line: Int?

        public init(gpa: UInt64, length: UInt64, index: Int, line: Int? = nil) {
            self.gpa = gpa
            self.length = length
            self.index = index
            self.line = line
        }
    }

    /// The emulated device types axvisor knows (`emu_type`).
    public enum EmulatedDeviceType: UInt64, CaseIterable, Sendable, CustomStringConvertible {
        case dummy = 0x0, interruptController = 0x1, console = 0x2, ivcChannel = 0xA
        case gpptRedistributor = 0x20, gpptDistributor = 0x21, gpptITS = 0x22, ppptGlobal = 0x30
        case virtioBlock = 0xE1, virtioNet = 0xE2, virtioConsole = 0xE3

        public var description: String {
            switch self {
            case .dummy: "dummy"
            case .interruptController: "interrupt controller"
            case .console: "console"
            case .ivcChannel: "inter-VM channel"
            case .gpptRedistributor: "GIC partial pass-through redistributor"
            case .gpptDistributor: "GIC partial pass-through distributor"
            case .gpptITS: "GIC partial pass-through ITS"
            case .ppptGlobal: "PPPT global"
            case .virtioBlock: "virtio block"
            case .virtioNet: "virtio net"
            case .virtioConsole: "virtio console"
            }
        }
    }

    public struct EmulatedDevice: Equatable, Sendable {
        public var name: String
        public var gpa: UInt64
        public var length: UInt64
        public var irq: UInt64
        public var type: EmulatedDeviceType
        public var cfgList: [UInt64]
        public var index: Int
        public var line: Int?

        public init(name: String, gpa: UInt64, length: UInt64, irq: UInt64, type: EmulatedDeviceType, cfgList: [UInt64] = [], index: Int, line: Int? = nil) {
            self.name = name
            self.gpa = gpa
            self.length = length
            self.irq = irq
            self.type = type
            self.cfgList = cfgList
            self.index = index
            self.line = line
        }
    }

    /// How the VM handles interrupts (`interrupt_mode`; each spelling axvisor accepts maps here).
    public enum InterruptMode: String, Sendable {
        case noIRQ = "no_irq", emulated = "emu", passthrough = "passthrough"

        public init?(spelling: String) {
            switch spelling {
            case "no_irq", "no", "none": self = .noIRQ
            case "emu", "emulated": self = .emulated
            case "passthrough", "pt": self = .passthrough
            default: return nil
            }
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
        /// The line of its load address.
        public var line: Int?

        public init(kind: String, path: String, loadAddress: UInt64, size: UInt64? = nil, line: Int? = nil) {
            self.kind = kind
            self.path = path
            self.loadAddress = loadAddress
            self.size = size
            self.line = line
        }
    }

    public var file: String
    public var id: UInt64
    public var name: String
    public var vmType: UInt64
    public var cpuNum: UInt64
    public var physCpuIds: [UInt64]?
    public var physCpuSets: [UInt64]?
    public var entryPoint: UInt64
    public var images: [LoadedImage]
    public var cmdline: String?
    public var imageLocation: String?
    public var diskPath: String?
    public var memoryRegions: [MemoryRegion]
    public var interruptMode: InterruptMode
    public var emuDevices: [EmulatedDevice]
    public var passthroughDevices: [PassthroughDevice]
    public var passthroughAddresses: [PassthroughAddress]
    /// Device-tree subtrees kept out of name-only pass-through.
    public var excludedDevices: [[String]]
    /// Devices whose host ranges may be shared between VMs (`shared = [...]`, an HVKit key).
    public var sharedDevices: [String]
    /// The line each scalar key was written on ("base.cpu_num": 5).
    public var lines: [String: Int]

    public init(file: String, id: UInt64 = 0, name: String = "", vmType: UInt64 = 0, cpuNum: UInt64 = 1, physCpuIds: [UInt64]? = nil,
                physCpuSets: [UInt64]? = nil, entryPoint: UInt64 = 0, images: [LoadedImage] = [], cmdline: String? = nil,
                imageLocation: String? = nil, diskPath: String? = nil, memoryRegions: [MemoryRegion] = [], interruptMode: InterruptMode = .noIRQ,
                emuDevices: [EmulatedDevice] = [], passthroughDevices: [PassthroughDevice] = [], passthroughAddresses: [PassthroughAddress] = [],
                excludedDevices: [[String]] = [], sharedDevices: [String] = [], lines: [String: Int] = [:]) {
        self.file = file
        self.id = id
        self.name = name
        self.vmType = vmType
        self.cpuNum = cpuNum
        self.physCpuIds = physCpuIds
        self.physCpuSets = physCpuSets
        self.entryPoint = entryPoint
        self.images = images
        self.cmdline = cmdline
        self.imageLocation = imageLocation
        self.diskPath = diskPath
        self.memoryRegions = memoryRegions
        self.interruptMode = interruptMode
        self.emuDevices = emuDevices
        self.passthroughDevices = passthroughDevices
        self.passthroughAddresses = passthroughAddresses
        self.excludedDevices = excludedDevices
        self.sharedDevices = sharedDevices
        self.lines = lines
    }

    /// The image of one kind ("kernel", "bios", "dtb", "ramdisk"), if any.
    public func image(_ kind: String) -> LoadedImage? { images.first { $0.kind == kind } }
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
