// swift-tools-version: 6.1
// Hark: the streaming Recognize RPC of the Nuance Mix ASRaaS protocol (nuance.asr.v1) in Swift.

import PackageDescription

let defaultSwiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let products: [Product] = [
  .executable(name: "hark", targets: ["HarkCLI"]),
  .library(name: "HarkProto", targets: ["HarkProto"]),
  .library(name: "HarkGRPCCore", targets: ["HarkGRPCCore"]),
  .library(name: "HarkGRPC", targets: ["HarkGRPC"]),
  .library(name: "HarkTesting", targets: ["HarkTesting"]),
  .library(name: "HarkAudio", targets: ["HarkAudio"]),
  .library(name: "HarkRecognizer", targets: ["HarkRecognizer"]),
  .library(name: "HarkServer", targets: ["HarkServer"]),
  .library(name: "HarkClient", targets: ["HarkClient"]),
  .library(name: "HarkLoad", targets: ["HarkLoad"]),
  .library(name: "HarkSphinx", targets: ["HarkSphinx"]),
]

let dependencies: [Package.Dependency] = [
  .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
  .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
  .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
  .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
  // TLS under the nghttp2 handler (BoringSSL).
  .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
  // HTTPS to OAuth2 token endpoints.
  .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
  // Verifying JWT bearer tokens against a JWKS.
  .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
  // Certificates made by the tests (already a dependency of jwt-kit).
  .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
  .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
  .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
]

