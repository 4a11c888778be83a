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

    /// The campaign's cases reach the frame reserve: steps after which a
    /// space holds reserved frames, checked against the model's ledger
    /// (Invariants.raii counts them) like every other step.
    @Test func campaignExercisesTheFrameReserve() throws {
        var stepsWithReserve = 0
        for i in 0..<150 {
            let (spaces, ops) = Campaign.generate(seed: Self.seed, case: i, maxLength: 24)
            let run = try Lockstep(spaces: spaces)
            for (k, op) in ops.enumerated() {
                if let problem = run.apply(op) { Issue.record("case \(i) step \(k + 1) \(op): \(problem)"); break }
                if run.spaces.contains(where: { !$0.reservedFrames.isEmpty }) { stepsWithReserve += 1 }
            }
            if let problem = run.finish() { Issue.record("case \(i) teardown: \(problem)") }
        }
        print("frame reserve in the campaign: \(stepsWithReserve) checked steps with reserved frames")
        #expect(stepsWithReserve >= 100, "\(stepsWithReserve) steps")
    }

    /// The campaign's cases reach the lazy-window path: areas that got a
    /// window and guest fills recorded in them, in lockstep with the model
    /// (a case that stopped agreeing fails here too).
    @Test func campaignExercisesLazyWindows() throws {
        var windows = 0, fills = 0, casesWithWindows = 0
        for i in 0..<150 {
            let (spaces, ops) = Campaign.generate(seed: Self.seed, case: i, maxLength: 24)
            guard ops.contains(where: { if case .reserveWindows = $0 { true } else { false } }) else { continue }
            let run = try Lockstep(spaces: spaces)
            for (k, op) in ops.enumerated() {
                if let problem = run.apply(op) { Issue.record("case \(i) step \(k + 1) \(op): \(problem)"); break }
            }
            if let problem = run.finish() { Issue.record("case \(i) teardown: \(problem)") }
            if run.windowsReserved > 0 { casesWithWindows += 1 }
            windows += run.windowsReserved
            fills += run.guestFillsRecorded
        }
        print("lazy windows in the campaign: \(casesWithWindows) cases, \(windows) windows, \(fills) guest fills recorded")
        #expect(casesWithWindows >= 10 && windows >= 15 && fills >= 20, "\(casesWithWindows) cases, \(windows) windows, \(fills) fills")
    }
}
