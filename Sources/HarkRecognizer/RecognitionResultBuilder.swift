import HarkProto

/// Turns an engine's hypotheses into the `RecognitionResult` a client receives: times in
/// milliseconds from the start of the stream, the best `max_hypotheses`, words with their
/// silences, and for a final result the utterance's audio figures, data pack and notices.
enum RecognitionResultBuilder {
  /// The result of `hypotheses` for the utterance from `onset` to `end` (samples).
  ///
  /// - Parameters:
  ///   - statistics: the endpointer's figures of the utterance (final results only).
  ///   - notices: the engine's notices, sent as notifications (final results only).
  static func result(
    _ hypotheses: [EngineHypothesis],
    type: ResultType,
    onset: Int,
    end: Int,
    configuration: RecognitionConfiguration,
    statistics: Endpointer.UtteranceStatistics,
    notices: [EngineNotice],
    final: Bool
  ) -> RecognitionResult {
    var result = RecognitionResult()
    result.resultType = type
    result.absStartMs = configuration.milliseconds(samples: onset)
    result.absEndMs = configuration.milliseconds(samples: max(end, onset))
    result.hypotheses = hypotheses.prefix(configuration.maxHypotheses).map { hypothesis in
      Self.hypothesis(hypothesis, configuration: configuration, final: final)
    }
    if final {
      result.utteranceInfo = utteranceInfo(
        result,
        onset: onset,
        configuration: configuration,
        statistics: statistics
      )
      var dataPack = DataPack()
      dataPack.language = configuration.language
      dataPack.topic = configuration.topic
      result.dataPack = dataPack
      result.notifications = notices.map(notification)
    }
    return result
  }

  /// One hypothesis, its words in milliseconds with the silence after each.
  private static func hypothesis(
    _ hypothesis: EngineHypothesis,
    configuration: RecognitionConfiguration,
    final: Bool
  ) -> Hypothesis {
    var converted = Hypothesis()
    converted.confidence = hypothesis.confidence
    converted.rejected = final && hypothesis.rejected
    converted.formattedText = hypothesis.text
    converted.minimallyFormattedText = hypothesis.text
    converted.grammarID = hypothesis.grammarID
    var weighted: Float = 0
    var duration = 0
    converted.words = hypothesis.words.map { word in
      let length = max(word.endSample - word.startSample, 1)
      weighted += word.confidence * Float(length)
      duration += length
      var converted = Word(
        text: word.text,
        confidence: word.confidence,
        startMs: configuration.milliseconds(samples: word.startSample),
        endMs: configuration.milliseconds(samples: word.endSample)
      )
      converted.grammarRule = word.grammarRule
      return converted
    }
    converted.averageConfidence = duration > 0 ? weighted / Float(duration) : hypothesis.confidence
    // silence_after_word_ms: the gap to the next word.
    for index in converted.words.indices.dropLast() {
      let gap = Int(converted.words[index + 1].startMs) - Int(converted.words[index].endMs)
      converted.words[index].silenceAfterWordMs = UInt32(max(gap, 0))
    }
    return converted
  }

  /// The utterance's duration, clipping and signal figures.
  private static func utteranceInfo(
    _ result: RecognitionResult,
    onset: Int,
    configuration: RecognitionConfiguration,
    statistics: Endpointer.UtteranceStatistics
  ) -> UtteranceInfo {
    var info = UtteranceInfo()
    info.durationMs = result.absEndMs - result.absStartMs
    info.clippingDurationMs = configuration.milliseconds(samples: statistics.clippedSamples)
    var dsp = Dsp()
    dsp.snrEstimateDb = statistics.snrEstimate
    dsp.level = statistics.meanEnergy
    dsp.numChannels = 1
    dsp.initialSilenceMs = configuration.milliseconds(samples: onset)
    dsp.initialEnergy = statistics.initialEnergy
    dsp.finalEnergy = statistics.finalEnergy
    dsp.meanEnergy = statistics.meanEnergy
    info.dsp = dsp
    return info
  }

  /// An engine's notice as a warning notification.
  private static func notification(_ notice: EngineNotice) -> Notification {
    var notification = Notification()
    notification.code = notice.code
    notification.severity = .warning
    var message = LocalizedMessage()
    message.locale = "en-US"
    message.message = notice.message
    notification.message = message
    return notification
  }
}
