import Foundation

/// The package's root directory: the nearest directory above `file` that
/// holds Package.swift. A test finds built products from there whether it
/// is compiled in its test target or through a symlink elsewhere (the
/// sanitizer runners under Sanitize/suites).
public func packageRoot(of file: String = #filePath) -> URL {
    var dir = URL(fileURLWithPath: file).deletingLastPathComponent()
    while dir.path != "/" {
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
        dir = dir.deletingLastPathComponent()
    }
    preconditionFailure("no Package.swift above \(file)")
}
