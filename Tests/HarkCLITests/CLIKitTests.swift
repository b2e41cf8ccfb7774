import HarkAudio
import HarkCLIKit
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import Testing

@Suite("What hark recognize writes and sends")
struct CLIKitTests {
  @Test(
    "the status line: bar, seconds, real-time factor, and the end of the partial",
    arguments: [
      (
        ProgressLine(sentSeconds: 2.5, totalSeconds: 10, elapsedSeconds: 0.5, partial: ""), 80,
        "[#####---------------] 2.5/10.0 s  5.0× real time"
      ),
      (
        ProgressLine(sentSeconds: 3, totalSeconds: nil, elapsedSeconds: 3, partial: "one two"), 80,
        "3.0 s  1.0× real time  │ one two"
      ),
      (
        ProgressLine(sentSeconds: 60, totalSeconds: 60, elapsedSeconds: 2, partial: ""), 80,
        "[####################] 60.0/60.0 s  30× real time"
      ),
      (
        ProgressLine(sentSeconds: 1, totalSeconds: nil, elapsedSeconds: 0, partial: "abcdefghij"),
        16,
        "1.0 s  │ …fghij"
      ),
    ]
  )
  func progressLine(line: ProgressLine, width: Int, expected: String) {
    #expect(line.render(width: width) == expected)
    #expect(line.render(width: width).count < width)
  }

  @Test("JSON text: members in order, escapes, integers without fractions, NaN as null")
  func serialized() {
    let value = JSONValue.object([
      ("b", .number(2)), ("a", .string("quote \" backslash \\ newline \n tab \t bell \u{7}")),
      ("list", .array([.bool(true), .null, .number(0.5), .number(-3), .number(.nan)])),
    ])
    #expect(
      value.serialized
        == #"{"b":2,"a":"quote \" backslash \\ newline \n tab \t bell \u0007","list":[true,null,0.5,-3,null]}"#
    )
    // What it writes, the parser reads back (NaN aside, which became null).
    let parsed = try? JSONValue.parse(value.serialized)
    #expect(parsed?.serialized == value.serialized)
  }

  @Test("each response is one JSON object with the proto's field names")
  func responseJSON() {
    var result = RecognitionResult()
    result.resultType = .final
    result.absStartMs = 300
    result.absEndMs = 900
    var hypothesis = Hypothesis()
    hypothesis.formattedText = "15"
    hypothesis.minimallyFormattedText = "15"
    hypothesis.confidence = 0.9
    hypothesis.words = [Word(text: "1", confidence: 0.9, startMs: 300, endMs: 400)]
    result.hypotheses = [hypothesis]
    #expect(
      ResponseJSON.line(.finalResult(result))
        == #"{"result":{"result_type":"FINAL","abs_start_ms":300,"abs_end_ms":900,"hypotheses":[{"formatted_text":"15","minimally_formatted_text":"15","confidence":0.9,"rejected":false,"words":[{"text":"1","confidence":0.9,"start_ms":300,"end_ms":400,"silence_after_word_ms":0}]}]}}"#
    )
    #expect(
      ResponseJSON.line(.startOfSpeech(StartOfSpeech(firstAudioToStartOfSpeechMs: 120)))
        == #"{"start_of_speech":{"first_audio_to_start_of_speech_ms":120}}"#
    )
    let status = RecognitionStatus(code: 404, message: "No speech", details: "none")
    #expect(
      ResponseJSON.line(.finished(RecognitionOutcome(status: status)))
        == #"{"status":{"code":404,"message":"No speech","details":"none"}}"#
    )
  }

  @Test("the options become the init message and metadata")
  func initMessage() throws {
    var options = RecognizeOptions()
    options.language = "en-GB"
    options.topic = "ORDERS"
    options.mode = .single
    options.resultType = .immutablePartial
    options.noInputTimeoutMs = 3000
    options.recognitionTimeoutMs = 9000
    options.utteranceEndSilenceMs = 800
    options.sensitivity = 0.25
    options.maxHypotheses = 3
    options.startTimersAfterMs = 100
    options.builtins = ["digits"]
    options.wordsets = [#"{"names":[{"literal":"Ann"}]}"#]
    options.clientData = ["call": "42"]
    options.userID = "agent-7"
    let message = options.initMessage(format: .ulaw)
    let parameters = try #require(message.parameters)
    #expect(parameters.language == "en-GB")
    #expect(parameters.topic == "ORDERS")
    #expect(parameters.audioFormat == .ulaw)
    #expect(parameters.utteranceDetectionMode == .single)
    #expect(parameters.resultType == .immutablePartial)
    #expect(parameters.noInputTimeoutMs == 3000)
    #expect(parameters.recognitionTimeoutMs == 9000)
    #expect(parameters.utteranceEndSilenceMs == 800)
    #expect(parameters.speechDetectionSensitivity == 0.25)
    #expect(parameters.maxHypotheses == 3)
    // --start-timers-after-ms stalls the timers.
    #expect(parameters.recognitionFlags?.stallTimers == true)
    #expect(
      message.resources == [
        RecognitionResource(.builtin("digits")),
        RecognitionResource(.inlineWordset(#"{"names":[{"literal":"Ann"}]}"#)),
      ]
    )
    #expect(message.clientData == ["call": "42"])
    #expect(message.userID == "agent-7")
  }

  @Test("--client-data needs KEY=VALUE; a wordset must parse")
  func problems() throws {
    #expect(try RecognizeOptions.clientDataPair("a=b=c") == ("a", "b=c"))
    #expect(throws: RecognizeOptions.Problem.self) {
      try RecognizeOptions.clientDataPair("novalue")
    }
    #expect(throws: RecognizeOptions.Problem.self) { try RecognizeOptions.clientDataPair("=x") }
    #expect(throws: RecognizeOptions.Problem.self) {
      try RecognizeOptions.checkWordset("[1, 2]", name: "w.json")
    }
  }

  @Test("every outcome kind has its documented exit status")
  func exitStatuses() {
    let expected: [(UInt32, Int32)] = [
      (200, 0), (204, 3), (400, 7), (401, 7), (403, 7), (404, 4), (408, 5), (409, 7), (410, 7),
      (413, 6), (429, 7), (500, 8), (502, 8), (503, 8), (512, 8), (499, 7), (599, 8),
    ]
    for (code, status) in expected {
      let outcome = RecognitionOutcome(
        status: RecognitionStatus(code: code, message: "", details: "")
      )
      #expect(outcome.exitStatus == status, "status \(code)")
    }
    #expect(RecognitionOutcome.cancelled.exitStatus == 130)
    // A gateway's refusals exit as 401 and 403 do; other gRPC failures are transport failures.
    for (code, status) in [
      (GRPCStatus.Code.unauthenticated, Int32(7)), (.permissionDenied, 7), (.unavailable, 9),
    ] {
      #expect(RecognitionOutcome(transportFailure: GRPCStatus(code)).exitStatus == status)
    }
  }
}
