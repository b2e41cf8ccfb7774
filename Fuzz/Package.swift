// swift-tools-version: 6.1
// libFuzzer entry points for Hark's decoders, its recognizer sessions and its HTTP/2 server
// transport. Built and run by tools/fuzz, not by CI:
//   swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address

import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, so Hark's identity is the name of the
/// checkout's folder (whatever a clone was called).
let hark = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .lastPathComponent.lowercased()

let settings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
  name: "HarkFuzz",
  dependencies: [
    .package(path: "../"),
    // Only for what Hark's products do not re-export: EmbeddedChannel and a quiet Logger.
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
  ],
  targets: [
    .target(name: "CFuzzDriver"),
    // What every structured fuzzer shares: its input read as a stream of choices, and checks.
    .target(name: "FuzzSupport", swiftSettings: settings),
    .executableTarget(
      name: "FuzzRequest",
      dependencies: ["CFuzzDriver", .product(name: "HarkProto", package: hark)],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "FuzzResponse",
      dependencies: ["CFuzzDriver", .product(name: "HarkProto", package: hark)],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "FuzzDeframer",
      dependencies: [
        "CFuzzDriver",
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkGRPCCore", package: hark),
      ],
      swiftSettings: settings
    ),
    // Whole Recognize sessions: programs of requests driven through the server's state machine
    // and a real engine, with the protocol's invariants checked after every event.
    .target(
      name: "SessionFuzzing",
      dependencies: [
        "FuzzSupport",
        .product(name: "HarkAudio", package: hark),
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkRecognizer", package: hark),
      ],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "FuzzSessionDTMF",
      dependencies: [
        "CFuzzDriver",
        "SessionFuzzing",
        .product(name: "HarkRecognizer", package: hark),
      ],
      swiftSettings: settings
    ),
    .executableTarget(
      name: "FuzzSessionSphinx",
      dependencies: [
        "CFuzzDriver",
        "SessionFuzzing",
        .product(name: "HarkRecognizer", package: hark),
        .product(name: "HarkSphinx", package: hark),
      ],
      swiftSettings: settings
    ),
    // The server transport (GRPCConnectionHandler and nghttp2) on an EmbeddedChannel: programs
    // of HTTP/2 frames, the loop's clock advanced between them; no trap, no frame the server
    // should not send, and every connection and stream freed once the channel closes.
    .executableTarget(
      name: "FuzzHTTP2",
      dependencies: [
        "CFuzzDriver",
        "FuzzSupport",
        .product(name: "HarkGRPC", package: hark),
        .product(name: "HarkGRPCCore", package: hark),
        .product(name: "HarkProto", package: hark),
        .product(name: "HarkTesting", package: hark),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
      ],
      swiftSettings: settings
    ),
  ]
)
