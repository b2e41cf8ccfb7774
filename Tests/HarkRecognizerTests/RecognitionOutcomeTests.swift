import HarkGRPCCore
import HarkProto
import HarkRecognizer
import Testing

/// The outcome of a recognition: one kind per status of the protocol.
@Suite("Recognition outcome")
struct RecognitionOutcomeTests {
  @Test(
    "each status code has its kind",
    arguments: [
      (200, RecognitionOutcome.Kind.success), (204, .noResult), (400, .badRequest),
      (401, .unauthorized), (403, .forbidden), (404, .noSpeech), (408, .audioTimeout),
      (409, .conflict), (410, .notRecognizing), (413, .tooMuchSpeech), (429, .tooManyRequests),
      (500, .internalError), (502, .resourceError), (503, .serviceUnavailable), (512, .shutdown),
      // Codes the protocol does not name.
      (0, .otherStatus), (100, .otherStatus), (201, .otherStatus), (405, .otherStatus),
      (501, .otherStatus), (599, .otherStatus),
    ] as [(UInt32, RecognitionOutcome.Kind)]
  )
  func kind(code: UInt32, kind: RecognitionOutcome.Kind) {
    let status = RecognitionStatus(code: code, message: "M", details: "D")
    let outcome = RecognitionOutcome(status: status)
    #expect(outcome.kind == kind)
    #expect(outcome.code == code)
    #expect(outcome.status == status)
    #expect(outcome.transportStatus == nil)
    #expect(outcome.isSuccess == (code == 200 || code == 204))
  }

  @Test("a transport failure and a cancellation carry a gRPC status, no Nuance status")
  func withoutStatus() {
    let failure = RecognitionOutcome(transportFailure: GRPCStatus(.unavailable, "connection reset"))
    #expect(failure.kind == .transportFailure)
    #expect(failure.code == nil)
    #expect(failure.status == nil)
    #expect(failure.transportStatus == GRPCStatus(.unavailable, "connection reset"))
    #expect(!failure.isSuccess)
    #expect(failure.description == "transport failure: UNAVAILABLE: connection reset")

    let cancelled = RecognitionOutcome.cancelled
    #expect(cancelled.kind == .cancelled)
    #expect(cancelled.code == nil)
    #expect(cancelled.status == nil)
    #expect(cancelled.transportStatus == GRPCStatus(.cancelled, "cancelled by the client"))
    #expect(!cancelled.isSuccess)
  }

  @Test(
    "UNAUTHENTICATED and PERMISSION_DENIED are unauthorized and forbidden, as 401 and 403 are",
    arguments: [
      (GRPCStatus.Code.unauthenticated, RecognitionOutcome.Kind.unauthorized, "unauthorized"),
      (.permissionDenied, .forbidden, "forbidden"),
      (.unavailable, .transportFailure, "transport failure"),
      (.internalError, .transportFailure, "transport failure"),
      (.deadlineExceeded, .transportFailure, "transport failure"),
    ]
  )
  func gatewayStatuses(code: GRPCStatus.Code, kind: RecognitionOutcome.Kind, prefix: String) {
    let outcome = RecognitionOutcome(transportFailure: GRPCStatus(code, "from the gateway"))
    #expect(outcome.kind == kind)
    #expect(outcome.status == nil)
    #expect(outcome.code == nil)
    #expect(outcome.transportStatus == GRPCStatus(code, "from the gateway"))
    #expect(!outcome.isSuccess)
    #expect(outcome.description == "\(prefix): \(code): from the gateway")
  }

  @Test("the description is the status line, with its details when there are any")
  func description() {
    #expect(
      RecognitionOutcome(status: RecognitionStatus(code: 200, message: "Success")).description
        == "200 Success"
    )
    #expect(
      RecognitionOutcome(
        status: RecognitionStatus(
          code: 404,
          message: "No speech",
          details: "no speech within no_input_timeout_ms (800 ms)"
        )
      ).description == "404 No speech — no speech within no_input_timeout_ms (800 ms)"
    )
  }
}
