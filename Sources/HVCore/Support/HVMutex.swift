import CCoreIntrinsics
import Synchronization

/// `Synchronization.Mutex` with the happens-before edges ThreadSanitizer
/// cannot see for itself (the Mutex locks with futexes, which TSan does not
/// model, so it reports races on data the lock protects). The holder
/// acquires a key, fixed for the lock's life, on entry and releases it on
/// exit; outside a TSan build (`-sanitize=thread`, or `-Xcc -DHV_TSAN`) the
/// two calls are empty and this is the plain Mutex.
@usableFromInline
struct HVMutex<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    @usableFromInline let mutex: Mutex<Value>
    /// One byte on the heap: its address is the key TSan synchronises on.
    @usableFromInline let key: UnsafeMutableRawPointer

    @usableFromInline
    init(_ value: consuming sending Value) {
        mutex = Mutex(value)
        key = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    }

    deinit { key.deallocate() }

    @inlinable @inline(__always)
    borrowing func withLock<Result: ~Copyable, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            hv_tsan_acquire(key)
            defer { hv_tsan_release(key) }
            return try body(&value)
        }
    }
}
