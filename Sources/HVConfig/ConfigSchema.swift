import HVCore

/// A JSON Schema (draft 2020-12) of the configuration format, for editors
/// and CI linters that read TOML as JSON (taplo, check-jsonschema, ...).
/// It says what `ConfigParser` accepts before any rule runs: the tables and
/// their keys, required keys, types, array shapes, and the enumerated
/// values (map_type, emu_type, interrupt_mode, image_location). A test
/// checks it against the parser on every fixture.
public enum ConfigSchema {
    public static var json: String {
        let u64 = "{\"$ref\": \"#/$defs/u64\"}"
        let emuTypes = VMConfig.EmulatedDeviceType.allCases.map { String($0.rawValue) }.joined(separator: ", ")
        return """
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema",
          "$id": "urn:hvkit:axvisor-vm-config",
          "title": "axvisor VM configuration (axvmconfig 0.2.x, as axvisor reads it)",
          "type": "object",
          "required": ["base", "kernel", "devices"],
          "additionalProperties": false,
          "properties": {
            "base": {
              "type": "object",
              "additionalProperties": false,
              "required": ["id", "name", "vm_type", "cpu_num"],
              "properties": {
                "id": \(u64),
                "name": {"type": "string"},
                "vm_type": {"description": "0 host, 1 RTOS, 2 Linux", "$ref": "#/$defs/u64"},
                "cpu_num": \(u64),
                "phys_cpu_ids": {"description": "one per vCPU: MPIDR, hart or APIC id", "type": "array", "items": \(u64)},
                "phys_cpu_sets": {"description": "one CPU mask per vCPU", "type": "array", "items": \(u64)}
              }
            },
            "kernel": {
              "type": "object",
              "additionalProperties": false,
              "required": ["entry_point", "kernel_path", "kernel_load_addr", "memory_regions"],
              "properties": {
                "entry_point": \(u64),
                "kernel_path": {"type": "string"},
                "kernel_load_addr": \(u64),
                "bios_path": {"type": "string"},
                "bios_load_addr": \(u64),
                "dtb_path": {"type": "string"},
                "dtb_load_addr": \(u64),
                "ramdisk_path": {"type": "string"},
                "ramdisk_load_addr": \(u64),
                "image_location": {"enum": ["fs", "memory"]},
                "cmdline": {"type": "string"},
                "disk_path": {"type": "string"},
                "memory_regions": {
                  "description": "[gpa, size, flags, map_type]; flags R=1 W=2 X=4 USER=8 DEVICE=0x10 UNCACHED=0x20; map_type 0 MapAlloc, 1 MapIdentical, 2 MapReserved",
                  "type": "array",
                  "items": {"type": "array", "prefixItems": [\(u64), \(u64), \(u64), {"enum": [0, 1, 2]}], "minItems": 4, "items": false}
                }
              }
            },
            "devices": {
              "type": "object",
              "additionalProperties": false,
              "required": ["emu_devices", "passthrough_devices"],
              "properties": {
                "interrupt_mode": {"enum": ["no_irq", "no", "none", "emu", "emulated", "passthrough", "pt"]},
                "emu_devices": {
                  "description": "[name, base_gpa, length, irq_id, emu_type, [cfg_list...]]",
                  "type": "array",
                  "items": {"type": "array", "prefixItems": [{"type": "string"}, \(u64), \(u64), \(u64), {"enum": [\(emuTypes)]}, {"type": "array", "items": \(u64)}], "minItems": 6, "items": false}
                },
                "passthrough_devices": {
                  "description": "[name, base_gpa, base_hpa, length, irq_id]; fields after the name default to 0; a name alone is a device-tree path",
                  "type": "array",
                  "items": {"type": "array", "prefixItems": [{"type": "string"}, \(u64), \(u64), \(u64), \(u64)], "minItems": 1, "items": false}
                },
                "passthrough_addresses": {
                  "description": "[base_gpa, length] identity windows",
                  "type": "array",
                  "items": {"type": "array", "prefixItems": [\(u64), \(u64)], "items": false}
                },
                "excluded_devices": {
                  "description": "lists of device-tree paths kept out of name-only pass-through",
                  "type": "array",
                  "items": {"type": "array", "items": {"type": "string"}}
                },
                "shared": {"description": "HVKit: devices whose host ranges other VMs may map too", "type": "array", "items": {"type": "string"}}
              }
            }
          },
          "$defs": {
            "u64": {"type": "integer", "minimum": 0}
          }
        }
        """
    }
}
