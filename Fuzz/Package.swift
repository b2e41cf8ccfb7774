// swift-tools-version: 6.1
// libFuzzer entry points for Hark's decoders. Built and run by tools/fuzz, not by CI:
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
  dependencies: [.package(path: "../")],
  targets: [
    .target(name: "CFuzzDriver"),
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
  ]
)
