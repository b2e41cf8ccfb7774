#!/usr/bin/env python3
"""A grpc.aio load generator for hark.testing.v1.Echo/Chat: the client of the transport benchmark.

    python bench_client.py --target HOST:PORT --scenario single|concurrent --duration SECONDS
                           [--window W] [--streams N] [--rate R] [--warmup SECONDS]

single:     one bidi stream, pipelined, up to --window (default 100) requests outstanding.
concurrent: --streams (default 1000) bidi streams on one channel (one HTTP/2 connection), each
            sending --rate (default 50) requests per second on a fixed schedule.

Each request is an EchoRequest with a 320-byte payload and empty text. After --warmup seconds it
prints `MEASURING` on stderr, measures for --duration seconds, prints `DONE` on stderr, then ends
its calls (half-close, drain) and prints one JSON line on stdout. Exit status 0 if no call
failed and responses arrived, 1 otherwise, 2 on a usage error. See README.md, "Transport
benchmark", for the contract.
"""

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in tools/interop (it is not git-ignored)
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)
sys.dont_write_bytecode = False

import grpc  # noqa: E402
from hark.testing.v1 import echo_pb2, echo_pb2_grpc  # noqa: E402

PAYLOAD_BYTES = 320
# A send that starts more than this after its scheduled time counts as late (concurrent).
LATE_AFTER = 0.020
# How long the client waits for the channel to connect, and for its calls to end after DONE.
CONNECT_TIMEOUT = 10.0
DRAIN_TIMEOUT = 10.0

REQUEST = echo_pb2.EchoRequest(payload=bytes(i % 256 for i in range(PAYLOAD_BYTES)))


def _log(message):
    print(f"bench_client: {message}", file=sys.stderr, flush=True)


def _marker(word):
    # The orchestrator snapshots the server's CPU time when it reads these lines.
    sys.stderr.write(word + "\n")
    sys.stderr.flush()


def describe(error):
    """One line for a failed call's exception."""
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return repr(error).replace("\n", " ")


class Counters:
    """Totals since the start; the measured window is the difference of two snapshots."""

    __slots__ = ("sent", "received", "late")

    def __init__(self):
        self.sent = 0
        self.received = 0
        self.late = 0

    def snapshot(self):
        return (time.monotonic(), time.process_time(), self.sent, self.received, self.late)


class Stream:
    """One Chat call: counts its responses, checks their sequence numbers, records failure."""

    def __init__(self, stub, counters, failures):
        self.call = stub.Chat()
        self.counters = counters
        self.failures = failures
        self.failed = False
        self.received = 0

    def fail(self, why):
        if not self.failed:
            self.failed = True
            self.failures.append(why)
            self.call.cancel()

    async def read_all(self, on_response=None):
        call = self.call
        counters = self.counters
        eof = grpc.aio.EOF
        try:
            while True:
                response = await call.read()
                if response is eof:
                    break
                self.received += 1
                counters.received += 1
                if response.sequence != self.received or len(response.payload) != PAYLOAD_BYTES:
                    self.fail(
                        f"response {self.received}: sequence {response.sequence}, "
                        f"{len(response.payload)} payload bytes"
                    )
                    return
                if on_response is not None:
                    on_response()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001  (any failure of the call counts)
            self.fail(f"read: {describe(error)}")
            return
        code = await call.code()
        if code != grpc.StatusCode.OK:
            self.fail(f"{code.name}: {await call.details()}")

    async def finish(self):
        """Half-closes; the reader then sees the remaining responses and the status."""
        if self.failed:
            return
        try:
            await self.call.done_writing()
        except Exception as error:  # noqa: BLE001
            self.fail(f"half-close: {describe(error)}")


async def run_single(stub, args, counters, failures, stopping):
    """One stream; a writer keeps --window requests outstanding, refilled as responses arrive."""
    stream = Stream(stub, counters, failures)
    credit = asyncio.Semaphore(args.window)

    async def write_all():
        call = stream.call
        try:
            while True:
                await credit.acquire()
                if stopping.is_set() or stream.failed:
                    return
                await call.write(REQUEST)
                counters.sent += 1
        except Exception as error:  # noqa: BLE001
            stream.fail(f"write: {describe(error)}")

    reader = asyncio.create_task(stream.read_all(credit.release))
    writer = asyncio.create_task(write_all())

    async def stop():
        credit.release()  # wakes the writer if it waits for credit
        await writer
        await stream.finish()
        await reader

    return [stream], stop


async def run_concurrent_tasks(stub, args, counters, failures, stopping, start):
    """--streams streams, each with its own writer task sleeping until its next send."""
    loop = asyncio.get_running_loop()
    period = 1.0 / args.rate
    streams = [Stream(stub, counters, failures) for _ in range(args.streams)]

    async def write_all(index, stream):
        call = stream.call
        # Phases spread evenly over one period, as independent real-time sources would be.
        due = start + index * period / args.streams
        try:
            while True:
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                if stopping.is_set() or stream.failed:
                    return
                if now - due > LATE_AFTER:
                    counters.late += 1
                await call.write(REQUEST)
                counters.sent += 1
                due += period  # the schedule, not the time of the last send: no drift
        except Exception as error:  # noqa: BLE001
            stream.fail(f"write: {describe(error)}")

    readers = [asyncio.create_task(s.read_all()) for s in streams]
    writers = [asyncio.create_task(write_all(i, s)) for i, s in enumerate(streams)]

    async def stop():
        await asyncio.gather(*writers)
        await asyncio.gather(*(s.finish() for s in streams))
        await asyncio.gather(*readers)

    return streams, stop


