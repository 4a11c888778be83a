import HVCore
import HVOracle
import Testing

/// QEMU's x86 CPU as the oracle for the guest paging modes PVM cannot enter.
@Suite("QEMU oracle: x86 32-bit, PAE and 4-level guest paging")
struct X86PagingOracleTests {
    static func run(_ mode: Int, seed: UInt64, bug: X86PagingOracle.SeededWalkerBug? = nil, user: Bool = false, smepSmap: Bool = false) throws -> OracleReport? {
        do {
            return try X86PagingOracle(mode: mode, seed: seed, probes: mode == 4 ? 11_000 : 10_500, bug: bug, user: user, smepSmap: smepSmap).run()
        } catch let OracleError.missingTool(tool) {
            print("SKIPPED: QEMU oracle x86 mode \(mode): \(tool) is not installed (scripts/setup installs it)")
            return nil
        }
    }

    @Test(arguments: [0, 2, 3, 4])
    func theWalkerAgreesWithQEMU(_ mode: Int) throws {
        guard let r = try Self.run(mode, seed: 0x3286 + UInt64(mode)) else { return }
        print(r.summary)
        #expect(r.compared >= 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))")
    }

    /// User-mode accesses, and supervisor accesses under SMEP and SMAP.
    @Test(arguments: [(2, true, false), (3, true, false), (2, false, true), (3, false, true), (4, false, true), (4, true, false)])
    func privilegeAndSMEPSMAPAgreeWithQEMU(_ mode: Int, _ user: Bool, _ smepSmap: Bool) throws {
        guard let r = try Self.run(mode, seed: 0x3386 + UInt64(mode), user: user, smepSmap: smepSmap) else { return }
        print(r.summary)
        #expect(r.compared >= 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))")
    }

    /// Teeth: a walker that forgets CR0.WP, NX, the CPL or SMEP/SMAP disagrees.
    @Test(arguments: [(3, X86PagingOracle.SeededWalkerBug.ignoresWP), (3, .ignoresNX), (2, .ignoresWP), (3, .forgetsUserMode), (2, .ignoresSMEPSMAP), (4, .ignoresNX), (4, .forgetsUserMode), (2, .dropsPSE36), (0, .pageOff)])
    func aSeededWalkerBugIsCaught(_ mode: Int, _ bug: X86PagingOracle.SeededWalkerBug) throws {
        guard let r = try Self.run(mode, seed: 0x3286 + UInt64(mode), bug: bug, user: bug == .forgetsUserMode,
                                   smepSmap: bug == .ignoresSMEPSMAP) else { return }
        print(r.summary)
        #expect(r.disagreementCount > 50, "\(bug.rawValue) went (almost) unnoticed: \(r.disagreementCount)")
    }
}
