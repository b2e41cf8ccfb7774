#!/usr/bin/env python3
"""A grpcio client of hark.testing.v1.Echo that runs one scenario against a server.

    python echo_client.py --target HOST:PORT --scenario NAME [--count N]

Prints one JSON object on stdout (see README.md for the contract) and exits 0 if the scenario's
expectations held, 1 if not, 2 on a usage error.
"""

import argparse
import base64
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in tools/interop (it is not git-ignored)
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)
sys.dont_write_bytecode = False

import grpc  # noqa: E402
from hark.testing.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402

MiB = 1024 * 1024
CHAT = "/hark.testing.v1.Echo/Chat"
MISSING = "/hark.testing.v1.Echo/Missing"
# A scenario that has not finished by then has hung; the calls get this deadline unless the
# scenario sets its own.
CALL_TIMEOUT = 30.0


class Failure(Exception):
    """An expectation of the scenario did not hold."""


def expect(condition, message):
    if not condition:
        raise Failure(message)


def metadata_object(metadata):
    """A JSON object of gRPC metadata; binary (-bin) values as base64, repeated keys as lists."""
    result = {}
    for key, value in metadata or ():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        if key in result:
            if not isinstance(result[key], list):
                result[key] = [result[key]]
            result[key].append(value)
        else:
            result[key] = value
    return result


