import ArgumentParser
import Foundation
import HVCore
import HVKVM

enum LinuxDefaults {
    /// Console on COM1 from the first instruction (earlyprintk), no KASLR so
    /// runs compare, and a panic ends the run at once (reboot by triple fault).
    static let commandLine = "console=ttyS0 earlyprintk=serial,ttyS0,115200 nokaslr panic=-1 reboot=t"
}

/// `hvkit run --kernel`: boot, stream the console, check the memory view.
struct KernelRun {
    let kernel: String
    let initrd: String?
    let cmdline: String
    let memory: UInt64
    let lazy: Bool
    let hide: String?
    let stopAt: String
    let timeLimit: Int
    let json: Bool

    func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw badInput("run", "cannot read \(path)") }
        return [UInt8](data)
    }

    func run() throws {
        guard let stop = LinuxGuest.StopPoint(rawValue: stopAt) else {
            throw ValidationError("--stop-at is one of \(LinuxGuest.StopPoint.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let features: [CPUIDFeature]
        do { features = try hide.map(CPUIDFeature.parseList) ?? [] } catch { throw ValidationError("--hide-cpuid: \(error)") }
        let plan: LinuxBootPlan
        do {
            plan = try LinuxBootPlan(image: try read(kernel), initrd: try initrd.map(read), commandLine: cmdline, ram: memory, lazy: lazy)
        } catch let error as ImageError {
            throw badInput("run", "\(kernel): \(error)")
        }
        let system = try KVMSystem()
        let out = FileHandle.standardOutput
        let echo: ((UInt8) -> Void)? = json ? nil : { byte in out.write(Data([byte])) }
        let guest = try LinuxGuest(plan: plan, system: system, hide: features, echo: echo)
        if !json {
            var parts = [plan.kernelSummary]
            if let initrd = plan.initrd, let at = plan.initrdAddress {
                parts.append("initramfs of \(initrd.count) bytes at \(hex(at))")
            } else {
                parts.append("no initramfs")
            }
            parts.append("\(memory >> 20) MiB" + (lazy ? " lazy" : ""))
            if !features.isEmpty { parts.append("hiding " + features.map(\.name).joined(separator: ",")) }
            let banner = "hvkit run: booting \(kernel): " + parts.joined(separator: ", ") + "\n"
            FileHandle.standardError.write(Data(banner.utf8))
        }
        for f in guest.notHideable {
            let hint = f == .xsave ? " (a Linux guest takes noxsave on its command line)" : ""
            FileHandle.standardError.write(Data("hvkit run: warning: KVM does not offer \(f), so it cannot be hidden\(hint)\n".utf8))
        }
        let outcome = try guest.run(stop: stop, timeLimit: .seconds(timeLimit > 0 ? timeLimit : 365 * 86400))
        // A run stopped at the first line never reached the lines to judge.
        let judged = stop != .firstLine
        let problems = judged ? guest.problems : []
        let t = guest.timeline
        func s(_ x: Double?) -> String { x.map { String(format: "%.1f s", $0) } ?? "never" }
        if json {
            var fields: [String] = []
            fields.append("\"outcome\":\"\(escape(outcome.description))\"")
            fields.append("\"first_output_s\":\(t.firstOutput.map { String(format: "%.3f", $0) } ?? "null")")
            fields.append("\"e820_s\":\(t.e820.map { String(format: "%.3f", $0) } ?? "null")")
            fields.append("\"memory_line_s\":\(t.memoryLine.map { String(format: "%.3f", $0) } ?? "null")")
            fields.append("\"init_marker_s\":\(t.initMarker.map { String(format: "%.3f", $0) } ?? "null")")
            fields.append("\"planned_e820\":[\(plan.plannedE820(guest.space).map { "\"\($0)\"" }.joined(separator: ","))]")
            fields.append("\"kernel_e820\":[\(guest.console.e820.map { "\"\($0)\"" }.joined(separator: ","))]")
            fields.append("\"memory_kib\":\(guest.console.memory.map { "{\"available\":\($0.available),\"total\":\($0.total)}" } ?? "null")")
            fields.append("\"memtotal_kib\":\(guest.console.memTotalKiB.map(String.init) ?? "null")")
            fields.append("\"lazy_pages_touched\":\(guest.runner.lazyFaults)")
            fields.append("\"judged\":\(judged)")
            fields.append("\"problems\":[\(problems.map { "\"\(escape($0))\"" }.joined(separator: ","))]")
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            print("")
            print("hvkit run: \(outcome)")
            print("hvkit run: first console output \(s(t.firstOutput)), e820 map \(s(t.e820)), memory line \(s(t.memoryLine)), /init \(s(t.initMarker)), run \(s(t.end))")
            if let m = guest.console.memory { print("hvkit run: kernel memory line: \(m.available)K/\(m.total)K available; planned usable \(plan.usableBytes(guest.space) / 1024)K") }
            if let total = guest.console.memTotalKiB { print("hvkit run: /proc/meminfo MemTotal \(total) kB") }
            if lazy { print("hvkit run: the kernel touched \(guest.runner.lazyFaults) lazy pages (\(guest.runner.lazyFaults * 4) KiB); the loader \(guest.runner.loadFaults)") }
            if !judged {
                print("hvkit run: stopped at the first line: the memory view was not checked")
            } else if problems.isEmpty && !guest.console.e820.isEmpty && guest.console.memory != nil {
                print("hvkit run: the kernel's e820 map and memory total agree with HVKit's plan")
            }
            for p in problems { print("hvkit run: MISMATCH: \(p)") }
        }
        switch outcome {
        case .stopped: break
        case .timeLimit: throw ExitCode(3)
        default: throw ExitCode(2)
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
