import HVCore
#if canImport(Glibc)
import Glibc
#endif

/// Host "physical" memory for guests: one large anonymous mmap
/// (MAP_NORESERVE, so untouched memory costs nothing), handed out as
/// frames by HVCore's pool logic. Host-physical address = base + offset.
public enum HostMemoryPool {
    /// - Parameters:
    ///   - capacity: bytes, a multiple of 2 MiB.
    ///   - physicalBase: non-zero, 1 GiB aligned.
    ///   - transparentHugePages: ask the kernel to back it with 2 MiB pages.
    public static func make(capacity: UInt64, physicalBase: HostPhysAddr = HostPhysAddr(0x1_0000_0000),
                            transparentHugePages: Bool = false) throws(KVMError) -> HeapFramePool {
        guard capacity > 0, capacity % PageSize.size2M.bytes == 0 else {
            throw .invalidConfiguration("pool capacity \(hex(capacity)) is not a positive multiple of 2 MiB")
        }
        let length = Int(capacity)
        let memory = try Sys.mmap(length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, "mmap(host memory pool)")
        if transparentHugePages { _ = Sys.madvise(memory, length, MADV_HUGEPAGE) }
        // A fresh anonymous mapping reads as zero: the pool knows its frames need no zeroing until used.
        // Scrubbing drops pages (MADV_DONTNEED): they read as zero again and leave the RSS.
        return HeapFramePool(memory: memory, capacity: capacity, physicalBase: physicalBase, zeroFilled: true,
                             discard: { p, n in Sys.madvise(p, n, MADV_DONTNEED) }) { p in Sys.munmap(p, length) }
    }
}
