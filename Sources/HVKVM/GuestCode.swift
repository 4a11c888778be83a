/// A tiny x86 assembler for test guests: bytes, labels, 8-bit relative
/// jumps fixed up at the end. Only plain integer instructions, which every
/// KVM (including ones that emulate guest kernel code) runs.
public struct GuestCode {
    public private(set) var bytes: [UInt8] = []
    private var labels: [String: Int] = [:]
    private var fixups: [(at: Int, label: String)] = []

    public init() {}

    public mutating func emit(_ b: UInt8...) { bytes += b }
    public mutating func emit32(_ v: UInt32) { bytes += withUnsafeBytes(of: v.littleEndian, Array.init) }
    public mutating func label(_ name: String) { labels[name] = bytes.count }

    /// A short jump (EB) or conditional jump (7x) to `label`.
    public mutating func jump(_ opcode: UInt8, to label: String) {
        bytes += [opcode, 0]
        fixups.append((bytes.count - 1, label))
    }

    public func assembled() -> [UInt8] {
        var out = bytes
        for f in fixups {
            let target = labels[f.label]!
            let rel = target - (f.at + 1)
            precondition(rel >= -128 && rel <= 127, "jump to \(f.label) out of 8-bit range")
            out[f.at] = UInt8(bitPattern: Int8(rel))
        }
        return out
    }
}

/// The guests the tests and the demo run.
public enum TestGuests {
    /// 16-bit real mode: prints `text` on COM1, then exits with `status`.
    public static func realModeHello(_ text: String, status: UInt8 = 0) -> [UInt8] {
        var c = GuestCode()
        c.emit(0xBA, 0xF8, 0x03)                    // mov dx, 0x3f8
        for byte in text.utf8 { c.emit(0xB0, byte, 0xEE) }  // mov al, byte; out dx, al
        c.emit(0xBA, 0x01, 0x05)                    // mov dx, 0x501
        c.emit(0xB0, status, 0xEE)                  // mov al, status; out dx, al
        c.emit(0xF4)                                // hlt
        return c.assembled()
    }

    /// 32-bit flat mode: writes one word to every page of [lo, hi), then
    /// exits with status 0. The smallest loop that touches each page once.
    public static func touchPages(from lo: UInt32, to hi: UInt32) -> [UInt8] {
        var c = GuestCode()
        c.emit(0xBF); c.emit32(lo)                   // mov edi, lo
        c.label("loop")
        c.emit(0x89, 0x07)                           // mov [edi], eax
        c.emit(0x81, 0xC7); c.emit32(0x1000)         // add edi, 0x1000
        c.emit(0x81, 0xFF); c.emit32(hi)             // cmp edi, hi
        c.jump(0x72, to: "loop")                     // jb loop
        c.emit(0x66, 0xBA, 0x01, 0x05)               // mov dx, 0x501
        c.emit(0xB0, 0x00, 0xEE)                     // mov al, 0; out dx, al
        c.emit(0xF4)                                 // hlt
        return c.assembled()
    }

