import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Every system call HVKVM makes, and nothing else: open, close, ioctl,
/// mmap, munmap, madvise, mincore. Each returns or throws `KVMError.call` naming the
/// call and its errno.
enum Sys {
    static func error(_ name: String) -> KVMError { .call(name, Errno(rawValue: ckvm_errno())) }

    /// open(2), close-on-exec.
    static func open(_ path: String, _ flags: Int32) throws(KVMError) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC)
        if fd < 0 { throw error("open(\(path))") }
        return fd
    }

    /// close(2); errors are ignored (the descriptor is gone either way).
    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// A failed call that cannot be thrown (a deinit, a query with a safe
    /// default): one line on stderr, so it is never silently dropped.
    static func report(_ what: String) {
        var line = "hvkit: KVM: \(what)\n"
        line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// ioctl(2) with a pointer argument.
    @discardableResult
    static func ioctl(_ fd: Int32, _ request: UInt, _ name: String, _ argument: UnsafeMutableRawPointer?) throws(KVMError) -> Int32 {
        let r = ckvm_ioctl_ptr(fd, request, argument)
        if r < 0 { throw error(name) }
        return r
    }

    /// ioctl(2) with an integer argument.
    @discardableResult
    static func ioctl(_ fd: Int32, _ request: UInt, _ name: String, value: UInt) throws(KVMError) -> Int32 {
        let r = ckvm_ioctl_int(fd, request, value)
        if r < 0 { throw error(name) }
        return r
    }

    /// ioctl(2) with a pointer to `value`.
    @discardableResult
    static func ioctl<T>(_ fd: Int32, _ request: UInt, _ name: String, _ value: inout T) throws(KVMError) -> Int32 {
        let r = withUnsafeMutablePointer(to: &value) { ckvm_ioctl_ptr(fd, request, $0) }
        if r < 0 { throw error(name) }
        return r
    }

    /// mmap(2) of anonymous memory (fd -1) or of a descriptor.
    static func mmap(_ length: Int, _ prot: Int32, _ flags: Int32, _ fd: Int32, _ name: String) throws(KVMError) -> UnsafeMutableRawPointer {
        let p = Glibc.mmap(nil, length, prot, flags, fd, 0)
        if p == MAP_FAILED || p == nil { throw error(name) }
        return p!
    }

    static func munmap(_ p: UnsafeMutableRawPointer, _ length: Int) { _ = Glibc.munmap(p, length) }

    /// mincore(2): one byte per page of `[p, p + length)`, bit 0 set where
    /// the page is resident (a host page backs it).
    static func mincore(_ p: UnsafeMutableRawPointer, _ length: Int, into vector: inout [UInt8]) throws(KVMError) {
        let pages = (length + 4095) / 4096
        if vector.count < pages { vector = [UInt8](repeating: 0, count: pages) }
        let r = vector.withUnsafeMutableBufferPointer { Glibc.mincore(p, length, $0.baseAddress) }
        if r != 0 { throw error("mincore") }
    }

    /// madvise(2); advice only, so failure is reported, not fatal.
    static func madvise(_ p: UnsafeMutableRawPointer, _ length: Int, _ advice: Int32) -> Bool {
        Glibc.madvise(p, length, advice) == 0
    }
}
