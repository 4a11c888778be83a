import CBenchYardstick
import HVCore
import HVKVM

/// The workload groups of `hvkit bench addrspace`.
enum AddrSpaceWorkloads {
    static let groups = ["populate", "linear", "lazy", "small"]
}

/// The addrspace workloads of ../shared/BENCHMARKS.md, run exactly as
/// written there: same addresses, seeds and counts, on any page-table
/// format (figures of a format other than EPT carry its name as a suffix).
struct AddrSpaceBenchmark<Format: PageTableFormat> {
    static var gib: UInt64 { 0x4000_0000 }
    static var pages1G: Int { 262_144 }
    let pool: HeapFramePool
    let progress: (String) -> Void
    /// Workload groups to run.
    let only: Set<String>

    /// - Parameter only: the workload groups to run; the pool is sized for them
    ///   (1 GiB regions need 1.25 GiB, the small regions 64 MiB).
    /// "" for EPT, "_stage2" and so on for the others.
    let formatSuffix: String

    init(only: Set<String>, formatSuffix: String, progress: @escaping (String) -> Void) throws {
        self.only = only
        self.formatSuffix = formatSuffix
        let big = !only.isDisjoint(with: ["populate", "lazy"])
        let capacity: UInt64 = big ? 5 * Self.gib / 4 : 64 << 20
        // Host memory as a VMM has it: fresh anonymous memory the pool knows
        // is zero, frames freed with data scrubbed in bulk by the host
        // (MADV_DONTNEED) after each workload; that time, and any zeroing on
        // the way, is the workload's zeroing_cpu_ms.
        progress("mapping a \(capacity >> 20) MiB frame pool")
        pool = try HostMemoryPool.make(capacity: capacity)
        self.progress = progress
    }

    func makeSpace(_ backing: BackingPolicy, _ zeroing: FrameZeroing = .always) throws -> AddrSpace<Format> {
        try AddrSpace<Format>(range: try GuestPhysRange(start: GuestPhysAddr(0), size: 1 << 40), allocator: pool,
                         backing: backing, zeroing: zeroing)
    }

    /// The C yardsticks of this run (format-independent: a four-level walk).
    static func yardsticks(into figures: inout Figures) {
        figures.record("yardstick_c_walk_ns", "ns/op", hv_yardstick_walk_ns(0xA5A5_0003, 1_000_000))
        figures.record("yardstick_c_fault_ns", "ns/op", hv_yardstick_fault_ns(0xA5A5_0005, 100_000, 0))
        figures.record("yardstick_c_fault_locked_ns", "ns/op", hv_yardstick_fault_ns(0xA5A5_0005, 100_000, 1))
    }