class Requests:
    """A request iterator fed from another thread: put() sends, close() half-closes.

    The iterator also ends when the call terminates (the scenario registers finish() as the
    call's done callback), so grpcio's request-consuming thread never stays blocked.
    """

    _END = object()

    def __init__(self):
        self._queue = queue.Queue()

    def put(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(self._END)

    def finish(self, _call=None):
        self._queue.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._END:
            raise StopIteration
        return item


class Call:
    """One Chat call: sends with send(), receives with receive(), records how it ended."""

    def __init__(self, stub_method, timeout=CALL_TIMEOUT, metadata=None):
        self.requests = Requests()
        self.started = time.monotonic()
        self.call = stub_method(self.requests, timeout=timeout, metadata=metadata)
        self.call.add_done_callback(self.requests.finish)
        self.responses = 0
        self.error = None  # the grpc.RpcError the response stream ended with, if any

    def send(self, request):
        self.requests.put(request)

    def half_close(self):
        self.requests.close()

    def receive(self):
        """The next response, or None when the response stream ended (then see status())."""
        try:
            response = next(self.call)
        except StopIteration:
            return None
        except grpc.RpcError as error:
            self.error = error
            return None
        self.responses += 1
        return response

    def ended(self):
        """How the response stream ended, for failure messages."""
        if self.error is None:
            return "ended with OK"
        return f"ended with {self.error.code().name} ({self.error.details()!r})"

    def drain(self):
        """Reads until the call ends; returns the responses that were still read."""
        extra = []
        while True:
            response = self.receive()
            if response is None:
                return extra
            extra.append(response)

    def code(self):
        return self.call.code()

    def report(self, result):
        """Fills the common fields of the JSON result from this call.

        Waits for the call to end; one that a failed scenario left open is cancelled after a
        few seconds (and then reports CANCELLED, with the failure explaining why).
        """
        done = threading.Event()
        self.call.add_done_callback(lambda _call: done.set())
        if not done.wait(3.0):
            self.call.cancel()
        code = self.call.code()
        result["status_code"] = code.value[0]
        result["status_name"] = code.name
        result["status_details"] = self.call.details() or ""
        result["responses"] = self.responses
        result["initial_metadata"] = metadata_object(self.call.initial_metadata())
        result["trailing_metadata"] = metadata_object(self.call.trailing_metadata())


def expect_status(result, code, details=None):
    expect(result["status_code"] == code.value[0],
           f"expected status {code.name}, got {result['status_name']} "
           f"({result['status_details']!r})")
    if details is not None:
        expect(result["status_details"] == details,
               f"expected status details {details!r}, got {result['status_details']!r}")


def pattern_payload(index, size):
    return bytes((index + j) % 256 for j in range(size))


# --- scenarios ------------------------------------------------------------------------------
# Each gets (channel, args, result), fills result, and raises Failure when an expectation fails.


def scenario_echo_many(channel, args, result):
    count = args.count if args.count is not None else 1000
    result["count"] = count
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    sent = []
    for i in range(count):
        request = echo_pb2.EchoRequest(payload=pattern_payload(i, 320), text=f"m{i}")
        sent.append(request)
        call.send(request)
    try:
        for i, request in enumerate(sent):
            response = call.receive()
            expect(response is not None,
                   f"the call {call.ended()} after {i} of {count} responses")
            expect(response.payload == request.payload, f"response {i}: payload differs")
            expect(response.text == request.text,
                   f"response {i}: text {response.text!r}, expected {request.text!r}")
            expect(response.sequence == i + 1,
                   f"response {i}: sequence {response.sequence}, expected {i + 1}")
        call.half_close()
        extra = call.drain()
        expect(not extra, f"{len(extra)} responses more than requests")
    finally:
        call.half_close()
        call.report(result)
    expect_status(result, grpc.StatusCode.OK)


def scenario_near_limit(channel, args, result):
    limit = 4 * MiB
    size = limit - 64
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    # A request of exactly `size` bytes: payload field tag (1) + length varint (4) + payload.
    request = echo_pb2.EchoRequest(payload=pattern_payload(7, size - 5))
    expect(request.ByteSize() == size, f"request is {request.ByteSize()} bytes, not {size}")
    result["request_bytes"] = request.ByteSize()
    try:
        call.send(request)
        response = call.receive()
        expect(response is not None, f"no echo of the near-limit request: the call {call.ended()}")
        result["echo_response_bytes"] = response.ByteSize()
        expect(response.payload == request.payload, "the echoed payload differs")
        expect(response.sequence == 1, f"sequence {response.sequence}, expected 1")

        call.send(echo_pb2.EchoRequest(response_bytes=size))
        response = call.receive()
        expect(response is not None,
               f"no response to response_bytes = 4 MiB - 64: the call {call.ended()}")
        result["large_response_bytes"] = response.ByteSize()
        expect(response.payload == b"\xab" * size,
               f"payload of {len(response.payload)} bytes, expected {size} bytes of 0xAB")
        expect(response.sequence == 2, f"sequence {response.sequence}, expected 2")
        call.half_close()
        extra = call.drain()
        expect(not extra, f"{len(extra)} unexpected responses")
    finally:
        call.half_close()
        call.report(result)
    expect_status(result, grpc.StatusCode.OK)


def scenario_over_limit(channel, args, result):
    size = 4 * MiB + 1024
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    request = echo_pb2.EchoRequest(payload=pattern_payload(3, size - 5))
    expect(request.ByteSize() == size, f"request is {request.ByteSize()} bytes, not {size}")
    result["request_bytes"] = size
    try:
        call.send(request)
        extra = call.drain()  # the stream stays open: the server must end the call
    finally:
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses to an over-limit request")
    expect_status(result, grpc.StatusCode.RESOURCE_EXHAUSTED)
    # grpcio words both limits alike; "Sent" would mean this client refused to send.
    expect(not result["status_details"].startswith("Sent message larger"),
           "the client refused to send the message; the server's limit was not exercised")


def scenario_metadata(channel, args, result):
    stub = echo_pb2_grpc.EchoStub(channel)
    beta = bytes([0, 1, 2, 255])
    call = Call(stub.Chat, metadata=(
        ("x-echo-alpha", "one"),
        ("x-echo-beta-bin", beta),
        ("authorization", "Bearer token-123"),
    ))
    try:
        call.send(echo_pb2.EchoRequest(text="metadata"))
        response = call.receive()
        expect(response is not None, f"no echo of the request: the call {call.ended()}")
        expect(response.text == "metadata", f"echoed text {response.text!r}, expected 'metadata'")
        call.half_close()
        call.drain()
    finally:
        call.half_close()
        call.report(result)
    expect_status(result, grpc.StatusCode.OK)
    initial = dict(call.call.initial_metadata() or ())
    trailing = dict(call.call.trailing_metadata() or ())
    expect(initial.get("x-server"),
           f"no x-server in the initial metadata: {result['initial_metadata']}")
    expect(trailing.get("echo-alpha") == "one",
           f"trailing echo-alpha is {trailing.get('echo-alpha')!r}, expected 'one'")
    expect(trailing.get("echo-beta-bin") == beta,
           f"trailing echo-beta-bin is {trailing.get('echo-beta-bin')!r}, expected {beta!r}")
    expect("echo-authorization" not in trailing, "authorization was echoed; it is no x-echo-*")


def scenario_deadline(channel, args, result):
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat, timeout=0.3)
    try:
        call.send(echo_pb2.EchoRequest(text="late", delay_ms=3000))
        extra = call.drain()
    finally:
        result["elapsed_ms"] = round((time.monotonic() - call.started) * 1000)
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses before the deadline")
    expect_status(result, grpc.StatusCode.DEADLINE_EXCEEDED)
    expect(result["elapsed_ms"] < 1000, f"the call took {result['elapsed_ms']} ms, not < 1000")


