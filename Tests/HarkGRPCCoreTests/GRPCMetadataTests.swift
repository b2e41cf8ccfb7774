import HarkGRPCCore
import Testing

@Suite("Custom metadata")
struct GRPCMetadataTests {
  typealias Field = (name: String, value: String)

  static func fields(_ metadata: GRPCMetadata) -> [String] {
    metadata.headerFields.map { "\($0.name): \($0.value)" }
  }

  // MARK: - Adding and reading

  @Test("entries keep their order, repeated names included")
  func order() throws {
    var metadata = GRPCMetadata()
    #expect(metadata.isEmpty)
    try metadata.add("authorization", "Bearer y235.wef315yfh138vh31hv93hv8h3v")
    try metadata.add("x-client-request-id", "a")
    try metadata.add("trace-proto-bin", binary: [0x8E, 0x17, 0xAB])
    try metadata.add("x-client-request-id", "b")
    #expect(metadata.count == 4)
    #expect(
      metadata.map(\.name) == [
        "authorization", "x-client-request-id", "trace-proto-bin", "x-client-request-id",
      ]
    )
    #expect(metadata.values(for: "x-client-request-id") == [.string("a"), .string("b")])
    #expect(metadata.values(for: "trace-proto-bin") == [.binary([0x8E, 0x17, 0xAB])])
    #expect(metadata.values(for: "absent") == [])
    #expect(metadata.first("x-client-request-id") == "a")
    #expect(metadata.first("authorization") == "Bearer y235.wef315yfh138vh31hv93hv8h3v")
    #expect(metadata.first("trace-proto-bin") == nil)
    #expect(metadata.first("absent") == nil)
  }

  @Test("lookups are by the exact, lowercase name")
  func exactNames() throws {
    var metadata = GRPCMetadata()
    try metadata.add("x-id", "1")
    #expect(metadata.first("X-Id") == nil)
    #expect(metadata.first("x-id ") == nil)
  }

  @Test(
    "valid names and values are accepted",
    arguments: [
      ("a", ""),
      ("0-9_a.z", "value with spaces ~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"),
      ("x-grpc-like", "grpc-"),
      ("grpc", "the name grpc without a dash is not reserved"),
      ("-", "-"),
    ]
  )
  func validEntries(_ name: String, value: String) throws {
    var metadata = GRPCMetadata()
    try metadata.add(name, value)
    #expect(metadata.first(name) == value)
  }

  @Test(
    "invalid or reserved names and values are refused with the reason",
    arguments: [
      ("", "v", GRPCMetadataError.Reason.emptyName),
      ("X-Id", "v", .invalidNameByte(UInt8(ascii: "X"))),
      ("x-Id", "v", .invalidNameByte(UInt8(ascii: "I"))),
      (":path", "/a/b", .invalidNameByte(UInt8(ascii: ":"))),
      ("x id", "v", .invalidNameByte(UInt8(ascii: " "))),
      ("x/id", "v", .invalidNameByte(UInt8(ascii: "/"))),
      ("x-é", "v", .invalidNameByte(0xC3)),
      ("grpc-foo", "v", .reservedName),
      ("grpc-", "v", .reservedName),
      ("grpc-trace-bin", "v", .reservedName),
      ("te", "trailers", .reservedName),
      ("content-type", "application/grpc", .reservedName),
      ("user-agent", "hark", .reservedName),
      ("connection", "close", .reservedName),
      ("transfer-encoding", "chunked", .reservedName),
      ("x-id", "line\nbreak", .invalidValueByte(0x0A)),
      ("x-id", "tab\t", .invalidValueByte(0x09)),
      ("x-id", "\u{7F}", .invalidValueByte(0x7F)),
      ("x-id", "é", .invalidValueByte(0xC3)),
      ("x-bin", "text", .stringValueForBinaryName),
    ] as [(String, String, GRPCMetadataError.Reason)]
  )
  func invalidStringEntries(_ name: String, value: String, reason: GRPCMetadataError.Reason) {
    var metadata = GRPCMetadata()
    #expect(throws: GRPCMetadataError(name: name, reason: reason)) {
      try metadata.add(name, value)
    }
    #expect(metadata.isEmpty)
  }

  @Test(
    "binary values need a valid name ending in -bin",
    arguments: [
      ("x-id", GRPCMetadataError.Reason.binaryValueForASCIIName),
      ("x-binary", .binaryValueForASCIIName),
      ("X-Bin", .invalidNameByte(UInt8(ascii: "X"))),
      ("grpc-status-details-bin", .reservedName),
      ("grpc-tags-bin", .reservedName),
    ] as [(String, GRPCMetadataError.Reason)]
  )
  func invalidBinaryEntries(_ name: String, reason: GRPCMetadataError.Reason) {
    var metadata = GRPCMetadata()
    #expect(throws: GRPCMetadataError(name: name, reason: reason)) {
      try metadata.add(name, binary: [1])
    }
  }

  @Test("the error message names the entry and the problem")
  func errorMessage() {
    #expect(
      GRPCMetadataError(name: "X-Id", reason: .invalidNameByte(UInt8(ascii: "X"))).message
        == #"invalid metadata "X-Id": the name holds "X", not 0-9 a-z _ - ."#
    )
    #expect(
      GRPCMetadataError(name: "x-id", reason: .invalidValueByte(0x0A)).description
        == #"invalid metadata "x-id": the value holds byte 0xA, not 0x20-0x7E"#
    )
    #expect(
      GRPCMetadataError(name: "grpc-foo", reason: .reservedName).description
        == #"invalid metadata "grpc-foo": the name is reserved for gRPC and HTTP/2"#
    )
  }

  // MARK: - Sending

  @Test(
    "binary values are sent in unpadded base64",
    arguments: [
      ([], ""),
      (Array("f".utf8), "Zg"),
      (Array("fo".utf8), "Zm8"),
      (Array("foo".utf8), "Zm9v"),
      (Array("foob".utf8), "Zm9vYg"),
      (Array("fooba".utf8), "Zm9vYmE"),
      (Array("foobar".utf8), "Zm9vYmFy"),
      ([0x00, 0x01, 0x02], "AAEC"),
      ([0xFF], "/w"),
      ([0xFB, 0xEF, 0xBE], "++++"),
      ([0xFF, 0xFF, 0xFF], "////"),
    ] as [([UInt8], String)]
  )
  func binaryEncoding(_ bytes: [UInt8], base64: String) throws {
    var metadata = GRPCMetadata()
    try metadata.add("x-bin", binary: bytes)
    #expect(Self.fields(metadata) == ["x-bin: \(base64)"])
  }

  @Test("header fields keep the order and the string values as they are")
  func headerFields() throws {
    var metadata = GRPCMetadata()
    try metadata.add("authorization", "Bearer token")
    try metadata.add("trace-proto-bin", binary: [0x00, 0x01, 0x02])
    try metadata.add("x-id", "1")
    #expect(
      Self.fields(metadata) == ["authorization: Bearer token", "trace-proto-bin: AAEC", "x-id: 1"]
    )
    #expect(metadata.description == "[authorization: Bearer token, trace-proto-bin: AAEC, x-id: 1]")
  }

  // MARK: - Receiving

  @Test("received fields keep only custom metadata")
  func receivedFiltering() throws {
    let fields: [Field] = [
      (":status", "200"),
      (":path", "/nuance.asr.v1.Recognizer/Recognize"),
      ("te", "trailers"),
      ("content-type", "application/grpc+proto"),
      ("user-agent", "grpc-python/1.60.0"),
      ("grpc-timeout", "1S"),
      ("grpc-encoding", "identity"),
      ("grpc-accept-encoding", "identity,gzip"),
      ("grpc-message-type", "nuance.asr.v1.RecognitionRequest"),
      ("grpc-status", "0"),
      ("grpc-message", "OK"),
      ("grpc-status-details-bin", "CAE"),
      ("x-request-id", "abc"),
      ("grpc-trace-bin", "AAEC"),
      ("grpc-previous-rpc-attempts", "1"),
      ("authorization", "Bearer t"),
    ]
    let metadata = try GRPCMetadata(headerFields: fields)
    #expect(
      Self.fields(metadata) == [
        "x-request-id: abc", "grpc-trace-bin: AAEC", "grpc-previous-rpc-attempts: 1",
        "authorization: Bearer t",
      ]
    )
    #expect(metadata.values(for: "grpc-trace-bin") == [.binary([0x00, 0x01, 0x02])])
  }

  @Test("every reserved name is dropped from received fields")
  func reservedNamesDropped() throws {
    let fields = GRPCMetadata.reservedNames.map { (name: $0, value: "AAEC") }
    #expect(try GRPCMetadata(headerFields: fields).isEmpty)
    #expect(GRPCMetadata.reservedNames.contains("grpc-status-details-bin"))
  }

  @Test(
    "received binary values may be padded or not, and comma-separated",
    arguments: [
      ("Zg==", [Array("f".utf8)]),
      ("Zg", [Array("f".utf8)]),
      ("Zm8=", [Array("fo".utf8)]),
      ("Zm8", [Array("fo".utf8)]),
      ("Zm9v", [Array("foo".utf8)]),
      ("Zm9vYmFy", [Array("foobar".utf8)]),
      ("", [[]]),
      ("Zg==,Zm8", [Array("f".utf8), Array("fo".utf8)]),
      ("Zg, Zm8 ,\tZm9v", [Array("f".utf8), Array("fo".utf8), Array("foo".utf8)]),
      ("Zg,,Zg", [Array("f".utf8), [], Array("f".utf8)]),
      ("++//", [[0xFB, 0xEF, 0xFF]]),
      // Bits left over in the last character are ignored.
      ("Zh", [Array("f".utf8)]),
    ] as [(String, [[UInt8]])]
  )
  func receivedBinary(_ value: String, decoded: [[UInt8]]) throws {
    let metadata = try GRPCMetadata(headerFields: [(name: "x-bin", value: value)])
    #expect(metadata.values(for: "x-bin") == decoded.map { .binary($0) })
  }

  @Test(
    "a received binary value that is not base64 is refused",
    arguments: [
      "Z",
      "Zg=",
      "Zg===",
      "Z===",
      "====",
      "Zg==Zg",
      "Zm9v!",
      "Zm9v YmFy",
      "Zm-_",
      "Zg,Z",
      // The example in the gRPC specification has 17 characters, one too many for base64.
      "jher831yy13JHy3hc",
    ]
  )
  func receivedInvalidBase64(_ value: String) {
    #expect(throws: GRPCMetadataError(name: "trace-proto-bin", reason: .invalidBase64)) {
      try GRPCMetadata(headerFields: [(name: "trace-proto-bin", value: value)])
    }
  }

  @Test(
    "a received name that gRPC does not allow is refused",
    arguments: [
      ("X-Id", GRPCMetadataError.Reason.invalidNameByte(UInt8(ascii: "X"))),
      ("", .emptyName),
      ("x!", .invalidNameByte(UInt8(ascii: "!"))),
    ] as [(String, GRPCMetadataError.Reason)]
  )
  func receivedInvalidName(_ name: String, reason: GRPCMetadataError.Reason) {
    #expect(throws: GRPCMetadataError(name: name, reason: reason)) {
      try GRPCMetadata(headerFields: [(name: name, value: "v")])
    }
  }

  @Test("received string values are kept as they came")
  func receivedStringsLenient() throws {
    let metadata = try GRPCMetadata(headerFields: [
      (name: "server", value: "envoy\tproxy"), (name: "x-name", value: "Zoë"),
      (name: "x-list", value: "a,b"),
    ])
    #expect(metadata.first("server") == "envoy\tproxy")
    #expect(metadata.first("x-name") == "Zoë")
    #expect(metadata.values(for: "x-list") == [.string("a,b")])
  }

  @Test("metadata survives a trip through header fields")
  func roundTrip() throws {
    var rng = SystemRandomNumberGeneratorSeeded(seed: 9)
    for _ in 0..<100 {
      var metadata = GRPCMetadata()
      for index in 0..<Int.random(in: 0...6, using: &rng) {
        if Bool.random(using: &rng) {
          let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
            UInt8.random(in: 0...255, using: &rng)
          }
          try metadata.add("x-\(index % 3)-bin", binary: bytes)
        } else {
          let value = String(
            decoding: (0..<Int.random(in: 0...40, using: &rng)).map { _ in
              UInt8.random(in: 0x20...0x7E, using: &rng)
            },
            as: UTF8.self
          )
          try metadata.add("x-\(index % 3)", value)
        }
      }
      #expect(try GRPCMetadata(headerFields: metadata.headerFields) == metadata)
    }
  }

  @Test("equality depends on the order of entries")
  func equality() throws {
    var ab = GRPCMetadata()
    try ab.add("a", "1")
    try ab.add("b", "2")
    var ba = GRPCMetadata()
    try ba.add("b", "2")
    try ba.add("a", "1")
    #expect(ab != ba)
    var ab2 = GRPCMetadata()
    try ab2.add("a", "1")
    try ab2.add("b", "2")
    #expect(ab == ab2)
    #expect(Set([ab, ab2, ba]).count == 2)
  }
}
