import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

/// A TCP relay between a client and a server on loopback that injects the faults `tc netem`
/// would (these kernels have no netem): it forwards both ways, and on demand stalls (holds
/// every byte until the stall ends, as a network partition does), delays each chunk, or drops
/// every connection at once.
public final class FaultRelay: Sendable {
  /// The port clients connect to.
  public let port: Int
  private let listener: any Channel
  private let state: NIOLockedValueBox<State>

  struct State {
    var stalled = false
    var delay: TimeAmount = .zero
    var pairs: [ObjectIdentifier: Pair] = [:]
    /// Connections made through the relay.
    var accepted = 0
  }

  /// The two sockets of one relayed connection.
  final class Pair: Sendable {
    let client: any Channel
    let server: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)
    /// Bytes from the client that arrived before the server side connected.
    let early = NIOLockedValueBox<[ByteBuffer]>([])

    init(client: any Channel) { self.client = client }
  }

  /// Forwards what it reads to `peer`, through the relay's faults.
  final class Forward: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let relay: NIOLockedValueBox<State>
    let target: @Sendable () -> (any Channel)?
    let onEarly: (@Sendable (ByteBuffer) -> Void)?
    /// Chunks held while the relay is stalled, in order.
    let held = NIOLockedValueBox<[ByteBuffer]>([])
    /// The loop this handler reads on: the release of what was held runs there, so that it
    /// stays ahead of what is read after the stall.
    let loop = NIOLockedValueBox<(any EventLoop)?>(nil)

    func handlerAdded(context: ChannelHandlerContext) {
      loop.withLockedValue { $0 = context.eventLoop }
    }

    init(
      relay: NIOLockedValueBox<State>,
      target: @escaping @Sendable () -> (any Channel)?,
      onEarly: (@Sendable (ByteBuffer) -> Void)? = nil
    ) {
      self.relay = relay
      self.target = target
      self.onEarly = onEarly
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let bytes = unwrapInboundIn(data)
      let (stalled, delay) = relay.withLockedValue { ($0.stalled, $0.delay) }
      guard let peer = target() else {
        onEarly?(bytes)
        return
      }
      let holding = held.withLockedValue { held in
        // Behind chunks still held, too: order is kept.
        if stalled || !held.isEmpty { held.append(bytes) }
        return stalled || !held.isEmpty
      }
      if holding { return }
      if delay > .zero {
        peer.eventLoop.scheduleTask(in: delay) { peer.writeAndFlush(bytes, promise: nil) }
      } else {
        peer.writeAndFlush(bytes, promise: nil)
      }
    }

    /// The stall ended: what was held goes on, in order, from the handler's own loop.
    func release() {
      guard let loop = loop.withLockedValue({ $0 }) else { return }
      loop.execute {
        let chunks = self.held.withLockedValue { held in
          defer { held = [] }
          return held
        }
        guard let peer = self.target() else { return }
        for chunk in chunks { peer.writeAndFlush(chunk, promise: nil) }
      }
    }

    func channelInactive(context: ChannelHandlerContext) {
      target()?.close(promise: nil)
      context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
      context.close(promise: nil)
    }
  }

  /// Every forwarder made, for ``resume()`` to release what they held.
  private let forwards: NIOLockedValueBox<[Forward]>

  private init(
    port: Int,
    listener: any Channel,
    state: NIOLockedValueBox<State>,
    forwards: NIOLockedValueBox<[Forward]>
  ) {
    self.port = port
    self.listener = listener
    self.state = state
    self.forwards = forwards
  }

  /// A relay on an ephemeral loopback port to `127.0.0.1:targetPort`.
  public static func start(to targetPort: Int) async throws -> FaultRelay {
    let state = NIOLockedValueBox(State())
    let forwards = NIOLockedValueBox<[Forward]>([])
    let group = MultiThreadedEventLoopGroup.singleton
    let listener = try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { client in
        let pair = Pair(client: client)
        state.withLockedValue {
          $0.pairs[ObjectIdentifier(client)] = pair
          $0.accepted += 1
        }
        let upstream = Forward(
          relay: state,
          target: { pair.server.withLockedValue { $0 } },
          onEarly: { bytes in pair.early.withLockedValue { $0.append(bytes) } }
        )
        let downstream = Forward(relay: state, target: { pair.client })
        forwards.withLockedValue { $0 += [upstream, downstream] }
        client.closeFuture.whenComplete { _ in
          _ = state.withLockedValue { $0.pairs.removeValue(forKey: ObjectIdentifier(client)) }
          pair.server.withLockedValue { $0 }?.close(promise: nil)
        }
        ClientBootstrap(group: client.eventLoop)
          .channelInitializer { server in
            server.eventLoop.makeCompletedFuture {
              try server.pipeline.syncOperations.addHandler(downstream)
            }
          }
          .connect(host: "127.0.0.1", port: targetPort)
          .whenComplete { result in
            switch result {
            case .success(let server):
              client.eventLoop.execute {
                pair.server.withLockedValue { $0 = server }
                for bytes in pair.early.withLockedValue({ $0 }) {
                  server.writeAndFlush(bytes, promise: nil)
                }
                pair.early.withLockedValue { $0 = [] }
              }
            case .failure:
              client.close(promise: nil)
            }
          }
        return client.eventLoop.makeCompletedFuture {
          try client.pipeline.syncOperations.addHandler(upstream)
        }
      }
      .bind(host: "127.0.0.1", port: 0)
      .get()
    return FaultRelay(
      port: listener.localAddress!.port!,
      listener: listener,
      state: state,
      forwards: forwards
    )
  }

  /// Connections accepted so far.
  public var connectionsAccepted: Int { state.withLockedValue { $0.accepted } }

  /// Holds every byte both ways (a partition) until ``resume()``.
  public func stall() {
    state.withLockedValue { $0.stalled = true }
  }

  /// Ends a stall: what was held goes on, in order.
  public func resume() {
    state.withLockedValue { $0.stalled = false }
    for forward in forwards.withLockedValue({ $0 }) { forward.release() }
  }

  /// Delays every chunk each way by `delay` from now on.
  public func setDelay(_ delay: TimeAmount) {
    state.withLockedValue { $0.delay = delay }
  }

  /// Drops every relayed connection (both sockets closed), as a broken path does.
  public func dropConnections() {
    let pairs = state.withLockedValue { Array($0.pairs.values) }
    for pair in pairs {
      pair.client.close(promise: nil)
      pair.server.withLockedValue { $0 }?.close(promise: nil)
    }
  }

  public func close() async {
    dropConnections()
    try? await listener.close()
  }
}
