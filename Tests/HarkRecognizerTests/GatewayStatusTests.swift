import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

/// Gateways in front of a recognizer refuse calls with gRPC statuses rather than in-band ones:
/// UNAUTHENTICATED and PERMISSION_DENIED are the client's unauthorized and forbidden outcomes.
@Suite("Gateway authentication statuses")
struct GatewayStatusTests {
  @Test(
    "UNAUTHENTICATED and PERMISSION_DENIED from a server are unauthorized and forbidden",
    arguments: [
      (
        GRPCStatus(.unauthenticated, "invalid token"), RecognitionOutcome.Kind.unauthorized,
        "unauthorized: UNAUTHENTICATED: invalid token"
      ),
      (
        GRPCStatus(.permissionDenied, "topic not allowed"), .forbidden,
        "forbidden: PERMISSION_DENIED: topic not allowed"
      ),
      (
        GRPCStatus(.unavailable, "overloaded"), .transportFailure,
        "transport failure: UNAVAILABLE: overloaded"
      ),
    ]
  )
  func gatewayStatus(
    status: GRPCStatus,
    kind: RecognitionOutcome.Kind,
    description: String
  )
    async throws
  {
    let (server, port) = try await ClientLibraryTests.recognizeServer { _ in throw status }
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let outcome = try await client.recognize(
      makeInit(),
      audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1")))
        .frames(frameMilliseconds: 20)
    )
    #expect(outcome.kind == kind)
    #expect(outcome.status == nil)
    #expect(outcome.transportStatus == status)
    #expect(outcome.description == description)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