async def run_concurrent_timer(stub, args, counters, failures, stopping, start):
    """--streams streams driven by one timer loop that starts each due send as a task."""
    loop = asyncio.get_running_loop()
    period = 1.0 / args.rate
    count = args.streams
    streams = [Stream(stub, counters, failures) for _ in range(count)]
    # Phases spread evenly over one period, as independent real-time sources would be.
    phase = [start + i * period / count for i in range(count)]
    started = [0] * count  # sends started per stream; send k is due at phase + k * period
    writing = [False] * count
    pending = set()

    async def write(index):
        # Sends every send of this stream that is due, one at a time (a call takes one write at
        # a time), then returns; the timer loop starts it again at the next due time.
        stream = streams[index]
        call = stream.call
        try:
            while not stopping.is_set() and not stream.failed:
                due = phase[index] + started[index] * period
                now = loop.time()
                if due > now:
                    break
                if now - due > LATE_AFTER:
                    counters.late += 1
                started[index] += 1
                await call.write(REQUEST)
                counters.sent += 1
        except Exception as error:  # noqa: BLE001
            stream.fail(f"write: {describe(error)}")
        finally:
            writing[index] = False

    async def tick():
        # Visits the streams in phase order, each at its due time in round r (phase + r *
        # period, computed as the writer does), and starts a writer for it unless one is still
        # busy (that one then sends this one too).
        rnd, index, behind = 0, 0, 0
        while not stopping.is_set():
            delay = phase[index] + rnd * period - loop.time()
            if delay > 0:
                behind = 0
                await asyncio.sleep(delay)
            else:
                behind += 1
                if behind % 100 == 0:
                    await asyncio.sleep(0)  # let completions in while catching up
            if not writing[index] and not streams[index].failed:
                writing[index] = True
                task = loop.create_task(write(index))
                pending.add(task)
                task.add_done_callback(pending.discard)
            index += 1
            if index == count:
                index, rnd = 0, rnd + 1

    readers = [asyncio.create_task(s.read_all()) for s in streams]
    ticker = asyncio.create_task(tick())

    async def stop():
        await ticker
        while pending:
            await asyncio.gather(*list(pending))
        await asyncio.gather(*(s.finish() for s in streams))
        await asyncio.gather(*readers)

    return streams, stop


async def run(args):
    counters = Counters()
    failures = []
    stopping = asyncio.Event()
    calls = 1 if args.scenario == "single" else args.streams
    result = {
        "scenario": args.scenario,
        "messages": 0,
        "sent": 0,
        "seconds": 0.0,
        "cpu_seconds": 0.0,
        "errors": 0,
        "target_rate": None if args.scenario == "single" else float(args.streams * args.rate),
        "late": 0,
    }
    # One channel: one HTTP/2 connection for every call. Retries off, as in echo_client.py.
    options = [("grpc.enable_retries", 0)]
    async with grpc.aio.insecure_channel(args.target, options=options) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            _log(f"cannot connect to {args.target} within {CONNECT_TIMEOUT:g} s")
            result["errors"] = calls
            return result
        stub = echo_pb2_grpc.EchoStub(channel)
        loop = asyncio.get_running_loop()
        if args.scenario == "single":
            streams, stop = await run_single(stub, args, counters, failures, stopping)
        else:
            start = loop.time() + 0.05
            runner = run_concurrent_timer if args.pacing == "timer" else run_concurrent_tasks
            streams, stop = await runner(stub, args, counters, failures, stopping, start)

        await asyncio.sleep(args.warmup)
        before = counters.snapshot()
        _marker("MEASURING")
        await asyncio.sleep(args.duration)
        after = counters.snapshot()
        _marker("DONE")

        stopping.set()
        try:
            await asyncio.wait_for(stop(), DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            _log(f"calls still open {DRAIN_TIMEOUT:g} s after DONE; cancelling them")
            for stream in streams:
                if not stream.failed and not stream.call.done():
                    stream.fail("did not end within the drain timeout")

    result.update(
        messages=after[3] - before[3],
        sent=after[2] - before[2],
        seconds=round(after[0] - before[0], 6),
        cpu_seconds=round(after[1] - before[1], 6),
        errors=sum(1 for s in streams if s.failed),
        late=after[4] - before[4],
    )
    for why in failures[:5]:
        _log(f"call failed: {why}")
    if len(failures) > 5:
        _log(f"... and {len(failures) - 5} more failed calls")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of an Echo server")
    parser.add_argument("--scenario", required=True, choices=["single", "concurrent"])
    parser.add_argument("--duration", type=float, required=True, help="measured seconds")
    parser.add_argument("--window", type=int, default=100, help="single: requests outstanding")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent: streams")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="concurrent: requests/s per stream"
    )
    parser.add_argument(
        "--warmup", type=float, default=None,
        help="seconds before measuring (single 1, concurrent 2)",
    )
    parser.add_argument(
        "--pacing",
        choices=["timer", "tasks"],
        default="timer",
        help="concurrent (this client only): one timer loop (default), or a task per stream",
    )
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 1.0 if args.scenario == "single" else 2.0
    if min(args.window, args.streams) < 1 or min(args.duration, args.rate) <= 0 or args.warmup < 0:
        parser.error("--duration, --window, --streams and --rate must be positive, --warmup >= 0")

    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0 if result["errors"] == 0 and result["messages"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
