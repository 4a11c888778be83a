// ThreadSanitizer and Synchronization.Mutex, in 20 lines: one thread
// appends under withLock, another reads under withLock. TSan does not see
// the Mutex's futex-based acquire and release, so it reports a race on the
// array; with --annotate each holder also calls hv_tsan_acquire/release on
// a key (what HVMutex does), and TSan sees the order. scripts/sanitize runs
// it both ways.
import CCoreIntrinsics
import Foundation
import Synchronization

let annotate = CommandLine.arguments.contains("--annotate")
final class Shared: @unchecked Sendable {
    let values = Mutex<[Int]>([])
    let key = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    func locked<R>(_ body: (inout [Int]) -> R) -> R {
        values.withLock { v in
            if annotate { hv_tsan_acquire(key) }
            defer { if annotate { hv_tsan_release(key) } }
            return body(&v)
        }
    }
}
let shared = Shared()
let done = DispatchSemaphore(value: 0)
Thread { for i in 0..<20_000 { shared.locked { $0.append(i) } }; done.signal() }.start()
var seen = 0
for _ in 0..<20_000 { seen = max(seen, shared.locked { $0.count }) }
done.wait()
print("mutex demo (\(annotate ? "annotated" : "plain"), TSan \(hv_tsan_enabled() != 0 ? "on" : "off")): \(shared.locked { $0.count }) appended, reader saw up to \(seen)")
