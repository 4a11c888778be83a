import Foundation

/// Why an oracle could not give an answer at all.
public enum OracleError: Error, CustomStringConvertible {
    /// A tool the oracle needs is not installed (the SKIPPED case).
    case missingTool(String)
    case toolFailed(command: String, status: Int32, stderr: String)
    case timedOut(command: String, seconds: Double, stderr: String)
    case malformedAnswer(String)

    public var description: String {
        switch self {
        case let .missingTool(t): "\(t) is not installed (scripts/setup installs it)"
        case let .toolFailed(c, s, e): "\(c) exited with status \(s): \(e.suffix(2000))"
        case let .timedOut(c, s, e): "\(c) did not finish within \(s) s and was killed: \(e.suffix(2000))"
        case let .malformedAnswer(m): "the emulated program's answer is malformed: \(m)"
        }
    }
}

/// Runs one external program with a wall-clock limit; past it the process
/// is killed by its own pid. Standard error is kept for the message.
enum OracleProcess {
    static func find(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func run(_ tool: String, _ arguments: [String], timeout seconds: Double, acceptedStatus: Int32 = 0) throws(OracleError) -> String {
        guard let path = find(tool) else { throw .missingTool(tool) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw .toolFailed(command: tool, status: -1, stderr: "\(error)") }
        // Read both pipes on their own threads so a chatty stderr cannot block the child.
        let outData = DataBox(), errData = DataBox()
        let group = DispatchGroup()
        for (pipe, box) in [(out, outData), (err, errData)] {
            group.enter()
            Thread { box.set(pipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }.start()
        }
        let pid = p.processIdentifier
        let finished = group.wait(timeout: .now() + seconds) == .success
        if !finished {
            kill(pid, SIGKILL)
            group.wait()
            p.waitUntilExit()
            throw .timedOut(command: ([tool] + arguments).joined(separator: " "), seconds: seconds, stderr: errData.string)
        }
        p.waitUntilExit()
        guard p.terminationStatus == acceptedStatus else { throw .toolFailed(command: ([tool] + arguments).joined(separator: " "), status: p.terminationStatus, stderr: errData.string) }
        return outData.string
    }
}

/// Pipe contents handed from a reader thread.
final class DataBox: @unchecked Sendable {
    // @unchecked Sendable: written once by the reader thread before the
    // dispatch group is left, read only after waiting on that group.
    private var data = Data()
    func set(_ d: Data) { data = d }
    var string: String { String(decoding: data, as: UTF8.self) }
}
