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

    @Test func implementationRefinesTheModel() {
        let cases = 400 * Self.scale
        let (found, run) = Campaign.hunt(cases: cases, seed: Self.seed)
        #expect(run == cases)
        if let c = found {
            Issue.record("counterexample (\(c.ops.count) operations, case \(c.caseIndex) of seed \(hex(c.seed))):\n\(c.message)\n\n\(c.swiftTest)")
        }
    }
}
