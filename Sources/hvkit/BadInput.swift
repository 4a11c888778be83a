import ArgumentParser
import Foundation

/// A bad input file (an image, a configuration, a kernel, a device tree):
/// exit status 2 with one line on stderr, not the usage text a wrong
/// command line gets (exit 64).
func badInput(_ command: String, _ message: String) -> ExitCode {
    let line = message.split(separator: "\n").joined(separator: "; ")
    FileHandle.standardError.write(Data("hvkit \(command): \(line)\n".utf8))
    return ExitCode(2)
}
