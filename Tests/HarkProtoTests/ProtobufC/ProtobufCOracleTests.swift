import CHarkProtoOracle
import Foundation
import HarkProto
import HarkTestSupport
import NIOCore
import Testing

/// Hark's codec against libprotobuf-c, in both directions, for every message type.
@Suite("libprotobuf-c oracle", .cpuBound)
struct ProtobufCOracleTests {
  /// Swift encode → C unpack → C pack → Swift decode, and C pack → Swift decode → Swift encode.
  ///
  /// Both encoders write fields in number order and map entries as given (Hark sorts them by key
  /// and the C structs are built sorted), so the bytes must be identical too.
  static func checkBothWays<M: ProtobufCBridged>(
    _ message: M,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    // Swift → C → Swift.
    let swiftBytes = message.serializedByteArray()
    #expect(swiftBytes.count == message.encodedSize, sourceLocation: sourceLocation)
    let unpackedByC = try #require(
      M.cUnpacked(swiftBytes),
      "C rejected Swift's bytes",
      sourceLocation: sourceLocation
    )
    #expect(unpackedByC == message, sourceLocation: sourceLocation)
    let repackedByC = try #require(M.cRepacked(swiftBytes), sourceLocation: sourceLocation)
    #expect(
      repackedByC == swiftBytes,
      "C re-encodes Swift's bytes differently",
      sourceLocation: sourceLocation
    )
    #expect(try M(serializedBytes: repackedByC) == message, sourceLocation: sourceLocation)

    // C → Swift → C.
    let cBytes = message.cPacked()
    let decodedBySwift = try M(serializedBytes: cBytes)
    #expect(decodedBySwift == message, sourceLocation: sourceLocation)
    #expect(decodedBySwift.serializedByteArray() == cBytes, sourceLocation: sourceLocation)
  }

  static let randomCount = 10_000

  @Test("10,000 random RecognitionRequests round-trip both ways")
  func randomRequests() throws {
    var generator = MessageGenerator(seed: 0x4841_524B_0001)
    for _ in 0..<Self.randomCount {
      try Self.checkBothWays(generator.recognitionRequest())
    }
  }

  @Test("10,000 random RecognitionResponses round-trip both ways")
  func randomResponses() throws {
    var generator = MessageGenerator(seed: 0x4841_524B_0002)
    for _ in 0..<Self.randomCount {
      try Self.checkBothWays(generator.recognitionResponse())
    }
  }

  @Test("records in any order, some twice, decode as libprotobuf-c decodes them")
  func reorderedRecords() throws {
    // Word, Hypothesis and RecognitionRequest read the fields encoders write in number order
    // without a dispatch (ProtoReader.expect(tag:)); any other order, and a field that comes
    // again (the last wins, a repeated field or a submessage merges), takes the general loop.
    var g = MessageGenerator(seed: 0x4841_524B_0005)
    for _ in 0..<2_000 {
      try Self.checkReordered(g.word(), &g)
      try Self.checkReordered(g.hypothesis(), &g)
      // A request is one record of a oneof: audio and another request, either first (the
      // last wins). Not the same submessage twice: Hark merges it, as C++ and upb do, where
      // libprotobuf-c keeps the last.
      var requests = [
        RecognitionRequest.audio(g.bytes()).serializedByteArray(),
        g.recognitionRequest().serializedByteArray(),
      ]
      requests.shuffle(using: &g.rng)
      let bytes = Array(requests.joined())
      let expected = try #require(RecognitionRequest.cUnpacked(bytes))
      #expect(try RecognitionRequest(serializedBytes: bytes) == expected)
    }
  }

  /// Decodes `message`'s records shuffled, some of them twice, with Hark and with
  /// libprotobuf-c, and expects the same value.
  static func checkReordered<M: ProtobufCBridged>(
    _ message: M,
    _ g: inout MessageGenerator,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    var records = Self.records(message.serializedByteArray())
    for _ in 0..<g.count(max: 2) where !records.isEmpty {
      records.append(records[g.count(max: records.count - 1)])
    }
    records.shuffle(using: &g.rng)
    let bytes = Array(records.joined())
    let expected = try #require(M.cUnpacked(bytes), sourceLocation: sourceLocation)
    #expect(try M(serializedBytes: bytes) == expected, sourceLocation: sourceLocation)
  }

  /// The top-level records (tag and payload) of a well-formed encoding.
  static func records(_ bytes: [UInt8]) -> [[UInt8]] {
    var records: [[UInt8]] = []
    var position = 0
    func varint() -> Int {
      var value = 0
      var shift = 0
      while true {
        let byte = bytes[position]
        position += 1
        value |= Int(byte & 0x7F) << shift
        if byte < 0x80 { return value }
        shift += 7
      }
    }
    while position < bytes.count {
      let start = position
      let tag = varint()
      switch tag & 7 {
      case 0: _ = varint()
      case 1: position += 8
      case 2: position += varint()
      case 5: position += 4
      default: Issue.record("wire type \(tag & 7) in Hark's own encoding")
      }
      records.append(Array(bytes[start..<position]))
    }
    return records
  }

  @Test("every message type round-trips both ways")
  func everyMessageType() throws {
    var g = MessageGenerator(seed: 0x4841_524B_0003)
    for _ in 0..<500 {
      try Self.checkBothWays(g.controlMessage())
      try Self.checkBothWays(StartTimersControlMessage())
      try Self.checkBothWays(g.recognitionInitMessage())
      try Self.checkBothWays(g.recognitionParameters())
      try Self.checkBothWays(g.audioFormat())
      try Self.checkBothWays(g.pcm())
      try Self.checkBothWays(ALaw())
      try Self.checkBothWays(ULaw())
      try Self.checkBothWays(g.opus())
      try Self.checkBothWays(g.oggOpus())
      try Self.checkBothWays(g.recognitionFlags())
      try Self.checkBothWays(g.formatting())
      try Self.checkBothWays(g.recognitionStatus())
      try Self.checkBothWays(g.startOfSpeech())
      try Self.checkBothWays(g.recognitionResource())
      try Self.checkBothWays(g.resourceReference())
      try Self.checkBothWays(g.wakeupWord())
      try Self.checkBothWays(g.recognitionResult())
      try Self.checkBothWays(g.utteranceInfo())
      try Self.checkBothWays(g.dsp())
      try Self.checkBothWays(g.hypothesis())
      try Self.checkBothWays(g.word())
      try Self.checkBothWays(g.dataPack())
      try Self.checkBothWays(g.notification())
      try Self.checkBothWays(g.localizedMessage())
    }
  }

  // MARK: Hand-picked edges

  @Test("empty messages encode to no bytes on both sides")
  func emptyMessages() throws {
    try Self.checkBothWays(RecognitionRequest())
    try Self.checkBothWays(RecognitionResponse())
    try Self.checkBothWays(RecognitionInitMessage())
    try Self.checkBothWays(RecognitionResult())
    #expect(RecognitionRequest().serializedByteArray() == [])
    #expect(RecognitionResponse().cPacked() == [])
  }

  static let oneofCases: [RecognitionRequest] = [
    .initMessage(RecognitionInitMessage()),
    .initMessage(RecognitionInitMessage(parameters: RecognitionParameters())),
    RecognitionRequest(.controlMessage(ControlMessage())),
    .startTimers,
    .audio(ByteBuffer()),
    .audio(ByteBuffer(bytes: [0])),
  ]

  @Test("every request oneof case, including present-but-empty members", arguments: oneofCases)
  func requestOneofCases(_ request: RecognitionRequest) throws {
    try Self.checkBothWays(request)
  }

  @Test("every oneof case of the other messages")
  func otherOneofCases() throws {
    for format: AudioFormat.Format in [
      .pcm(PCM()), .pcm(PCM(sampleRateHz: 16000)), .alaw(ALaw()), .ulaw(ULaw()), .opus(Opus()),
      .oggOpus(OggOpus()),
    ] {
      try Self.checkBothWays(AudioFormat(format))
    }
    for response: RecognitionResponse.Response in [
      .status(RecognitionStatus()), .startOfSpeech(StartOfSpeech()), .result(RecognitionResult()),
    ] {
      try Self.checkBothWays(RecognitionResponse(response))
    }
    for resource: RecognitionResource.Resource in [
      .externalReference(ResourceReference()), .inlineWordset(""), .builtin("digits"),
      .inlineGrammar("<grammar/>"), .wakeupWord(WakeupWord()),
    ] {
      for weight: RecognitionResource.Weight? in [
        nil, .weightEnum(.defaultWeight), .weightValue(0),
      ] {
        try Self.checkBothWays(RecognitionResource(resource, weight: weight))
      }
    }
    var hypothesis = Hypothesis()
    hypothesis.confidence = 0
    hypothesis.averageConfidence = 0
    hypothesis.grammarID = ""
    hypothesis.detectedWakeupWord = ""
    try Self.checkBothWays(hypothesis)
    var word = Word()
    word.confidence = 0
    word.grammarRule = ""
    try Self.checkBothWays(word)
    var parameters = RecognitionParameters()
    parameters.speechDetectionSensitivity = 0
    try Self.checkBothWays(parameters)
  }

  @Test("maximum uint32 and int32 values")
  func maxValues() throws {
    try Self.checkBothWays(RecognitionStatus(code: .max, message: "", details: ""))
    try Self.checkBothWays(PCM(sampleRateHz: .max))
    var notification = Notification()
    notification.code = .min
    try Self.checkBothWays(notification)
    notification.code = .max
    try Self.checkBothWays(notification)
    var mode = RecognitionParameters()
    mode.utteranceDetectionMode = UtteranceDetectionMode(rawValue: -1)
    try Self.checkBothWays(mode)
  }

  @Test("NaN and -0.0 floats keep their bits both ways")
  func specialFloats() throws {
    let nan = Float(bitPattern: 0x7FC0_0001)
    for value in [nan, -Float.nan, Float(-0.0), Float.infinity] {
      var word = Word()
      word.confidence = value
      let swiftBytes = word.serializedByteArray()
      let fromC = try #require(Word.cUnpacked(swiftBytes))
      #expect(fromC.confidence?.bitPattern == value.bitPattern)
      #expect(Word.cRepacked(swiftBytes) == swiftBytes)
      #expect(try Word(serializedBytes: word.cPacked()).confidence?.bitPattern == value.bitPattern)

      // An implicit-presence float: only +0.0 is the default, so NaN and -0.0 are written.
      var dsp = Dsp()
      dsp.level = value
      let expected: [UInt8] =
        [0x15] + withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init)
      #expect(dsp.serializedByteArray() == expected)
      #expect(try Dsp(serializedBytes: expected).level.bitPattern == value.bitPattern)
      #expect(Dsp.cUnpacked(expected)?.level.bitPattern == value.bitPattern)
    }
  }

  /// The one place the two encoders differ: libprotobuf-c compares an implicit float with `== 0`
  /// and so drops -0.0, while C++, Go and upb (grpcio's codec) compare bits and write it. Hark
  /// follows C++, so -0.0 survives a round trip through Hark and grpcio.
  @Test("libprotobuf-c drops an implicit -0.0 float; Hark keeps it, as C++ and upb do")
  func negativeZeroDivergence() throws {
    var dsp = Dsp()
    dsp.meanEnergy = -0.0
    let swiftBytes = dsp.serializedByteArray()
    #expect(swiftBytes == [0x3D, 0x00, 0x00, 0x00, 0x80])
    #expect(Dsp.cUnpacked(swiftBytes)?.meanEnergy.bitPattern == Float(-0.0).bitPattern)
    #expect(Dsp.cRepacked(swiftBytes) == [])
    #expect(dsp.cPacked() == [])
  }

  @Test("empty and non-ASCII strings")
  func strings() throws {
    for text in ["", "a", "é", "☺", "😈", "\t\n", "日本語のテキスト", String(repeating: "ü", count: 300)] {
      var word = Word()
      word.text = text
      word.grammarRule = text
      try Self.checkBothWays(word)
    }
  }

  @Test("a 1 MiB audio request")
  func largeAudio() throws {
    let audio = ByteBuffer(bytes: (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    try Self.checkBothWays(RecognitionRequest.audio(audio))
    let bytes = RecognitionRequest.audio(audio).serializedByteArray()
    #expect(bytes.prefix(4) == [0x1A, 0x80, 0x80, 0x40])  // 1,048,576 = varint 80 80 40
  }

  @Test("maps with many keys")
  func largeMaps() throws {
    var initMessage = RecognitionInitMessage()
    for index in 0..<1000 { initMessage.clientData["key-\(index)"] = "value \(index) ☺" }
    try Self.checkBothWays(initMessage)
    var formatting = Formatting()
    for index in 0..<500 { formatting.options["option-\(index)"] = index % 3 == 0 }
    try Self.checkBothWays(formatting)
  }

  @Test("the committed C code is what protoc-c generates from proto/ now")
  func generatedCodeIsFresh() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let output = FileManager.default.temporaryDirectory.appendingPathComponent(
      "hark-protoc-c-\(getpid())"
    )
    defer { try? FileManager.default.removeItem(at: output) }
    let process = Process()
    process.executableURL = root.appendingPathComponent("tools/generate-protobuf-c")
    process.arguments = [output.path]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "tools/generate-protobuf-c failed")
    let committed = root.appendingPathComponent("Tests/CHarkProtoOracle")
    for folder in ["include/nuance", "generated"] {
      let fresh = try Self.files(under: output.appendingPathComponent(folder))
      let current = try Self.files(under: committed.appendingPathComponent(folder))
      #expect(fresh.keys.sorted() == current.keys.sorted(), "generated files differ in \(folder)")
      for (path, contents) in fresh {
        #expect(
          current[path] == contents,
          "\(folder)/\(path) is stale: run tools/generate-protobuf-c"
        )
      }
    }
  }

  static func files(under directory: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
    while let url = enumerator?.nextObject() as? URL {
      guard !url.hasDirectoryPath else { continue }
      let relative = String(url.path.dropFirst(directory.path.count))
      files[relative] = try Data(contentsOf: url)
    }
    return files
  }
}
