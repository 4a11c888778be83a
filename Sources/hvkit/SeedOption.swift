import Foundation
import ArgumentParser

/// A `--seed` as written on the command line: decimal or 0x-hex, underscores allowed.
enum SeedOption {
    static func parse(_ text: String) throws -> UInt64 {
        let cleaned = text.replacingOccurrences(of: "_", with: "").lowercased()
        guard let value = cleaned.hasPrefix("0x") ? UInt64(cleaned.dropFirst(2), radix: 16) : UInt64(cleaned) else {
            throw ValidationError("--seed must be a decimal or 0x-hex 64-bit number")
        }
        return value
    }
}
