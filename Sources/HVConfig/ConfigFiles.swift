import Foundation
import HVCore

/// Reading configurations and their device trees from files, as the
/// command-line tool does.
public enum ConfigFiles {
    static func bytes(_ path: String) throws(ConfigError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(file: path, keyPath: "", line: nil, message: "cannot read the file") }
        return [UInt8](data)
    }

    public static func config(_ path: String) throws(ConfigError) -> VMConfig {
        try ConfigParser.parse(file: path, bytes: try bytes(path))
    }

    public static func host(_ path: String) throws(ConfigError) -> HostDescription {
        try ConfigParser.parseHost(file: path, text: String(decoding: try bytes(path), as: UTF8.self))
    }

    public static func deviceTree(_ path: String) throws(ConfigError) -> DeviceTree {
        do { return try FlattenedDeviceTree.parse(try bytes(path)) } catch let e as DeviceTreeError {
            throw ConfigError(file: path, keyPath: "", line: nil, message: "not a device tree blob: \(e)")
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError(file: path, keyPath: "", line: nil, message: "\(error)")
        }
    }

    /// The device tree a configuration is checked against: `override`
    /// (`--dtb`) when given, else the file its `dtb_path` names when that
    /// file exists (relative paths are relative to the configuration).
    public static func deviceTree(for c: VMConfig, override: String?) throws(ConfigError) -> (DeviceTree, String)? {
        if let override { return (try deviceTree(override), override) }
        guard let dtb = c.image("dtb"), !dtb.path.isEmpty else { return nil }
        let dir = URL(fileURLWithPath: c.file).deletingLastPathComponent()
        let path = dtb.path.hasPrefix("/") ? dtb.path : dir.appendingPathComponent(dtb.path).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return (try deviceTree(path), path)
    }
}
