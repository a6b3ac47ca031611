// swift-tools-version: 6.0
import PackageDescription

// AVX2 + FMA so SIMD code compiles to vector FMAs (see README "Performance").
let optimized: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"]),
    .swiftLanguageMode(.v5),
]
let optimizedC: [CSetting] = [.unsafeFlags(["-march=x86-64-v3", "-O3"])]

let package = Package(
    name: "UniLIP",
    products: [
        .library(name: "UniLIPCore", targets: ["UniLIPCore"]),
        .library(name: "UniLIPNN", targets: ["UniLIPNN"]),
        .library(name: "UniLIPIO", targets: ["UniLIPIO"]),
        .library(name: "UniLIPText", targets: ["UniLIPText"]),
        .library(name: "UniLIPModels", targets: ["UniLIPModels"]),
        .library(name: "ShapesWorld", targets: ["ShapesWorld"]),
        .library(name: "UniLIPPipelines", targets: ["UniLIPPipelines"]),
        .library(name: "UniLIPServer", targets: ["UniLIPServer"]),
        .executable(name: "unilip", targets: ["unilip"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        // AVX-512 kernels chosen at run time (per-function target attributes; the baseline
        // stays x86-64-v3 so the binary runs on AVX2-only CPUs).
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: optimizedC),
        .target(name: "UniLIPCore", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimized),
        .target(name: "UniLIPNN", dependencies: ["UniLIPCore"], swiftSettings: optimized),
        .target(name: "UniLIPIO", dependencies: ["UniLIPCore", "UniLIPNN", "CPNG", "CTurboJPEG"],
                swiftSettings: optimized),
        .target(name: "UniLIPText", swiftSettings: optimized),
        .target(name: "UniLIPModels", dependencies: ["UniLIPCore", "UniLIPNN"], swiftSettings: optimized),
        .target(name: "UniLIPPipelines",
                dependencies: ["UniLIPCore", "UniLIPNN", "UniLIPIO", "UniLIPText", "UniLIPModels", "ShapesWorld"],
                swiftSettings: optimized),
        .target(name: "ShapesWorld", dependencies: ["UniLIPCore", "UniLIPIO"], swiftSettings: optimized),
        // The web server: routes, job queue, limits and the embedded page; the CLI only starts it.
        .target(name: "UniLIPServer",
                dependencies: [
                    "UniLIPCore", "UniLIPIO", "UniLIPModels", "UniLIPPipelines", "ShapesWorld",
                    .product(name: "Hummingbird", package: "hummingbird"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                swiftSettings: optimized),
        .executableTarget(
            name: "unilip",
            dependencies: [
                "UniLIPCore", "UniLIPNN", "UniLIPIO", "UniLIPText", "UniLIPModels", "UniLIPPipelines", "ShapesWorld",
                "UniLIPServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: optimized),
        .target(name: "UniLIPTestSupport", dependencies: ["UniLIPCore"], path: "Tests/Support",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPCoreTests", dependencies: ["UniLIPCore", "UniLIPTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPNNTests", dependencies: ["UniLIPCore", "UniLIPNN", "UniLIPTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPIOTests", dependencies: ["UniLIPCore", "UniLIPNN", "UniLIPIO", "UniLIPTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPTextTests", dependencies: ["UniLIPText", "ShapesWorld", "UniLIPPipelines"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPModelsTests",
                    dependencies: ["UniLIPModels", "UniLIPCore", "UniLIPNN", "UniLIPIO", "UniLIPTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPPipelinesTests",
                    dependencies: ["UniLIPPipelines", "UniLIPModels", "UniLIPText", "ShapesWorld", "UniLIPCore",
                                   "UniLIPNN", "UniLIPIO", "UniLIPTestSupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "UniLIPServerTests",
                    dependencies: ["UniLIPServer", "UniLIPIO", "UniLIPCore", "ShapesWorld",
                                   .product(name: "HummingbirdTesting", package: "hummingbird")],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "ShapesWorldTests", dependencies: ["ShapesWorld", "UniLIPCore", "UniLIPIO"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