let targets: [Target] = [
  // Layer 1: the protobuf wire codec and the nuance.asr.v1 messages (pure).
  .target(
    name: "HarkProto",
    dependencies: [.product(name: "NIOCore", package: "swift-nio")],
    swiftSettings: defaultSwiftSettings
  ),

  // Layer 2: gRPC rules: message framing and status codes (pure).
  .target(
    name: "HarkGRPCCore",
    dependencies: [.product(name: "NIOCore", package: "swift-nio")],
    swiftSettings: defaultSwiftSettings
  ),

  // Audio: encodings, G.711, WAV files, DTMF synthesis and detection (pure).
  .target(
    name: "HarkAudio",
    dependencies: ["CHarkAudioKernels"],
    swiftSettings: defaultSwiftSettings
  ),
  // The DTMF detector's inner loop in 256-bit AVX registers, chosen at run time (Swift cannot
  // compile one function for a wider instruction set than the rest).
  .target(name: "CHarkAudioKernels"),
  // A cache prefetch hint, which Swift has no spelling for (see hark_prefetch.h).
  .target(name: "CHarkPrefetch"),

  // libnghttp2, the HTTP/2 implementation (system library, version 1.52).
  .systemLibrary(
    name: "CNGHTTP2",
    pkgConfig: "libnghttp2",
    providers: [.apt(["libnghttp2-dev"])]
  ),

  // Layer 3: gRPC over HTTP/2 on nghttp2 and SwiftNIO sockets: connections, servers, calls (I/O).
  .target(
    name: "HarkGRPC",
    dependencies: [
      "CHarkPrefetch",
      "CNGHTTP2",
      "HarkGRPCCore",
      "HarkProto",
      .product(name: "Logging", package: "swift-log"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "NIOSSL", package: "swift-nio-ssl"),
      .product(name: "NIOTLS", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // The Echo service of proto/hark/testing: for tests, interop and benchmarks of the transport.
  .target(
    name: "HarkTesting",
    dependencies: [
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // Layer 4: the Recognize protocol: session state machines, endpointing, engines (pure).
  .target(
    name: "HarkRecognizer",
    dependencies: [
      "HarkAudio",
      "HarkGRPCCore",
      "HarkProto",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // libpocketsphinx and libsphinxbase, the speech recognizer (system libraries, 0.8+5prealpha).
  .systemLibrary(
    name: "CPocketSphinx",
    pkgConfig: "pocketsphinx",
    providers: [.apt(["libpocketsphinx-dev", "libsphinxbase-dev"])]
  ),

  // The `sphinx` engine: CMU PocketSphinx behind the SpeechEngine protocol.
  .target(
    name: "HarkSphinx",
    dependencies: ["CPocketSphinx", "HarkAudio", "HarkProto", "HarkRecognizer"],
    swiftSettings: defaultSwiftSettings
  ),

  // The recognizer server: a session actor per RPC on the gRPC server, and the engine pool.
  .target(
    name: "HarkServer",
    dependencies: [
      "CHarkPrefetch",
      "HarkAudio",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "Crypto", package: "swift-crypto"),
      .product(name: "JWTKit", package: "jwt-kit"),
      .product(name: "Logging", package: "swift-log"),
      .product(name: "NIOSSL", package: "swift-nio-ssl"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // The client library: a session actor per recognition, audio sources.
  .target(
    name: "HarkClient",
    dependencies: [
      "CHarkPrefetch",
      "HarkAudio",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "AsyncHTTPClient", package: "async-http-client"),
      .product(name: "Logging", package: "swift-log"),
      .product(name: "NIOHTTP1", package: "swift-nio"),
      .product(name: "NIOSSL", package: "swift-nio-ssl"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // `hark load`: the load generator, its measurements and reports.
  .target(
    name: "HarkLoad",
    dependencies: [
      "CHarkPrefetch",
      "HarkAudio",
      "HarkClient",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      .product(name: "Histogram", package: "hdrhistogram-swift"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  // What `hark` does, as a library: its commands are thin over it.
  .target(
    name: "HarkCLIKit",
    dependencies: [
      "HarkAudio",
      "HarkClient",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      "HarkServer",
      .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOSSL", package: "swift-nio-ssl"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  // The `hark` command.
  .executableTarget(
    name: "HarkCLI",
    dependencies: [
      "HarkAudio",
      "HarkCLIKit",
      "HarkLoad",
      "HarkClient",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      "HarkServer",
      "HarkSphinx",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
      .product(name: "Logging", package: "swift-log"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "NIOSSL", package: "swift-nio-ssl"),
    ],
    swiftSettings: defaultSwiftSettings
  ),

  // Test-only: libprotobuf-c code generated by `tools/generate-protobuf-c` from proto/.
  .target(
    name: "CHarkProtoOracle",
    path: "Tests/CHarkProtoOracle",
    linkerSettings: [.linkedLibrary("protobuf-c")]
  ),

  // Test-only: what several test targets share (the `.cpuBound` trait).
  .target(
    name: "HarkTestSupport",
    dependencies: [
      "CNGHTTP2",
      "HarkGRPCCore",
      "HarkProto",
      .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "Crypto", package: "swift-crypto"),
      .product(name: "_CryptoExtras", package: "swift-crypto"),
      .product(name: "X509", package: "swift-certificates"),
      .product(name: "SwiftASN1", package: "swift-asn1"),
      // Keys, JWKS files and signed JWTs for the tests of bearer tokens.
      .product(name: "JWTKit", package: "jwt-kit"),
    ],
    path: "Tests/HarkTestSupport",
    swiftSettings: defaultSwiftSettings
  ),

  .testTarget(
    name: "HarkProtoTests",
    dependencies: [
      "HarkTestSupport",
      "HarkProto",
      "CHarkProtoOracle",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkGRPCCoreTests",
    dependencies: [
      "HarkGRPCCore",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkAudioTests",
    dependencies: ["HarkAudio", "HarkTesting", "HarkTestSupport"],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkSphinxTests",
    dependencies: [
      "HarkTestSupport",
      "HarkAudio",
      "HarkClient",
      "HarkProto",
      "HarkRecognizer",
      "HarkServer",
      "HarkSphinx",
      "HarkTesting",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkRecognizerTests",
    dependencies: [
      "HarkTestSupport",
      "HarkAudio",
      "HarkClient",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      "HarkServer",
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkCLITests",
    dependencies: [
      // Only so that `swift build --build-tests` builds the `hark` the tests run.
      "HarkCLI",
      "HarkAudio",
      "HarkCLIKit",
      "HarkClient",
      "HarkGRPC",
      "HarkGRPCCore",
      "HarkProto",
      "HarkRecognizer",
      "HarkTesting",
      "HarkTestSupport",
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkLoadTests",
    dependencies: [
      "HarkAudio",
      "HarkClient",
      "HarkLoad",
      "HarkProto",
      "HarkRecognizer",
      "HarkServer",
      .product(name: "NIOCore", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
  .testTarget(
    name: "HarkGRPCTests",
    dependencies: [
      "HarkTestSupport",
      "CNGHTTP2",
      "HarkGRPC",
      .product(name: "Logging", package: "swift-log"),
      "HarkTesting",
      "HarkGRPCCore",
      "HarkProto",
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
    ],
    swiftSettings: defaultSwiftSettings
  ),
]

let package = Package(
  name: "Hark",
  products: products,
  dependencies: dependencies,
  targets: targets
)
