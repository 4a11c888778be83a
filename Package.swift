// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "HVKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HVCore", targets: ["HVCore"]),
        .library(name: "HVSpecs", targets: ["HVSpecs"]),
        .executable(name: "hvkit", targets: ["hvkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // The reference core: pure Swift, no syscalls.
        .target(
            name: "HVCore",
            // Lets release builds of clients specialize the generic core for
            // the formats they use (the address space is generic over its
            // page-table format).
            swiftSettings: [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),
        // Executable specifications: the abstract model, the invariants, the
        // abstraction function and the model-based checker.
        .target(name: "HVSpecs", dependencies: ["HVCore"], path: "Specs"),
        .executableTarget(
            name: "hvkit",
            dependencies: [
                "HVCore", "HVSpecs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "TestSupport", dependencies: ["HVCore"], path: "Tests/TestSupport"),
        .testTarget(
            name: "HVCoreTests",
            dependencies: [
                "HVCore", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(name: "HVSpecsTests", dependencies: ["HVCore", "HVSpecs", "TestSupport"]),
        .testTarget(name: "ProjectTests", dependencies: []),
    ]
)
