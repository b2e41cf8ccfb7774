#!/usr/bin/env python3
"""A grpc.aio server of hark.testing.v1.Echo/Chat for the transport benchmark.

    python bench_server.py [--host 127.0.0.1] [--port 0]

Answers every EchoRequest with one EchoResponse (its payload and text, and the call's sequence
number 1, 2, 3, ...), as fast as grpcio's asyncio API allows; when the client half-closes, ends
the call with OK. None of echo_server.py's test knobs (delay, status, cancel, ...): this server
only echoes. Prints `LISTENING <port>` as its first stdout line once it accepts connections, then
serves until its stdin reaches EOF (the parent closes the pipe) or it gets SIGTERM / SIGINT, and
exits 0. Diagnostics go to stderr. See README.md, "Transport benchmark".
"""

import argparse
import asyncio
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in tools/interop (it is not git-ignored)
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)
sys.dont_write_bytecode = False

import grpc  # noqa: E402
from hark.testing.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402

EchoResponse = echo_pb2.EchoResponse


def _log(message):
    print(f"bench_server: {message}", file=sys.stderr, flush=True)


class EchoServicer(echo_pb2_grpc.EchoServicer):
    async def Chat(self, request_iterator, context):
        # An explicit context.read() / context.write() loop: measured about 15 % more messages/s
        # than the async-generator form (`async for request in request_iterator: yield ...`).
        read = context.read
        write = context.write
        eof = grpc.aio.EOF
        sequence = 0
        while True:
            request = await read()
            if request is eof:
                return  # the client half-closed: OK
            sequence += 1
            await write(EchoResponse(payload=request.payload, text=request.text, sequence=sequence))


async def serve(host, port):
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    echo_pb2_grpc.add_EchoServicer_to_server(EchoServicer(), server)
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        _log(f"cannot listen on {host}:{port}")
        return 2
    await server.start()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def watch_stdin():
        # A closed or missing stdin counts as EOF too. A thread rather than loop.add_reader, so
        # that stdin may also be a regular file.
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except (OSError, AttributeError, ValueError):
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    print(f"LISTENING {bound}", flush=True)
    await stop.wait()
    await server.stop(0.5)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    return asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
