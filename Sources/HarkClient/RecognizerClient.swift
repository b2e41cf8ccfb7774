public import HarkGRPC
public import HarkGRPCCore
public import HarkProto
public import HarkRecognizer
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// A client of the Recognize RPC, for applications that stream live audio: it sends the init,
/// holds audio until the 100 Continue, streams with HTTP/2 flow control as backpressure, sends
/// `start_timers_message` when asked, and ends every recognition with a typed outcome.
///
/// ```swift
/// let client = RecognizerClient(host: "asr.example.com", port: 50051)
/// let outcome = try await client.recognize(initMessage, audio: frames) { recognition in
///   for await event in recognition.events {
///     if case .finalResult(let result) = event { print(result.hypotheses.first?.formattedText ?? "") }
///   }
///   return await recognition.outcome
/// }
/// ```
public final class RecognizerClient: Sendable {
  /// The channel the recognitions travel on.
  public let channel: GRPCChannel
  /// Where each recognition's access token comes from, if the server wants one.
  public let tokenProvider: (any TokenProvider)?
  /// The audio drain queue of each event loop the recognitions run on.
  private let drainQueues = NIOLockedValueBox<[ObjectIdentifier: AudioDrainQueue]>([:])

  /// A client of the recognizer at `host:port`, spreading recognitions over `connections`
  /// HTTP/2 connections.
  ///
  /// With a `tokenProvider`, each recognition asks it for a token before its call and sends
  /// `authorization: Bearer <token>` (replacing any `authorization` of its metadata); when it
  /// has none, the recognition ends before any call with the outcome of ``TokenError/status``:
  /// UNAUTHENTICATED (`.unauthorized`, as a gateway's refusal) when the endpoint refused the
  /// credentials, UNAVAILABLE (`.transportFailure`) when it could not be reached. The client
  /// does not close the provider: it may be shared.
  public init(
    host: String,
    port: Int,
    connections: Int = 1,
    configuration: GRPCClientConfiguration = GRPCClientConfiguration(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    tokenProvider: (any TokenProvider)? = nil
  ) {
    self.tokenProvider = tokenProvider
    channel = GRPCChannel(
      host: host,
      port: port,
      connections: connections,
      configuration: configuration,
      group: group
    )
  }

  /// Runs one recognition: `audio` is streamed (held until the 100 Continue), and `body` reads
  /// its events; when `body` returns, a recognition still running is cancelled.
  ///
  /// - Parameters:
  ///   - initMessage: The parameters and resources.
  ///   - audio: Audio frames in the init's format; empty frames are skipped. The end of the
  ///     sequence half-closes the request stream. A ``RecognitionAudio`` is fed by its writer
  ///     straight into the recognition (no task per frame); any other sequence is read by a
  ///     task of the recognition's own.
  ///   - metadata: Call metadata, e.g. `authorization: Bearer …` (without a token provider).
  ///   - timeout: The longest the whole recognition may take (sent as `grpc-timeout` and
  ///     enforced here too): past it the outcome is a DEADLINE_EXCEEDED transport failure. Nil
  ///     (the default) for none; a live call's application should set one longer than any call,
  ///     so that a server that stops answering cannot hold a recognition forever.
  ///   - prebufferLimit: The most audio, in bytes, held before the 100; beyond it the audio
  ///     sequence is not read until the recognition starts (nothing is dropped; a
  ///     ``RecognitionAudio``'s frames wait, up to its buffer limit).
  ///   - retryPolicy: How a refusal before the 100 Continue is tried again (409, 429, 503, 512,
  ///     or UNAVAILABLE before any response; see ``RetryPolicy``): by default twice, after the
  ///     server's pushback or a jittered backoff. Each retry is a `.retrying` event; the audio
  ///     waits for the attempt that is accepted, whole.
  ///   - resume: Opt-in: a stream that fails mid-call (connection lost, GOAWAY, 512) is
  ///     resumed on a new one, which gets the audio no final result covered again; its times
  ///     are shifted onto the recognition's timeline, and a `.resumed(atMs:)` event says so
  ///     (see ``ResumePolicy``). L16 and G.711 only.
  ///   - trace: Called with each request sent and response received, on the event loop (keep it
  ///     short).
  public func recognize<Audio: AsyncSequence & Sendable, Result: Sendable>(
    _ initMessage: RecognitionInitMessage,
    audio: Audio,
    metadata: GRPCMetadata = GRPCMetadata(),
    timeout: Duration? = nil,
    prebufferLimit: Int = ClientSessionStateMachine.defaultPrebufferLimit,
    retryPolicy: RetryPolicy = .default,
    resume: ResumePolicy? = nil,
    trace: (@Sendable (RecognitionTrace) -> Void)? = nil,
    _ body: (Recognition) async throws -> Result
  ) async throws -> Result where Audio.Element == ByteBuffer {
    let recognition: Recognition
    do {
      let metadata = try await authorized(metadata)
      let transport: RecognitionDriver.Transport
      do {
        transport = .connection(try await channel.connection())
      } catch let status as GRPCStatus where retryPolicy.maxAttempts > 1 && !channel.isClosed {
        // No connection yet: the first attempt failed, and the policy may try again.
        transport = .unavailable(status, eventLoop: channel.group.next())
      }
      let channel = self.channel
      recognition = Recognition(
        transport: transport,
        metadata: metadata,
        timeout: timeout.map { TimeAmount($0) },
        prebufferLimit: prebufferLimit,
        retryPolicy: retryPolicy,
        resumePolicy: resume,
        reconnect: { eventLoop in try await channel.connection(on: eventLoop) },
        drainQueue: drainQueue(for: transport.eventLoop),
        trace: trace
      )
    } catch let status as GRPCStatus {
      // No connection: the outcome is a transport failure, reported like any other.
      recognition = Recognition(failed: status)
    }
    recognition.start(initMessage, audio: audio)
    // A recognition still running when `body` returns or throws is cancelled.
    defer { recognition.cancel() }
    return try await body(recognition)
  }

  private func drainQueue(for eventLoop: any EventLoop) -> AudioDrainQueue {
    drainQueues.withLockedValue { queues in
      if let queue = queues[ObjectIdentifier(eventLoop)] { return queue }
      let queue = AudioDrainQueue(eventLoop: eventLoop)
      queues[ObjectIdentifier(eventLoop)] = queue
      return queue
    }
  }

  /// `metadata` with the provider's token as its `authorization`; a status if there is none.
  private func authorized(_ metadata: GRPCMetadata) async throws(GRPCStatus) -> GRPCMetadata {
    guard let tokenProvider else { return metadata }
    let token: AccessToken
    do {
      token = try await tokenProvider.token()
    } catch {
      throw TokenError.status(of: error)
    }
    do {
      return try metadata.authorized(with: token)
    } catch {
      // The error names the entry and the offending byte, never the value.
      throw GRPCStatus(.internalError, error.message)
    }
  }

  /// Runs one recognition and returns its outcome, calling `onEvent` for each event.
  public func recognize<Audio: AsyncSequence & Sendable>(
    _ initMessage: RecognitionInitMessage,
    audio: Audio,
    metadata: GRPCMetadata = GRPCMetadata(),
    timeout: Duration? = nil,
    retryPolicy: RetryPolicy = .default,
    onEvent: (RecognitionEvent) -> Void = { _ in }
  ) async throws -> RecognitionOutcome where Audio.Element == ByteBuffer {
    try await recognize(
      initMessage,
      audio: audio,
      metadata: metadata,
      timeout: timeout,
      retryPolicy: retryPolicy
    ) {
      recognition in
      for await event in recognition.events { onEvent(event) }
      return await recognition.outcome
    }
  }

  /// Closes the connections; recognitions in flight end with a transport failure.
  public func close() async {
    await channel.close()
  }
}