def scenario_client_cancel(channel, args, result):
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    try:
        call.send(echo_pb2.EchoRequest(text="before cancel"))
        response = call.receive()
        expect(response is not None, f"no echo before the cancel: the call {call.ended()}")
        expect(response.text == "before cancel", f"echoed text {response.text!r}")
        result["cancelled"] = bool(call.call.cancel())
        extra = call.drain()
    finally:
        result.setdefault("cancelled", False)
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses after the cancel")
    expect(result["cancelled"], "cancel() did not cancel the call")
    expect_status(result, grpc.StatusCode.CANCELLED)


def scenario_server_cancel(channel, args, result):
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    try:
        call.send(echo_pb2.EchoRequest(text="cancel me", cancel=True))
        extra = call.drain()  # the client does not half-close: the server ends the call
    finally:
        result["elapsed_ms"] = round((time.monotonic() - call.started) * 1000)
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses to a cancel request")
    expect_status(result, grpc.StatusCode.CANCELLED)


def scenario_status_unicode(channel, args, result):
    message = "\t\n ☺ 😈 100%"
    stub = echo_pb2_grpc.EchoStub(channel)
    call = Call(stub.Chat)
    try:
        call.send(echo_pb2.EchoRequest(status=echo_pb2.EchoStatus(code=9, message=message)))
        extra = call.drain()
    finally:
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses to a status request")
    expect_status(result, grpc.StatusCode.FAILED_PRECONDITION, message)


def scenario_unimplemented(channel, args, result):
    # No serializers: requests and responses are raw bytes.
    method = channel.stream_stream(MISSING, request_serializer=None, response_deserializer=None)
    call = Call(method)
    try:
        call.send(b"")
        call.half_close()
        extra = call.drain()
    finally:
        call.half_close()
        call.report(result)
    expect(not extra, f"{len(extra)} responses from a missing method")
    expect_status(result, grpc.StatusCode.UNIMPLEMENTED)


