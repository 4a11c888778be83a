/// A 16550A UART as the Linux 8250 driver sees it: no input, output that is
/// sent the moment it is written, a FIFO that reports itself, loopback for
/// the driver's probe, the scratch register, and the transmitter-empty
/// interrupt on its line (IRQ 4 for COM1) when the driver enables it.
///
/// Pure state machine: the runner feeds it port accesses and raises or
/// lowers the interrupt line when `interruptPending` changes.
public struct Serial16550: Equatable, Sendable {
    /// Register offsets from the base port.
    public enum Register: Int, Sendable {
        case data = 0, interruptEnable, interruptIdentification, lineControl, modemControl, lineStatus, modemStatus, scratch
    }

    public private(set) var interruptEnable: UInt8 = 0
    public private(set) var lineControl: UInt8 = 0
    public private(set) var modemControl: UInt8 = 0
    public private(set) var scratch: UInt8 = 0
    public private(set) var divisor: UInt16 = 12   // 9600 baud until the driver sets it
    public private(set) var fifoEnabled = false
    /// The transmitter became empty and the driver has not read IIR since.
    public private(set) var transmitterEmptyEvent = true

    public init() {}

    static let dlab: UInt8 = 0x80
    static let loopback: UInt8 = 0x10
    static let enableTransmitterEmpty: UInt8 = 0x02

    /// True while the UART asks for an interrupt.
    public var interruptPending: Bool {
        interruptEnable & Self.enableTransmitterEmpty != 0 && transmitterEmptyEvent
    }

    /// A guest read of `register`.
    public mutating func read(_ register: Register) -> UInt8 {
        let dlab = lineControl & Self.dlab != 0
        switch register {
        case .data: return dlab ? UInt8(truncatingIfNeeded: divisor) : 0   // nothing ever received
        case .interruptEnable: return dlab ? UInt8(truncatingIfNeeded: divisor >> 8) : interruptEnable
        case .interruptIdentification:
            let fifo: UInt8 = fifoEnabled ? 0xC0 : 0
            if interruptPending {
                transmitterEmptyEvent = false   // reading IIR acknowledges THRE
                return fifo | 0x02
            }
            return fifo | 0x01                  // no interrupt pending
        case .lineControl: return lineControl
        case .modemControl: return modemControl
        case .lineStatus: return 0x60           // transmitter holding register and shift register empty
        case .modemStatus:
            guard modemControl & Self.loopback != 0 else { return 0xB0 }  // DCD, DSR, CTS
            // Loopback: DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
            let m = modemControl
            return (m & 0x01) << 5 | (m & 0x02) << 3 | (m & 0x04) << 4 | (m & 0x08) << 4
        case .scratch: return scratch
        }
    }

    /// A guest write of `value` to `register`; returns the byte sent, if any.
    public mutating func write(_ register: Register, _ value: UInt8) -> UInt8? {
        let dlab = lineControl & Self.dlab != 0
        switch register {
        case .data:
            if dlab { divisor = divisor & 0xFF00 | UInt16(value); return nil }
            transmitterEmptyEvent = true        // sent at once: THR is empty again
            return modemControl & Self.loopback != 0 ? nil : value
        case .interruptEnable:
            if dlab { divisor = divisor & 0x00FF | UInt16(value) << 8; return nil }
            // Enabling THRE while the transmitter is empty raises it at once.
            if value & Self.enableTransmitterEmpty != 0, interruptEnable & Self.enableTransmitterEmpty == 0 {
                transmitterEmptyEvent = true
            }
            interruptEnable = value & 0x0F
        case .interruptIdentification:
            fifoEnabled = value & 0x01 != 0     // FIFO control register
        case .lineControl: lineControl = value
        case .modemControl: modemControl = value & 0x1F
        case .lineStatus, .modemStatus: break   // read-only
        case .scratch: scratch = value
        }
        return nil
    }
}
