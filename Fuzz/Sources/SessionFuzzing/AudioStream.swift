import Foundation
import HarkAudio

/// Speech recorded in `Samples/`, loaded once: the sample rate's clips, 8 kHz and 16 kHz.
struct SpeechClips {
  var clips8k: [[Int16]] = []
  var clips16k: [[Int16]] = []

  /// The clips of the checkout this package was built from; a short hum if there are none.
  static func load() -> SpeechClips {
    let samples = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Samples")
    var clips = SpeechClips()
    for name in [
      "sentence-8k", "digits-8k", "yes-8k", "operator-8k", "sentence-16k", "digits-16k",
      "account-16k",
    ] {
      guard let data = FileManager.default.contents(atPath: samples.path + "/\(name).wav"),
        let wav = try? WAVFile(bytes: Array(data)),
        wav.format?.encoding == .linear16
      else { continue }
      let bytes = Array(data)[wav.dataRange]
      let clip = stride(from: bytes.startIndex, to: bytes.endIndex - 1, by: 2).map {
        Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8)
      }
      if wav.sampleRate == 8000 { clips.clips8k.append(clip) } else { clips.clips16k.append(clip) }
    }
    // A voiced hum, should the files be missing.
    let hum = (0..<16000).map { Int16(8000 * sin(Double($0) * 0.08) * sin(Double($0) * 0.0015)) }
    if clips.clips8k.isEmpty { clips.clips8k = [hum] }
    if clips.clips16k.isEmpty { clips.clips16k = [hum] }
    return clips
  }

  func clips(sampleRate: Int) -> [[Int16]] {
    sampleRate == 16000 ? clips16k : clips8k
  }
}

/// The client's audio byte stream of one RPC: content synthesized as samples, encoded as the
/// RPC's format, and cut into messages of any size, so that a sample can straddle two messages.
struct AudioStream {
  /// Encoded bytes not yet sent.
  private var pending: [UInt8] = []
  private var random = SplitMix64(seed: 0x5EED)
  /// Samples synthesized so far, so that tones keep their phase from one event to the next.
  private var clock = 0

  /// `messages` messages of `messageBytes` bytes of `content` in `encoding` at `sampleRate`.
  mutating func messages(
    _ content: SessionProgram.AudioContent,
    messageBytes: Int,
    messages: Int,
    encoding: AudioEncoding,
    sampleRate: Int,
    clips: SpeechClips
  ) -> [[UInt8]] {
    if case .bytes(let bytes) = content {
      return Array(repeating: bytes, count: messages)
    }
    let needed = messageBytes * messages - pending.count
    if needed > 0 {
      let count = (needed + encoding.bytesPerSample - 1) / encoding.bytesPerSample
      let samples = synthesize(content, count: count, sampleRate: sampleRate, clips: clips)
      switch encoding {
      case .linear16:
        for sample in samples {
          pending.append(UInt8(truncatingIfNeeded: sample))
          pending.append(UInt8(truncatingIfNeeded: sample >> 8))
        }
      case .ulaw, .alaw:
        samples.withUnsafeBufferPointer { G711.encode($0, encoding: encoding, into: &pending) }
      }
    }
    var result: [[UInt8]] = []
    var start = 0
    for _ in 0..<messages {
      result.append(Array(pending[start..<start + messageBytes]))
      start += messageBytes
    }
    pending.removeFirst(start)
    return result
  }

  private mutating func synthesize(
    _ content: SessionProgram.AudioContent,
    count: Int,
    sampleRate: Int,
    clips: SpeechClips
  ) -> [Int16] {
    defer { clock += count }
    let rate = Double(sampleRate)
    switch content {
    case .silence, .bytes:
      return Array(repeating: 0, count: count)
    case .noise(let amplitude):
      let amplitude = min(amplitude, 32767)
      return (0..<count).map { _ in
        Int16(Int(random.next() % UInt64(2 * amplitude + 1)) - amplitude)
      }
    case .tone(let frequency, let amplitude):
      let step = 2 * Double.pi * frequency / rate
      return (0..<count).map { Int16(clamping: Int(amplitude * sin(step * Double(clock + $0)))) }
    case .dtmf(let symbol, let level):
      var generator = DTMFGenerator(sampleRate: sampleRate)
      let milliseconds = count * 1000 / sampleRate + 1
      return Array(
        generator.generate([.dtmf(symbol, milliseconds: milliseconds, level: level)]).prefix(count)
      )
    case .speech(let clip, let offset):
      let clips = clips.clips(sampleRate: sampleRate)
      let samples = clips[clip % clips.count]
      let start = samples.count * offset / 64
      return (0..<count).map { samples[(start + $0) % samples.count] }
    case .square(let period):
      return (0..<count).map { (clock + $0) % period < period / 2 ? Int16.max : Int16.min }
    }
  }
}