def scenario_concurrent(channel, args, result):
    calls = args.count if args.count is not None else 200
    per_call = 5
    result["calls"] = calls
    stub = echo_pb2_grpc.EchoStub(channel)
    # Every call waits here after its first exchange, so all are open at once.
    barrier = threading.Barrier(calls)
    outcomes = [None] * calls  # (call, failure or None)

    def run(index):
        call = None
        failure = None
        try:
            call = Call(stub.Chat)
            for k in range(per_call):
                text = f"c{index}.{k}"
                call.send(echo_pb2.EchoRequest(payload=pattern_payload(index + k, 64),
                                               text=text))
                response = call.receive()
                if response is None:
                    raise Failure(f"call {index}: the call {call.ended()} after {k} responses")
                if response.text != text or response.sequence != k + 1:
                    raise Failure(f"call {index}: response {k} is {response.text!r} "
                                  f"#{response.sequence}, expected {text!r} #{k + 1}")
                if k == 0:
                    try:
                        barrier.wait(timeout=6.0)
                    except threading.BrokenBarrierError:
                        raise Failure(f"not all {calls} calls were open at once "
                                      f"({barrier.n_waiting} waiting when it timed out)")
            call.half_close()
            if call.drain():
                raise Failure(f"call {index}: more responses than requests")
        except Failure as error:
            failure = str(error)
            barrier.abort()
        except Exception as error:  # noqa: BLE001
            failure = f"call {index}: {type(error).__name__}: {error}"
            barrier.abort()
        finally:
            if call is not None:
                call.half_close()
                call.drain()
        outcomes[index] = (call, failure)

    threads = [threading.Thread(target=run, args=(i,), name=f"call-{i}") for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ok = [c for c, f in outcomes if f is None and c is not None
          and c.code() == grpc.StatusCode.OK]
    result["calls_ok"] = len(ok)
    failures = [f for _, f in outcomes if f is not None]
    not_ok = [c for c, f in outcomes if c is not None and c.code() != grpc.StatusCode.OK]
    # The common fields describe the first call that did not end OK, else the first call.
    reported = not_ok[0] if not_ok else outcomes[0][0]
    if reported is not None:
        reported.report(result)
    result["responses"] = sum(c.responses for c, _ in outcomes if c is not None)
    expect(not failures, f"{len(failures)} calls failed; first: {failures[0]}" if failures else "")
    expect(len(ok) == calls, f"{calls - len(ok)} of {calls} calls did not end OK")


SCENARIOS = {
    "echo-many": scenario_echo_many,
    "near-limit": scenario_near_limit,
    "over-limit": scenario_over_limit,
    "metadata": scenario_metadata,
    "deadline": scenario_deadline,
    "client-cancel": scenario_client_cancel,
    "server-cancel": scenario_server_cancel,
    "status-unicode": scenario_status_unicode,
    "unimplemented": scenario_unimplemented,
    "concurrent": scenario_concurrent,
}

# Channel options per scenario: the limit scenarios lift this client's own limits, so that
# only the server's (grpc's default 4 MiB receive limit) applies.
LARGE_MESSAGES = [
    ("grpc.max_send_message_length", 64 * MiB),
    ("grpc.max_receive_message_length", 64 * MiB),
]
CHANNEL_OPTIONS = {"near-limit": LARGE_MESSAGES, "over-limit": LARGE_MESSAGES}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the Echo server")
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--count", type=int, default=None,
                        help="messages (echo-many, default 1000) or calls (concurrent, 200)")
    parser.add_argument("--cacert", help="TLS: trust the CAs of this PEM file (else plaintext)")
    parser.add_argument("--cert", help="TLS: present this PEM client certificate")
    parser.add_argument("--key", help="TLS: the PEM key of --cert")
    parser.add_argument("--authority", help="TLS: the name to verify (ssl_target_name_override)")
    args = parser.parse_args()

    result = {
        "scenario": args.scenario,
        "ok": False,
        "status_code": -1,  # stays -1 / NONE only if no call was made
        "status_name": "NONE",
        "status_details": "",
        "responses": 0,
        "initial_metadata": {},
        "trailing_metadata": {},
        "failure": None,
    }
    started = time.monotonic()
    options = [("grpc.enable_retries", 0)] + CHANNEL_OPTIONS.get(args.scenario, [])
    if args.cacert:
        root = open(args.cacert, "rb").read()
        key = open(args.key, "rb").read() if args.key else None
        chain = open(args.cert, "rb").read() if args.cert else None
        credentials = grpc.ssl_channel_credentials(root, key, chain)
        if args.authority:
            options.append(("grpc.ssl_target_name_override", args.authority))
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    try:
        SCENARIOS[args.scenario](channel, args, result)
        result["ok"] = True
    except Failure as failure:
        result["failure"] = str(failure)
    except Exception as error:  # noqa: BLE001  (reported, not raised: the output stays JSON)
        result["failure"] = f"{type(error).__name__}: {error}"
    finally:
        channel.close()
    result["duration_ms"] = round((time.monotonic() - started) * 1000)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
