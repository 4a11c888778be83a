import ArgumentParser
import Foundation
import HVConfig
import HVCore
import HVKVM

/// `hvkit run VM.toml`: an axvisor x86_64 configuration whose kernel is a
/// Linux bzImage or vmlinux, booted through the Linux boot protocol (see
/// `LinuxBootConfig` for what the configuration decides).
struct ConfigRun {
    let path: String

    func run(lazy: Bool, hide: String?, stopAt: String, timeLimit: Int, json: Bool) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw badInput("run", "cannot read \(path)")
        }
        let config: VMConfig
        do { config = try ConfigParser.parse(file: path, text: text) } catch { throw badInput("run", "\(error)") }
        let r: LinuxBootConfig
        do { r = try LinuxBootConfig(config, path: path) } catch { throw badInput("run", "\(error)") }
        if !json {
            for note in r.notes { FileHandle.standardError.write(Data("hvkit run: \(path): \(note)\n".utf8)) }
        }
        try KernelRun(kernel: r.kernel, initrd: r.initrd, cmdline: r.cmdline ?? LinuxDefaults.commandLine, memory: r.ram, lazy: lazy,
                      hide: hide, stopAt: stopAt, timeLimit: timeLimit, json: json).run()
    }
}