    /// One pass over every workload; `record` is false for the warm-up.
    func pass(into figures: inout Figures, record: Bool) throws {
        func put(_ name: String, _ unit: String, _ value: Double) { if record { figures.record(name + formatSuffix, unit, value) } }
        /// The zeroing time of `workload` (its scrub included), as a figure.
        func zeroing(_ workload: String, since start: Double) {
            pool.scrub()
            put("zeroing_cpu_ms_" + workload, "ms", pool.zeroingMilliseconds - start)
        }
        let gib = Self.gib
        let rwx: MappingFlags = .rwx
        let region = GuestPhysAddr(gib)

        // Eager Alloc of 1 GiB with 4 KiB frames, random translates, unmap.
        let variants: [(String, BackingPolicy, FrameZeroing)] = [
            ("", .frames4K, .always), ("_nozero", .frames4K, .unsafeNeverForBenchmarks), ("_huge", .huge2MWhenPossible, .always),
        ]
        for (suffix, backing, zeroingPolicy) in variants where only.contains("populate") {
            let zeroStart = pool.zeroingMilliseconds
            let space = try makeSpace(backing, zeroingPolicy)
            let tablesBefore = space.tableFrameCount
            let populate = try measure { try space.mapAlloc(region, size: gib, flags: rwx, populate: .eager) }
            put("map_alloc_populate_1g_ms" + suffix, "ms", populate / 1e6)
            put("map_alloc_populate_ns_per_page" + suffix, "ns/page", populate / Double(Self.pages1G))
            put("map_alloc_populate_pt_mem_kib" + suffix, "KiB", Double((space.tableFrameCount - tablesBefore) * 4) + Double(Format.rootBytes) / 1024)
            var rng = SplitMix64(seed: 0xA5A5_0003)
            var sink: UInt64 = 0
            for _ in 0..<10_000 { sink &+= space.translate(GuestPhysAddr(gib + rng.below(gib)))?.hostAddress.raw ?? 0 }
            let translate = measure {
                // Locals, not the captured variables, so the loop keeps them
                // in registers: the harness should cost as little as it can.
                var r = rng, total: UInt64 = 0
                for _ in 0..<1_000_000 { total &+= space.translate(GuestPhysAddr(gib + r.below(gib)))?.hostAddress.raw ?? 0 }
                rng = r
                sink &+= total
            }
            precondition(sink != 0)
            put("translate_random_ns" + suffix, "ns/op", translate / 1_000_000)
            let free = pool.freeFrameCount
            let unmap = try measure { try space.unmap(region, size: gib) }
            precondition(space.ownedFrameCount == 0 && pool.freeFrameCount >= free + Self.pages1G, "unmap returned every data frame")
            put("unmap_alloc_1g_ms" + suffix, "ms", unmap / 1e6)
            zeroing("populate" + suffix, since: zeroStart)
        }

        // Linear 1 GiB three ways.
        let space = try makeSpace(.frames4K)
        let linear: [(String, UInt64, UInt64)] = [
            ("1g_hugepage", 0x4000_0000, 0x1_0000_0000),
            ("2m_hugepages", 0x4020_0000, 0x1_0020_0000),
            ("4k_pages", 0x4000_0000, 0x1_0000_1000),
        ]
        for (name, g, h) in linear where only.contains("linear") {
            // A handful of leaves is a few microseconds, where one timing is
            // mostly noise here: the median of 64 map/unmap pairs per pass.
            let repeats = name == "4k_pages" ? 1 : 64
            var maps: [Double] = [], unmaps: [Double] = []
            for _ in 0..<repeats {
                maps.append(try measure { try space.mapLinear(GuestPhysAddr(g), to: HostPhysAddr(h), size: gib, flags: rwx) })
                unmaps.append(try measure { try space.unmap(GuestPhysAddr(g), size: gib) })
            }
            put("map_linear_\(name)_us", "us", maps.sorted()[repeats / 2] / 1e3)
            put("unmap_linear_\(name)_us", "us", unmaps.sorted()[repeats / 2] / 1e3)
        }

        // Lazy 1 GiB, 100,000 faults, unmap.
        for (suffix, zeroingPolicy) in [("", FrameZeroing.always), ("_nozero", .unsafeNeverForBenchmarks)] where only.contains("lazy") {
            let zeroStart = pool.zeroingMilliseconds
            let space = try makeSpace(.frames4K, zeroingPolicy)
            let lazy = try measure { try space.mapAlloc(region, size: gib, flags: rwx, populate: .lazy) }
            put("map_alloc_lazy_1g_ms" + suffix, "ms", lazy / 1e6)
            var faultRng = SplitMix64(seed: 0xA5A5_0005)
            let pages = faultRng.distinct(Self.pages1G, 100_000)
            let addresses = pages.map { GuestPhysAddr(gib + $0 * 4096 + (faultRng.below(4096) & ~7)) }
            var handled = 0
            let faults = measure {
                for gpa in addresses {
                    if case .handled = space.handlePageFault(gpa, access: [.read, .write]) { handled += 1 }
                }
            }
            precondition(handled == 100_000, "every fault filled a page")
            put("page_fault_ns" + suffix, "ns/op", faults / 100_000)
            let unmapLazy = try measure { try space.unmap(region, size: gib) }
            put("unmap_lazy_1g_after_100k_faults_ms" + suffix, "ms", unmapLazy / 1e6)
            zeroing("lazy" + suffix, since: zeroStart)
        }

        // 10,000 separate 4 KiB regions, then unmap each in shuffled order.
        for kind in ["alloc", "linear"] where only.contains("small") {
            let zeroStart = pool.zeroingMilliseconds
            var rng = SplitMix64(seed: 0xA5A5_0006)
            let slots = rng.distinct(1_048_576, 10_000)
            let base: UInt64 = 4 * gib
            let map = try measure {
                for p in slots {
                    if kind == "alloc" {
                        try space.mapAlloc(GuestPhysAddr(base + p * 4096), size: 4096, flags: rwx, populate: .eager)
                    } else {
                        try space.mapLinear(GuestPhysAddr(base + p * 4096), to: HostPhysAddr(0x10_0000_0000 + p * 4096), size: 4096, flags: rwx)
                    }
                }
            }
            put("small_map_\(kind)_4k_x10k_ns_per_map", "ns/op", map / 10_000)
            var order = slots
            rng.shuffle(&order)
            let unmap = try measure {
                for p in order { try space.unmap(GuestPhysAddr(base + p * 4096), size: 4096) }
            }
            put("small_unmap_\(kind)_4k_x10k_ns_per_unmap", "ns/op", unmap / 10_000)
            precondition(space.areaCount == 0)
            zeroing("small_" + kind, since: zeroStart)
        }
    }
}
