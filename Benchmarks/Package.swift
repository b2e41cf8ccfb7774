// swift-tools-version: 6.1
// Hark's benchmarks: a nested package, so that normal builds of Hark never build them.
// Run them with the scripts in tools/ (tools/bench-codec), always in release mode.

import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, so Hark's identity is the name of the
/// checkout's folder (whatever a clone was called).
let hark = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .lastPathComponent.lowercased()

let package = Package(
  name: "HarkBenchmarks",
  dependencies: [.package(path: "../")],
  targets: [
    // Process CPU time, resident set, arguments and output for the executables below.
    .target(name: "BenchmarkSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
    // libprotobuf-c generated from proto/: the same target the tests use (a symlink).
    .target(
      name: "CHarkProtoOracle",
      linkerSettings: [.linkedLibrary("protobuf-c")]
    ),
    .executableTarget(
      name: "TransportBenchmark",
      dependencies: [
        "BenchmarkSupport",
        .product(name: "HarkGRPC", package: hark),
        .product(name: "HarkGRPCCore", package: hark),
        .product(name: "HarkTesting", package: hark),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
      name: "RecognizeBenchmark",
      dependencies: [
        "BenchmarkSupport",
        .product(name: "HarkAudio", package: hark),
        .product(name: "HarkClient", package: hark),
        .product(name: "HarkLoad", package: hark),
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkRecognizer", package: hark),
        .product(name: "HarkServer", package: hark),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // The sphinx engine's real-time factor on Samples/ at 8 kHz:
    //   swift run -c release --package-path Benchmarks SphinxBenchmark
    .executableTarget(
      name: "SphinxBenchmark",
      dependencies: [
        "BenchmarkSupport",
        .product(name: "HarkAudio", package: hark),
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkRecognizer", package: hark),
        .product(name: "HarkSphinx", package: hark),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // The server session state machine's cost per audio message (tools/bench-session).
    .executableTarget(
      name: "SessionBenchmark",
      dependencies: [
        "BenchmarkSupport",
        .product(name: "HarkAudio", package: hark),
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkRecognizer", package: hark),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
      name: "CodecBenchmark",
      dependencies: [
        "CHarkProtoOracle",
        .product(name: "HarkProto", package: hark),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
  ]
)
