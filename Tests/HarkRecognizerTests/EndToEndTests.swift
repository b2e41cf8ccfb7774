import HarkAudio
import HarkClient
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

@Suite("Recognize end to end")
struct EndToEndTests {
  @Test("SINGLE: 100, start of speech, the final result, 200")
  func single() async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("123")))
    #expect(events.map(\.summary) == ["100", "sos", "final:123", "200"])
    await harness.stop()
  }
}
