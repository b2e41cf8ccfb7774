import HarkGRPCCore
import HarkProto
public import HarkRecognizer

/// JSON for scripts (`hark recognize --json`): one object per response, with the proto's field
/// names — `{"status": …}`, `{"start_of_speech": …}`, `{"result": …}` — and, for a recognition
/// that failed below the protocol, `{"error": {"grpc_status": …, "message": …}}`.
public enum ResponseJSON {
  /// The JSON line of an event, or nil for events that are not responses.
  public static func line(_ event: RecognitionEvent) -> String? {
    object(event)?.serialized
  }

  /// The JSON of an event, or nil for events that are not responses.
  public static func object(_ event: RecognitionEvent) -> JSONValue? {
    switch event {
    case .started(let status, let cookies):
      var members = [("status", json(status))]
      if !cookies.isEmpty {
        members.append(
          (
            "cookies",
            .object(cookies.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
          )
        )
      }
      return .object(members)
    case .timersStarted(let status), .informational(let status):
      return .object([("status", json(status))])
    case .startOfSpeech(let start):
      return .object([
        (
          "start_of_speech",
          .object([
            (
              "first_audio_to_start_of_speech_ms",
              .number(Double(start.firstAudioToStartOfSpeechMs))
            )
          ])
        )
      ])
    case .partialResult(let result), .finalResult(let result):
      return .object([("result", json(result))])
    case .retrying(let attempt, let delay, let reason):
      // Not a response: the refusal before the 100 and when the next attempt starts.
      let (seconds, attoseconds) = delay.components
      let milliseconds = Double(seconds) * 1000 + Double(attoseconds / 1_000_000_000_000_000)
      var retrying: [(String, JSONValue)] = [
        ("attempt", .number(Double(attempt))), ("after_ms", .number(milliseconds)),
      ]
      if let status = reason.status {
        retrying.append(("status", json(status)))
      } else if let transport = reason.transportStatus {
        retrying.append(
          (
            "error",
            .object([
              ("grpc_status", .number(Double(transport.code.rawValue))),
              ("message", .string(transport.message)),
            ])
          )
        )
      }
      return .object([("retrying", .object(retrying))])
    case .resumed(let atMs):
      // Not a response: a new stream took over from this point of the audio.
      return .object([("resumed", .object([("at_ms", .number(Double(atMs)))]))])
    case .finished(let outcome):
      if let status = outcome.status { return .object([("status", json(status))]) }
      if let transport = outcome.transportStatus {
        return .object([
          (
            "error",
            .object([
              ("grpc_status", .number(Double(transport.code.rawValue))),
              ("message", .string(transport.message)),
            ])
          )
        ])
      }
      return .object([("error", .object([("message", .string("cancelled"))]))])
    }
  }

  static func json(_ status: RecognitionStatus) -> JSONValue {
    .object([
      ("code", .number(Double(status.code))),
      ("message", .string(status.message)),
      ("details", .string(status.details)),
    ])
  }

  static func json(_ result: RecognitionResult) -> JSONValue {
    var members: [(String, JSONValue)] = [
      ("result_type", .string(result.resultType.description)),
      ("abs_start_ms", .number(Double(result.absStartMs))),
      ("abs_end_ms", .number(Double(result.absEndMs))),
      ("hypotheses", .array(result.hypotheses.map(json))),
    ]
    if let info = result.utteranceInfo {
      var fields: [(String, JSONValue)] = [
        ("duration_ms", .number(Double(info.durationMs))),
        ("clipping_duration_ms", .number(Double(info.clippingDurationMs))),
      ]
      if let dsp = info.dsp {
        fields.append(
          (
            "dsp",
            .object([
              ("snr_estimate_db", number(dsp.snrEstimateDb)),
              ("level", number(dsp.level)),
              ("num_channels", .number(Double(dsp.numChannels))),
              ("initial_silence_ms", .number(Double(dsp.initialSilenceMs))),
              ("initial_energy", number(dsp.initialEnergy)),
              ("final_energy", number(dsp.finalEnergy)),
              ("mean_energy", number(dsp.meanEnergy)),
            ])
          )
        )
      }
      members.append(("utterance_info", .object(fields)))
    }
    if let dataPack = result.dataPack {
      members.append(
        (
          "data_pack",
          .object([
            ("language", .string(dataPack.language)), ("topic", .string(dataPack.topic)),
            ("version", .string(dataPack.version)), ("id", .string(dataPack.id)),
          ])
        )
      )
    }
    if !result.notifications.isEmpty {
      members.append(
        (
          "notifications",
          .array(
            result.notifications.map { notification in
              .object([
                ("code", .number(Double(notification.code))),
                ("severity", .string(notification.severity.description)),
                ("message", .string(notification.message?.message ?? "")),
              ])
            }
          )
        )
      )
    }
    return .object(members)
  }

  static func json(_ hypothesis: Hypothesis) -> JSONValue {
    var members: [(String, JSONValue)] = [
      ("formatted_text", .string(hypothesis.formattedText)),
      ("minimally_formatted_text", .string(hypothesis.minimallyFormattedText)),
    ]
    if let confidence = hypothesis.confidence { members.append(("confidence", number(confidence))) }
    if let average = hypothesis.averageConfidence {
      members.append(("average_confidence", number(average)))
    }
    members.append(("rejected", .bool(hypothesis.rejected)))
    if let grammarID = hypothesis.grammarID { members.append(("grammar_id", .string(grammarID))) }
    members.append(
      (
        "words",
        .array(
          hypothesis.words.map { word in
            var fields: [(String, JSONValue)] = [("text", .string(word.text))]
            if let confidence = word.confidence {
              fields.append(("confidence", number(confidence)))
            }
            fields += [
              ("start_ms", .number(Double(word.startMs))),
              ("end_ms", .number(Double(word.endMs))),
              ("silence_after_word_ms", .number(Double(word.silenceAfterWordMs))),
            ]
            if let rule = word.grammarRule { fields.append(("grammar_rule", .string(rule))) }
            return .object(fields)
          }
        )
      )
    )
    return .object(members)
  }

  /// A Float as the shortest decimal that reads back as it (0.9, not 0.8999999761581421).
  static func number(_ value: Float) -> JSONValue {
    .number(Double("\(value)") ?? Double(value))
  }
}
