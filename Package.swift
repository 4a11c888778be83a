// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "HVKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HVCore", targets: ["HVCore"]),
        .library(name: "HVSpecs", targets: ["HVSpecs"]),
        .library(name: "SMT", targets: ["SMT"]),
        .library(name: "HVKVM", targets: ["HVKVM"]),
        .library(name: "HVConfig", targets: ["HVConfig"]),
        .library(name: "HVProofs", targets: ["HVProofs"]),
        .library(name: "HVOracle", targets: ["HVOracle"]),
        .executable(name: "hvkit", targets: ["hvkit"]),
        .executable(name: "hvkit-vmm", targets: ["hvkit-vmm"]),
        .executable(name: "hvkit-serve", targets: ["hvkit-serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // The reference core: pure Swift, no syscalls.
        // Relaxed atomic loads and stores of page-table words, streaming zeroing (header only).
        .target(name: "CCoreIntrinsics"),
        .target(
            name: "HVCore",
            dependencies: ["CCoreIntrinsics"],
            // Lets release builds of clients specialize the generic core for
            // the formats they use (the address space is generic over its
            // page-table format).
            swiftSettings: [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),
        // Z3's C API through pkg-config (Debian: libz3-dev).
        .systemLibrary(name: "CZ3", pkgConfig: "z3", providers: [.apt(["libz3-dev"])]),
        // A small typed, reference-counted wrapper over the Z3 C API, and the
        // symbolic conformance of the kernels' bit-vector domain.
        .target(name: "SMT", dependencies: ["CZ3", "HVCore"]),
        // The benchmark's yardsticks: a minimal C walk and fault loop, timed in the same run.
        .target(name: "CBenchYardstick"),
        // Theorems over HVCore's shipped kernels.
        .target(name: "HVProofs", dependencies: ["SMT", "HVCore"], path: "Proofs", exclude: ["smt2"]),
        // linux/kvm.h structs and ioctl numbers for Swift; the only C that
        // includes kernel headers.
        .target(name: "CKVM"),
        // Runs HVCore address spaces as the memory of KVM guests.
        .target(name: "HVKVM", dependencies: ["CKVM", "HVCore", .product(name: "SystemPackage", package: "swift-system")]),
        // VM configurations: a TOML 1.0 reader with positions, axvisor's format,
        // device trees, planning, rules with witnesses.
        .target(name: "HVConfig", dependencies: ["HVCore"]),
        // QEMU (TCG) as an independent oracle for the formats and modes KVM cannot run here.
        .target(name: "HVOracle", dependencies: ["HVCore"], exclude: ["Programs"]),
        // Executable specifications: the abstract model, the invariants, the
        // abstraction function and the model-based checker.
        .target(name: "HVSpecs", dependencies: ["HVCore"], path: "Specs"),
        // The target protocol: the model-based checker driving another
        // process's mapping code over stdin/stdout, and HVCore behind it.
        .target(name: "HVTarget", dependencies: ["HVCore", "HVSpecs"]),
        .executableTarget(
            name: "hvkit",
            dependencies: [
                "HVCore", "HVSpecs", "HVTarget", "HVProofs", "SMT", "HVKVM", "HVConfig", "HVOracle", "CBenchYardstick",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // `hvkit run IMAGE` alone, on HVCore and HVKVM only: starts small.
        // A static executable (the Swift runtime, libstdc++ and glibc linked in):
        // no dynamic loader, no shared libraries to map, relocate and fault in
        // at start (peak RSS 8.7 -> 5.9 MiB for a tiny guest). The linker warns
        // that the runtime's dlopen of a prespecialization library needs the
        // build's glibc at run time; nothing on the VMM path calls it.
        // The functions a start runs come first in .text (lld's symbol
        // ordering, from scripts/vmm-startup-order): few pages touched, few
        // mapped around them (peak RSS 5.9 -> 4.5 MiB).
        .executableTarget(name: "hvkit-vmm", dependencies: ["HVCore", "HVKVM"], exclude: ["startup-symbols.txt"],
                          linkerSettings: [.unsafeFlags(["-static-executable", "-use-ld=lld", "-Xlinker", "--gc-sections",
                                                         "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/hvkit-vmm/startup-symbols.txt",
                                                         "-Xlinker", "--no-warn-symbol-ordering"], .when(platforms: [.linux]))]),
        // `hvkit-serve`: `hvkit serve` alone, static like hvkit-vmm, for hunt's one process per case.
        .executableTarget(name: "hvkit-serve", dependencies: ["HVTarget"],
                          linkerSettings: [.unsafeFlags(["-static-executable", "-use-ld=lld", "-Xlinker", "--gc-sections"], .when(platforms: [.linux]))]),
        // Fuzz targets: plain builds replay a corpus; `scripts/fuzz` builds them
        // with -sanitize=fuzzer,address -DFUZZING for libFuzzer.
        .target(name: "FuzzSupport", path: "Fuzz/support"),
        .executableTarget(name: "fuzz-config", dependencies: ["HVConfig", "FuzzSupport"], path: "Fuzz/config"),
        .executableTarget(name: "fuzz-dtb", dependencies: ["HVConfig", "FuzzSupport"], path: "Fuzz/dtb"),
        .executableTarget(name: "fuzz-image", dependencies: ["HVKVM", "FuzzSupport"], path: "Fuzz/image"),
        .executableTarget(name: "fuzz-model", dependencies: ["HVCore", "HVSpecs", "FuzzSupport"], path: "Fuzz/model"),
        .executableTarget(name: "fuzz-protocol", dependencies: ["HVTarget", "FuzzSupport"], path: "Fuzz/protocol"),
        .target(name: "TestSupport", dependencies: ["HVCore"], path: "Tests/TestSupport"),
        .testTarget(
            name: "HVCoreTests",
            dependencies: [
                "HVCore", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "HVKVMTests", dependencies: ["HVKVM", "HVCore", "HVOracle", "TestSupport"]),
        .testTarget(name: "HVConfigTests", dependencies: ["HVConfig", "HVCore", "TestSupport"], exclude: ["Fixtures", "Oracle"]),
        .testTarget(name: "SMTTests", dependencies: ["SMT", "HVCore"]),
        .testTarget(name: "HVProofsTests", dependencies: ["HVProofs", "SMT", "HVCore"]),
        .testTarget(name: "HVSpecsTests", dependencies: ["HVCore", "HVSpecs", "TestSupport"]),
        .testTarget(name: "HVOracleTests", dependencies: ["HVOracle", "HVCore"]),
        .testTarget(name: "HVTargetTests", dependencies: ["HVTarget", "HVSpecs", "HVCore", "TestSupport"]),
        .testTarget(name: "ProjectTests", dependencies: []),
    ]
)

// Sanitizer runs (scripts/sanitize, which sets HVKIT_SANITIZE=1): the runners
// `@testable import` HVCore, so they build only with -enable-testing; without
// the variable they are left out, and a plain `swift build -c release` builds
// everything else.
if Context.environment["HVKIT_SANITIZE"] != nil {
    package.targets += [
        // The concurrent core in a release build, and (last) the 20-line
        // program showing the TSan annotation works.
        .executableTarget(name: "sanitize-core", dependencies: ["HVCore"], path: "Sanitize/core"),
        // The core's concurrency tests alone (symlinked from HVCoreTests), for
        // a release ThreadSanitizer build that needs no other test target.
        .executableTarget(name: "sanitize-tests", dependencies: ["HVCore", "TestSupport"], path: "Sanitize/tests"),
        // The core and KVM suites (symlinked directories) for AddressSanitizer.
        .executableTarget(name: "sanitize-core-suite", dependencies: ["HVCore", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based")],
                          path: "Sanitize/suites/core"),
        .executableTarget(name: "sanitize-kvm-suite", dependencies: ["HVKVM", "HVCore", "HVOracle", "TestSupport"], path: "Sanitize/suites/kvm"),
        .executableTarget(name: "tsan-mutex-demo", dependencies: ["CCoreIntrinsics"], path: "Sanitize/mutex-demo"),
    ]
}