    /// The pattern the fill guest writes in the first word of each page.
    public static func pattern(_ gpa: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: gpa) ^ 0xA5A5_A5A5 }

    /// 32-bit flat protected mode or 64-bit long mode (the same bytes mean
    /// the same there, addresses being zero-extended): for each [start, end) in the table at
    /// `table` (pairs of u32, ended by a pair with start >= end), writes
    /// `pattern(page)` to the first word of every page, then reads them all
    /// back, reports the mismatch count on the report port and exits with
    /// status = mismatches (0 when every word came back).
    public static func fillAndVerify(table: UInt32) -> [UInt8] {
        var c = GuestCode()
        c.emit(0x31, 0xDB)                           // xor ebx, ebx
        for pass in ["fill", "check"] {
            c.emit(0xBE); c.emit32(table)            // mov esi, table
            c.label("\(pass)_range")
            c.emit(0x8B, 0x3E)                       // mov edi, [esi]
            c.emit(0x8B, 0x4E, 0x04)                 // mov ecx, [esi+4]
            c.emit(0x39, 0xCF)                       // cmp edi, ecx
            c.jump(0x73, to: "\(pass)_done")         // jae done
            c.label("\(pass)_loop")
            c.emit(0x89, 0xF8)                       // mov eax, edi
            c.emit(0x35); c.emit32(0xA5A5_A5A5)      // xor eax, 0xa5a5a5a5
            if pass == "fill" {
                c.emit(0x89, 0x07)                   // mov [edi], eax
            } else {
                c.emit(0x39, 0x07)                   // cmp [edi], eax
                c.jump(0x74, to: "\(pass)_same")     // je same
                c.emit(0xFF, 0xC3)                   // inc ebx (not 0x43: a REX prefix in long mode)
                c.label("\(pass)_same")
            }
            c.emit(0x81, 0xC7); c.emit32(0x1000)     // add edi, 0x1000
            c.emit(0x39, 0xCF)                       // cmp edi, ecx
            c.jump(0x72, to: "\(pass)_loop")         // jb loop
            c.emit(0x83, 0xC6, 0x08)                 // add esi, 8
            c.jump(0xEB, to: "\(pass)_range")        // jmp range
            c.label("\(pass)_done")
        }
        c.emit(0x89, 0xD8)                           // mov eax, ebx
        c.emit(0x66, 0xBA, 0x02, 0x05)               // mov dx, 0x502
        c.emit(0xEF)                                 // out dx, eax
        c.emit(0x66, 0xBA, 0x01, 0x05)               // mov dx, 0x501
        c.emit(0x88, 0xD8)                           // mov al, bl
        c.emit(0xEE)                                 // out dx, al
        c.emit(0xF4)                                 // hlt
        return c.assembled()
    }

    /// 32-bit flat mode: ORs together every 32-bit word of [lo, hi), reports
    /// the result on the report port and exits 0: a guest's check that
    /// memory it was given reads as zero. Keep the range small (each word
    /// is a loop iteration at kernel level).
    public static func orWords(from lo: UInt32, to hi: UInt32) -> [UInt8] {
        var c = GuestCode()
        c.emit(0x31, 0xDB)                           // xor ebx, ebx
        c.emit(0xBF); c.emit32(lo)                   // mov edi, lo
        c.label("loop")
        c.emit(0x0B, 0x1F)                           // or ebx, [edi]
        c.emit(0x83, 0xC7, 0x04)                     // add edi, 4
        c.emit(0x81, 0xFF); c.emit32(hi)             // cmp edi, hi
        c.jump(0x72, to: "loop")                     // jb loop
        c.emit(0x89, 0xD8)                           // mov eax, ebx
        c.emit(0x66, 0xBA, 0x02, 0x05)               // mov dx, 0x502
        c.emit(0xEF)                                 // out dx, eax
        c.emit(0x66, 0xBA, 0x01, 0x05)               // mov dx, 0x501
        c.emit(0xB0, 0x00, 0xEE)                     // mov al, 0; out dx, al
        c.emit(0xF4)                                 // hlt
        return c.assembled()
    }

    /// 32-bit: reads (or writes) one word at `address`, then exits 0. Used
    /// to probe unmapped and read-only guest memory.
    public static func probe(_ address: UInt32, write: Bool) -> [UInt8] {
        var c = GuestCode()
        c.emit(0xBF); c.emit32(address)              // mov edi, address
        c.emit(write ? 0x89 : 0x8B, 0x07)            // mov [edi], eax / mov eax, [edi]
        c.emit(0x66, 0xBA, 0x01, 0x05)               // mov dx, 0x501
        c.emit(0xB0, 0x00, 0xEE)                     // mov al, 0; out dx, al
        c.emit(0xF4)                                 // hlt
        return c.assembled()
    }
}
