/// Collects one value per measured pass for each named figure and prints
/// them as ../shared/BENCHMARKS.md specifies.
struct Figures {
    private(set) var order: [String] = []
    private var units: [String: String] = [:]
    private var runs: [String: [Double]] = [:]

    mutating func record(_ name: String, _ unit: String, _ value: Double) {
        if runs[name] == nil { order.append(name); units[name] = unit }
        runs[name, default: []].append(value)
    }

    func median(_ name: String) -> Double {
        let v = runs[name, default: []].sorted()
        guard !v.isEmpty else { return .nan }
        return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    func jsonLines() -> [String] {
        order.map { name in
            let v = runs[name]!
            let list = v.map(format).joined(separator: ", ")
            return "{\"name\": \"\(name)\", \"unit\": \"\(units[name]!)\", \"median\": \(format(median(name))), \"min\": \(format(v.min()!)), \"runs\": [\(list)], \"n\": \(v.count)}"
        }
    }

    func table() -> [String] {
        let width = order.map(\.count).max() ?? 0
        return order.map { name in
            let v = runs[name]!
            return name + String(repeating: " ", count: width - name.count)
                + "  median " + format(median(name)) + " " + units[name]! + "  (min " + format(v.min()!) + ", n=\(v.count))"
        }
    }

    private func format(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int64(x)) }
        let scaled = (x * 1000).rounded() / 1000
        return String(scaled)
    }
}

/// Nanoseconds taken by `body`.
@inline(never)
func measure(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let elapsed = clock.now - start
    let (seconds, attoseconds) = elapsed.components
    return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
}
