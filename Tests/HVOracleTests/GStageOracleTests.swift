import HVCore
import HVOracle
import Testing

/// QEMU's riscv64 CPU as a second oracle for the G-stage formats.
@Suite("QEMU oracle: RISC-V G-stage")
struct GStageOracleTests {
    static func run<F: RISCVGStageLayout>(_: F.Type, seed: UInt64, mutation: GStageOracle<F>.Mutation? = nil) throws -> OracleReport? {
        do {
            return try GStageOracle<F>(seed: seed, probes: 13_500, mutation: mutation).run()
        } catch let OracleError.missingTool(tool) {
            print("SKIPPED: QEMU oracle \(F.self): \(tool) is not installed (scripts/setup installs it)")
            return nil
        }
    }

    @Test func sv39x4AgreesWithQEMU() throws {
        guard let r = try Self.run(Sv39x4Format.self, seed: 0x5339) else { return }
        print(r.summary)
        #expect(r.compared >= 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))\n\(r.disagreements.first?.replay ?? "")")
        // The named defect is still real: QEMU answers mapped bit-40 probes differently.
        #expect(r.excludedDisagreeing.values.reduce(0, +) > 0, "QEMU no longer faults GPAs with bit 40 set: drop the defect rule")
    }

    @Test func sv48x4AgreesWithQEMU() throws {
        guard let r = try Self.run(Sv48x4Format.self, seed: 0x5348) else { return }
        print(r.summary)
        #expect(r.compared >= 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))\n\(r.disagreements.first?.replay ?? "")")
        #expect(r.excludedDisagreeing.values.reduce(0, +) > 0, "QEMU no longer faults GPAs with bit 49 set: drop the defect rule")
    }

    /// Teeth: a table image with a seeded encoding bug disagrees.
    @Test(arguments: GStageOracle<Sv39x4Format>.Mutation.allCases)
    func aSeededEncodingBugIsCaught(_ mutation: GStageOracle<Sv39x4Format>.Mutation) throws {
        guard let r = try Self.run(Sv39x4Format.self, seed: 0x5339, mutation: mutation) else { return }
        print(r.summary)
        #expect(r.disagreementCount > 100, "\(mutation.rawValue) went (almost) unnoticed: \(r.disagreementCount)")
        if let d = r.disagreements.first { print("  first: \(d)") }
    }
}
