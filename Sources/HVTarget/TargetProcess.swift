#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with the target process itself (not a disagreement
/// about mappings): each is a finding of its own.
public enum TargetFailure: Error, Equatable, CustomStringConvertible {
    case spawn(String)
    /// Stdout closed: the target exited or was killed; how, and its stderr's end.
    case exited(status: String, stderr: String)
    case timeout(milliseconds: Int)
    case malformed(line: String, reason: String)

    public var kind: String {
        switch self {
        case .spawn: "spawn"
        case .exited: "crash"
        case .timeout: "hang"
        case .malformed: "malformed"
        }
    }

    public var description: String {
        switch self {
        case let .spawn(m): "the target could not be started: \(m)"
        case let .exited(status, stderr): "the target \(status)" + (stderr.isEmpty ? "" : "; its stderr ends:\n" + stderr)
        case let .timeout(ms): "no answer within \(ms) ms (the target was killed)"
        case let .malformed(line, reason): "malformed answer (\(reason)): \(line.count > 200 ? String(line.prefix(200)) + "..." : line)"
        }
    }
}

/// One run of the target command: its stdin and stdout are pipes, its
/// stderr goes to a temporary file kept for the report. The command runs
/// directly when it is plain words, else under `/bin/sh -c 'exec ...'`: the pid is the target's own.
public final class TargetProcess {
    public let pid: pid_t
    let toTarget: Int32
    let fromTarget: Int32
    let stderrPath: String
    var reader: [UInt8] = []
    var finished = false
    var closed = false
    public private(set) var requests = 0

    public init(command: String) throws(TargetFailure) {
        signal(SIGPIPE, SIG_IGN)
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else { throw .spawn("pipe: \(String(cString: strerror(errno)))") }
        var template = Array("/tmp/hvkit-target-stderr-XXXXXX".utf8CString)
        let errFD = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard errFD >= 0 else { throw .spawn("mkstemp: \(String(cString: strerror(errno)))") }
        stderrPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        for fd in [inPipe[0], inPipe[1], outPipe[0], outPipe[1], errFD] { posix_spawn_file_actions_addclose(&actions, fd) }
        // A plain command line (words, no shell syntax) is started directly;
        // anything else under /bin/sh, which execs it: the pid is the target's either way.
        let plain = command.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || "0123456789/._-=+:, ".unicodeScalars.contains($0) }
        let argv: [String] = plain ? command.split(separator: " ").map(String.init) : ["/bin/sh", "-c", "exec " + command]
        guard !argv.isEmpty else { throw .spawn("an empty command") }
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, nil, &cArgs, environ)
        close(inPipe[0]); close(outPipe[1]); close(errFD)
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0]); unlink(stderrPath)
            throw .spawn("posix_spawn: \(String(cString: strerror(rc)))")
        }
        pid = child
        toTarget = inPipe[1]
        fromTarget = outPipe[0]
    }

    deinit { _ = stop() }

    /// Sends one request and waits for one line back, at most `timeoutMs`.
    public func exchange(_ request: JSONValue, timeoutMs: Int) -> Result<JSONValue, TargetFailure> {
        requests += 1
        var line = request.description
        line += "\n"
        let sent = line.utf8.withContiguousStorageIfAvailable { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = write(toTarget, buf.baseAddress! + off, buf.count - off)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        } ?? false
        if !sent { return .failure(exitFailure()) }
        switch readLine(timeoutMs: timeoutMs) {
        case let .failure(f): return .failure(f)
        case let .success(bytes):
            let text = String(decoding: bytes, as: UTF8.self)
            do { return .success(try JSONLineParser.parse(bytes)) } catch {
                return .failure(.malformed(line: text, reason: "not JSON: \(error)"))
            }
        }
    }

    func readLine(timeoutMs: Int) -> Result<[UInt8], TargetFailure> {
        var clock = timespec()
        clock_gettime(CLOCK_MONOTONIC, &clock)
        let deadline = Int(clock.tv_sec) * 1000 + Int(clock.tv_nsec) / 1_000_000 + timeoutMs
        while true {
            if let nl = reader.firstIndex(of: 0x0A) {
                let line = Array(reader[..<nl])
                reader.removeFirst(nl + 1)
                return .success(line)
            }
            if reader.count > TargetProtocol.maxLineBytes {
                let head = String(decoding: reader.prefix(200), as: UTF8.self)
                return .failure(.malformed(line: head, reason: "a line longer than \(TargetProtocol.maxLineBytes) bytes"))
            }
            clock_gettime(CLOCK_MONOTONIC, &clock)
            let left = deadline - (Int(clock.tv_sec) * 1000 + Int(clock.tv_nsec) / 1_000_000)
            if left <= 0 {
                kill(pid, SIGKILL)
                return .failure(.timeout(milliseconds: timeoutMs))
            }
            var p = pollfd(fd: fromTarget, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left))
            if r < 0, errno == EINTR { continue }
            if r == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(fromTarget, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                if !reader.isEmpty {
                    let rest = String(decoding: reader, as: UTF8.self)
                    reader = []
                    return .failure(.malformed(line: rest, reason: "no newline before the target's output ended"))
                }
                return .failure(exitFailure())
            }
            reader.append(contentsOf: chunk[0..<n])
        }
    }

    /// How the target ended (it has closed its stdout or its stdin).
    func exitFailure() -> TargetFailure {
        let status = reap(waitMs: 2000)
        return .exited(status: status, stderr: stderrTail())
    }

    /// Waits for the process (killing it after `waitMs`) and describes its end.
    func reap(waitMs: Int) -> String {
        if finished { return "ended" }
        var status: Int32 = 0
        var waited = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 { finished = true; return "ended" }
            if waited >= waitMs * 10 { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(100)
            waited += 1
        }
        finished = true
        let code = (status >> 8) & 0xFF, sig = status & 0x7F
        if sig != 0 { return "was killed by signal \(sig)" + (sig == SIGABRT ? " (SIGABRT: an abort)" : sig == SIGSEGV ? " (SIGSEGV)" : sig == SIGKILL ? " (SIGKILL)" : "") }
        return "exited with status \(code)"
    }

    /// The last lines of the target's stderr (at most 2 KiB).
    public func stderrTail() -> String {
        guard let f = fopen(stderrPath, "r") else { return "" }
        defer { fclose(f) }
        fseek(f, 0, SEEK_END)
        let size = ftell(f)
        let take = min(size, 2048)
        fseek(f, size - take, SEEK_SET)
        var bytes = [UInt8](repeating: 0, count: take)
        let n = fread(&bytes, 1, take, f)
        return String(decoding: bytes[0..<n], as: UTF8.self).trimmingSuffixNewlines()
    }

    /// Closes the target's stdin, waits briefly, kills it if needed, and
    /// returns its stderr's end.
    @discardableResult
    public func stop() -> String {
        if closed { return "" }
        closed = true
        close(toTarget)
        _ = reap(waitMs: 500)
        close(fromTarget)
        let tail = stderrTail()
        unlink(stderrPath)
        return tail
    }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
