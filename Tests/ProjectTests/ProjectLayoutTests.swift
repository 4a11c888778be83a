import Foundation
import Testing

/// The repository's promises about itself: CI runs what the README says.
@Suite("Project layout")
struct ProjectLayoutTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Lines that do something (not comments, not blank).
    static func commands(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    @Test func ciRunsTheReadmeTestCommand() throws {
        let readme = try Self.read("README.md")
        #expect(readme.contains("scripts/test"), "README names the test command")
        #expect(readme.contains("scripts/demo"), "README names the main command")
        let ci = Self.commands(try Self.read(".ci/run"))
        #expect(ci.contains { $0 == "exec scripts/test" || $0 == "scripts/test" }, ".ci/run: \(ci)")
        #expect(!ci.contains { $0.hasPrefix("swift ") }, ".ci/run must not run its own swift commands")
    }

    @Test func scriptsAreExecutableAndIgnoredFilesIgnored() throws {
        for script in ["scripts/setup", "scripts/test", "scripts/demo", ".ci/run"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: Self.root.appendingPathComponent(script).path)
            let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            #expect(mode & 0o100 != 0, "\(script) is executable")
        }
        let ignore = try Self.read(".gitignore")
        #expect(ignore.contains("Package.resolved") && ignore.contains(".build"))
        #expect(try Self.read("scripts/test").contains("scripts/setup"))
        #expect(try Self.read("scripts/demo").contains("scripts/setup"))
    }
}
