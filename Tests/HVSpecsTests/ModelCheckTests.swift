import Foundation
import HVCore
import HVSpecs
import Testing

/// The model-based campaign as a test: implementation and model in
/// lockstep over random operation sequences on 1-3 address spaces. Set
/// HVKIT_PROPERTY_SCALE (default 1) to multiply the number of cases.
@Suite("Model-based properties")
struct ModelCheckTests {
    static var scale: Int { Int(ProcessInfo.processInfo.environment["HVKIT_PROPERTY_SCALE"] ?? "") ?? 1 }
    static let seed: UInt64 = 0x4856_4B49_5400_0001

    /// 400 cases on EPT, 150 on each other format (every case runs the
    /// whole address space, faults and all, over that format's table).
    @Test(arguments: NestedFormat.campaign)
    func implementationRefinesTheModel(_ format: NestedFormat) {
        let cases = (format == .ept ? 400 : 150) * Self.scale
        let (found, run) = Campaign.hunt(cases: cases, seed: Self.seed, format: format)
        #expect(run == cases)
        if let c = found {
            Issue.record("\(format): counterexample (\(c.ops.count) operations, case \(c.caseIndex) of seed \(hex(c.seed))):\n\(c.message)\n\n\(c.swiftTest)")
        }
    }
}
