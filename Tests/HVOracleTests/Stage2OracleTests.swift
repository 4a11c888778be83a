import HVCore
import HVOracle
import Testing

/// QEMU's aarch64 CPU as a second oracle for stage 2.
@Suite("QEMU oracle: AArch64 stage 2")
struct Stage2OracleTests {
    static func run<F: Stage2Layout>(_: F.Type, seed: UInt64, mutation: Stage2Oracle<F>.Mutation? = nil) throws -> OracleReport? {
        do {
            return try Stage2Oracle<F>(seed: seed, probes: 10_000, mutation: mutation).run()
        } catch let OracleError.missingTool(tool) {
            print("SKIPPED: QEMU oracle \(Stage2Oracle<F>.name): \(tool) is not installed (scripts/setup installs it)")
            return nil
        }
    }

    /// Two IPA widths, one with a concatenated root.
    @Test func ipa40WithItsConcatenatedRootAgreesWithQEMU() throws {
        guard let r = try Self.run(Stage2IPA40Format.self, seed: 0x5240) else { return }
        print(r.summary)
        #expect(r.compared == 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))\n\(r.disagreements.first?.replay ?? "")")
    }

    @Test func ipa48AgreesWithQEMU() throws {
        guard let r = try Self.run(Stage2IPA48Format.self, seed: 0x5248) else { return }
        print(r.summary)
        #expect(r.compared == 10_000)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))\n\(r.disagreements.first?.replay ?? "")")
    }

    /// The other IPA widths: partial roots (4, 64 and 32 entries) and eight
    /// concatenated tables, each checked by the emulated CPU.
    @Test(arguments: [32, 36, 42, 44])
    func everyOtherIPAWidthAgreesWithQEMU(_ bits: Int) throws {
        let r: OracleReport?
        switch bits {
        case 32: r = try Self.run(Stage2IPA32Format.self, seed: 0x5232)
        case 36: r = try Self.run(Stage2IPA36Format.self, seed: 0x5236)
        case 42: r = try Self.run(Stage2IPA42Format.self, seed: 0x5242)
        default: r = try Self.run(Stage2IPA44Format.self, seed: 0x5244)
        }
        guard let r else { return }
        print(r.summary)
        #expect(r.compared == 10_000 && r.mappings > 100)
        #expect(r.disagreementCount == 0, "\(r.disagreements.prefix(3).map(\.description).joined(separator: "\n"))")
    }

    /// Teeth: upstream's swapped S2AP, and a clear access flag, disagree.
    @Test(arguments: Stage2Oracle<Stage2IPA40Format>.Mutation.allCases)
    func aSeededEncodingBugIsCaught(_ mutation: Stage2Oracle<Stage2IPA40Format>.Mutation) throws {
        guard let r = try Self.run(Stage2IPA40Format.self, seed: 0x5240, mutation: mutation) else { return }
        print(r.summary)
        #expect(r.disagreementCount > 100, "\(mutation.rawValue) went (almost) unnoticed: \(r.disagreementCount)")
        if let d = r.disagreements.first { print("  first: \(d)") }
    }
}
