#!/usr/bin/env python3
"""A grpcio server of hark.testing.v1.Echo, the reference peer of Hark's client tests.

    python echo_server.py [--host 127.0.0.1] [--port 0] [--tls-cert F --tls-key F [--tls-client-ca F]]

Prints `LISTENING <port>` as its first stdout line once it accepts connections, then serves
until its stdin reaches EOF (the parent closes the pipe) or it gets SIGTERM / SIGINT, and exits 0.
Diagnostics go to stderr. See README.md for the semantics of Chat.
"""

import argparse
import os
import signal
import sys
import threading
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in tools/interop (it is not git-ignored)
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)
sys.dont_write_bytecode = False

import grpc  # noqa: E402
from hark.testing.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402

# Enough handler threads for 300 concurrent streams (a sync grpcio server holds one thread per
# open streaming call), plus headroom.
MAX_WORKERS = 320

STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _log(message):
    print(f"echo_server: {message}", file=sys.stderr, flush=True)


class EchoServicer(echo_pb2_grpc.EchoServicer):
    def Chat(self, request_iterator, context):
        # Set when the RPC terminates (completed, cancelled, deadline), so that delays end early.
        terminated = threading.Event()
        context.add_callback(terminated.set)
        context.send_initial_metadata((("x-server", "grpcio"),))

        sequence = 0
        for request in request_iterator:
            if request.delay_ms:
                if terminated.wait(request.delay_ms / 1000.0):
                    return
            if request.HasField("status"):
                code = STATUS_CODES.get(request.status.code)
                if code is None:
                    code = grpc.StatusCode.UNKNOWN
                # set_code/set_details + return (rather than abort) also allows code 0; grpcio
                # sends the details as UTF-8, percent-encoded by the core (grpc-message).
                context.set_code(code)
                context.set_details(request.status.message)
                return
            if request.cancel:
                # Cancels the server call in the core (grpc_call_cancel); the transport ends
                # the stream, see README.md for what the client sees.
                context.cancel()
                return
            payload = request.payload
            if request.response_bytes > 0:
                payload = b"\xab" * request.response_bytes
            for _ in range(max(1, request.response_count)):
                sequence += 1
                yield echo_pb2.EchoResponse(payload=payload, text=request.text, sequence=sequence)

        # The client half-closed: end with OK and echo the x-echo-* headers.
        trailing = []
        for key, value in context.invocation_metadata():
            if key.startswith("x-echo-"):
                # grpcio gives -bin values as bytes and accepts bytes back for -bin keys.
                trailing.append(("echo-" + key[len("x-echo-"):], value))
        context.set_trailing_metadata(tuple(trailing))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", help="serve TLS with this PEM certificate chain")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by these CAs")
    args = parser.parse_args()

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="echo"),
        # Keep grpc's default receive limit (4 MiB), so larger requests fail RESOURCE_EXHAUSTED.
        options=[("grpc.so_reuseport", 0)],
    )
    echo_pb2_grpc.add_EchoServicer_to_server(EchoServicer(), server)
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    if args.tls_cert:
        with open(args.tls_cert, "rb") as cert, open(args.tls_key, "rb") as key:
            pair = (key.read(), cert.read())
        client_ca = open(args.tls_client_ca, "rb").read() if args.tls_client_ca else None
        credentials = grpc.ssl_server_credentials(
            [pair], root_certificates=client_ca, require_client_auth=client_ca is not None)
        port = server.add_secure_port(f"{host}:{args.port}", credentials)
    else:
        port = server.add_insecure_port(f"{host}:{args.port}")
    if port == 0:
        _log(f"cannot listen on {args.host}:{args.port}")
        return 2
    server.start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # A closed or missing stdin counts as EOF too.
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except (OSError, AttributeError, ValueError):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    print(f"LISTENING {port}", flush=True)

    # Event.wait with a timeout, so that the main thread runs the signal handler promptly.
    while not stop.wait(0.2):
        pass
    server.stop(grace=0.5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
