#!/usr/bin/env python3
"""The driver of tools/soak: runs `hark serve` under a mixed load and reports its resources.

Run it through tools/soak, which installs what it needs and builds `hark`. Usage:

    tools/soak [--minutes N] [--engine dtmf|sphinx] [--interval SECONDS] [--recognizers N]
               [--skip COMPONENTS] [--out FILE] [--hark PATH]

It starts `hark serve` on a free loopback port and, all at once, for N minutes:
  1. normal sessions: `hark load --sessions S` (S below the recognizer count), run after run;
  2. 409s: a grpcio client opens more Recognize streams at once than there are recognizers;
  3. cancels: grpcio Recognize calls streaming real-time audio, cancelled after a random delay;
  4. kills: `hark recognize --realtime` processes SIGKILLed mid-stream;
  5. bad frames: raw connections sending garbage, HTTP/1.1, a truncated gRPC message, malformed
     protobuf, audio before the init, an HPACK bomb (one large dynamic-table entry referenced
     thousands of times), a rapid HEADERS + RST_STREAM burst; each then closes;
  6. connection churn: connect and close, preface only, short SETTINGS exchanges.
Every interval it prints a row: the server's RSS, open fds and threads (from /proc), the
recognitions active and the pool state from its `Statistics` log line, and what each load
component did meanwhile. Then it stops the load, waits for the sessions to end, checks that the
server still answers a normal recognition and that its pool is all idle again, and prints the
table and a verdict (RSS after warm-up: the first row after 2 minutes, or after a third of a
run shorter than 6 minutes; the slope: a least-squares fit over the second half). Exit status:
0 pass; 1 the server died, stopped answering or its pool did not return to idle; 64 bad usage;
130 interrupted.

Everything stays on 127.0.0.1. Each component is bounded in rate and concurrency (the constants
below), so that the whole load costs about one core of this 2-core machine.
"""

import argparse
import os
import sys

# --- limits of each load component (per second rates, concurrency caps) -------------------

BURST_EVERY_S = 5.0  # a 409 burst every this long ...
BURST_EXTRA = 8  # ... of recognizers + this many streams at once
CANCEL_EVERY_S = {"dtmf": 1.0, "sphinx": 2.0}
CANCEL_CONCURRENCY = 3
KILL_EVERY_S = {"dtmf": 2.0, "sphinx": 4.0}
KILL_CONCURRENCY = 2
MID_STREAM_S = (0.2, 4.0)  # cancels and kills happen this long after the call starts
BAD_EVERY_S = 0.5  # one bad-frame connection this often
BAD_CONCURRENCY = 2
BAD_WAIT_S = 1.0  # how long a bad-frame connection waits for the server before closing
CHURN_PER_S = 30  # churned connections a second
CHURN_CONCURRENCY = 16
RAPID_RESET_STREAMS = 100  # HEADERS + RST_STREAM pairs in one rapid-reset write
BOMB_ENTRY_BYTES = 4000  # the HPACK bomb's dynamic-table entry (fits the default 4096 table)
BOMB_REFERENCES = 8000  # references to it in one HEADERS frame: ~32 MB of decoded headers
LOG_LIMIT_BYTES = 64 << 20  # the server log is truncated when it grows past this
RESTART_BACKOFF_S = 1.0  # a component that failed waits this long before it starts again

# What each engine is given: `hark load` sessions stream the first file (dtmf: hark load's
# own DTMF audio); cancels, kills, 409 bursts, bad frames and the final check use the second,
# with the builtin grammar (sphinx decodes dictation at ~0.2 CPU s per audio s, the digits
# grammar at ~0.03: the load stays near one core).
ENGINE_AUDIO = {
    "dtmf": (None, "dtmf-8k.wav", None),
    "sphinx": ("sentence-8k.wav", "digits-8k.wav", "digits"),
}
DEFAULT_RECOGNIZERS = {"dtmf": 40, "sphinx": 8}
MAX_RECOGNIZERS = 500
COMPONENTS = ("sessions", "409", "cancels", "kills", "bad", "churn")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(REPO, "Samples")


# --- options ------------------------------------------------------------------------------


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage + message
        raise UsageError(message)


def positive(kind, minimum):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}")
        if not value >= minimum or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value
    return parse


def parse_options(argv):
    parser = Parser(
        prog="tools/soak", allow_abbrev=False,
        description="Soak-test `hark serve` on loopback under a mixed load; report RSS, fds, "
                    "threads and pool state every interval.",
        epilog="Exit status: 0 pass; 1 the server died, stopped answering or its pool did not "
               "return to idle; 64 bad usage; 130 interrupted.")
    parser.add_argument("--minutes", type=positive(float, 0.1), default=10.0,
                        help="minutes of load (default 10)")
    parser.add_argument("--engine", choices=("dtmf", "sphinx"), default="dtmf",
                        help="the server's engine (default dtmf)")
    parser.add_argument("--interval", type=positive(float, 1.0), default=10.0,
                        help="seconds between rows, also the server's --statistics-interval "
                             "(default 10)")
    parser.add_argument("--recognizers", type=positive(int, 2), default=None,
                        help="the server's --recognizers, 2 to 500 (default 40 for dtmf, 8 "
                             "for sphinx); the load holds about half (a quarter with sphinx)")
    parser.add_argument("--out", metavar="FILE", help="also write the table and verdict as Markdown")
    parser.add_argument("--skip", metavar="LIST", default="",
                        help="leave out load components, comma-separated: "
                             + ",".join(COMPONENTS) + " (to find which one a leak follows)")
    parser.add_argument("--hark", metavar="PATH",
                        help="the hark binary to run (tools/soak builds one without it)")
    args = parser.parse_args(argv)
    if args.hark is not None and not (os.path.isfile(args.hark) and os.access(args.hark, os.X_OK)):
        raise UsageError(f"--hark {args.hark}: not an executable file")
    if args.out is not None:
        directory = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise UsageError(f"--out {args.out}: {directory} is not a writable directory")
    args.skip = [name for name in args.skip.split(",") if name]
    for name in args.skip:
        if name not in COMPONENTS:
            raise UsageError(f"--skip {name}: not one of {','.join(COMPONENTS)}")
    if args.recognizers is None:
        args.recognizers = DEFAULT_RECOGNIZERS[args.engine]
    if args.recognizers > MAX_RECOGNIZERS:  # a 409 burst opens more streams than this
        raise UsageError(f"--recognizers {args.recognizers}: at most {MAX_RECOGNIZERS}")
    return args


def main_usage(argv):
    """Parses the options; on a usage error prints one line and exits 64."""
    try:
        return parse_options(argv)
    except UsageError as error:
        print(f"soak: {error} (see tools/soak --help)", file=sys.stderr)
        sys.exit(64)


if __name__ == "__main__" and any(a in ("--check-options", "-h", "--help") for a in sys.argv[1:]):
    # Help, and tools/soak's check of the options before it spends minutes building hark: no
    # grpcio needed (this may run outside the venv).
    main_usage([a for a in sys.argv[1:] if a != "--check-options"])
    sys.exit(0)


# --- everything else needs the venv (grpcio) ----------------------------------------------

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")  # children fork and exec at once
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import asyncio  # noqa: E402
import collections  # noqa: E402
import ctypes  # noqa: E402
import itertools  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
import json  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tools", "interop"))
sys.dont_write_bytecode = True  # no __pycache__ in tools/
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)

import grpc  # noqa: E402
from nuance.asr.v1 import recognizer_pb2, recognizer_pb2_grpc, resource_pb2  # noqa: E402

# Each channel owns its connection (no global subchannel pool keeping one open after close).
GRPC_OPTIONS = [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0),
                ("grpc.use_local_subchannel_pool", 1)]

# --- children: own process group (Ctrl-C is ours to handle), killed if the driver dies -----

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    os.setpgrp()
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# --- the server's log ---------------------------------------------------------------------

LOG_LINE = re.compile(r"^(\S+) (\w+) (\S+?) ?:(.*) \[([^\]\s]*)\] (.*)$")
METADATA_KEY = re.compile(r"(?:^|(?<= ))([A-Za-z_][\w.-]*)=")


def parse_log_line(line):
    """A swift-log StreamLogHandler line as (timestamp, level, message, {key: value}), or None.

    `2026-12-02T06:37:17+0000 info hark.serve : active=3 ended=10 statuses=200: 10, 409: 2
    [HarkCLI] Statistics`: metadata is `key=value`, sorted by key, separated by one space; a
    value may itself hold spaces, so a value runs up to the next ` key=`.
    """
    match = LOG_LINE.match(line.rstrip("\n"))
    if not match:
        return None
    timestamp, level, _label, text, _source, message = match.groups()
    text = text.strip(" ")
    metadata = {}
    keys = list(METADATA_KEY.finditer(text))
    for index, key in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(text)
        metadata[key.group(1)] = text[key.end():end].rstrip(" ")
    return timestamp, level, message, metadata


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ServerLog:
    """Follows the server's stderr file: new lines, its Statistics lines, its warnings."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.truncations = 0
        self.warnings = collections.Counter()  # "level: message" -> count
        self.listening = None  # the Listening line's metadata
        self.ready = False  # the Ready line (engines loaded) was logged

    def read(self):
        """The Statistics lines (metadata dicts) that arrived since the last call."""
        statistics = []
        try:
            file = open(self.path, "rb")
        except OSError:
            return statistics
        with file:
            if os.fstat(file.fileno()).st_size < self.offset:  # truncated
                self.offset, self.partial = 0, b""
            file.seek(self.offset)
            while True:
                chunk = file.read(1 << 20)
                if not chunk:
                    break
                self.offset += len(chunk)
                lines = (self.partial + chunk).split(b"\n")
                self.partial = lines.pop()[-65536:]
                for line in lines:
                    self.take(line.decode("utf-8", "replace"), statistics)
        if self.offset > LOG_LIMIT_BYTES:
            # The server writes with O_APPEND, so it goes on at the start of the file; lines
            # it writes between the read above and this truncation are lost.
            os.truncate(self.path, 0)
            self.truncations += 1
            self.offset, self.partial = 0, b""
        return statistics

    def take(self, line, statistics):
        parsed = parse_log_line(line)
        if parsed is None:
            return
        _, level, message, metadata = parsed
        if message == "Statistics":
            statistics.append(metadata)
        elif message == "Listening":
            self.listening = metadata
        elif message == "Ready":
            self.ready = True
        if level in ("warning", "error", "critical"):
            key = f"{level}: {message}"
            if key in self.warnings or len(self.warnings) < 40:
                self.warnings[key] += 1
            else:
                self.warnings["(other warnings)"] += 1


# --- /proc --------------------------------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far, or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def process_resources(pid):
    """(RSS MiB, fds, threads) of a live process, or None."""
    try:
        rss_kib = threads = None
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss_kib = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    if rss_kib is None:  # a zombie
        return None
    return rss_kib / 1024.0, fds, threads


def tcp_states(port):
    """(ESTABLISHED, CLOSE_WAIT) server-side IPv4 connections on a local port, from /proc."""
    established = close_wait = 0
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if int(fields[1].rpartition(":")[2], 16) != port:
                    continue
                if fields[3] == "01":
                    established += 1
                elif fields[3] == "08":
                    close_wait += 1
    except (OSError, ValueError, IndexError, StopIteration):
        return None, None
    return established, close_wait


# --- raw HTTP/2 ---------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_TYPES = {0: "DATA", 1: "HEADERS", 3: "RST_STREAM", 4: "SETTINGS", 6: "PING", 7: "GOAWAY",
               8: "WINDOW_UPDATE"}
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
             6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
             11: "ENHANCE_YOUR_CALM"}
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) \
        + struct.pack(">I", stream & 0x7FFFFFFF) + payload


def settings_frame():
    return frame(4, 0, 0)


def hpack_integer(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(text):
    data = text if isinstance(text, bytes) else text.encode()
    return hpack_integer(len(data), 7) + data  # no Huffman coding


def hpack_literal(name, value, indexed=False):
    """A literal header field with a new name: incremental indexing (0x40) or not (0x00)."""
    return (b"\x40" if indexed else b"\x00") + hpack_string(name) + hpack_string(value)


def request_block(authority):
    fields = [(":method", "POST"), (":scheme", "http"),
              (":path", "/nuance.asr.v1.Recognizer/Recognize"), (":authority", authority),
              ("content-type", "application/grpc"), ("te", "trailers")]
    return b"".join(hpack_literal(n, v) for n, v in fields)


def grpc_message(payload, declared=None):
    return b"\x00" + struct.pack(">I", len(payload) if declared is None else declared) + payload


def describe_frames(data):
    """What the server sent: frame types in order of first appearance, errors named."""
    if data.startswith(b"HTTP/"):
        return [data.split(b"\r\n", 1)[0].decode(errors="replace")]
    seen = []
    offset = 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset:offset + 3], "big")
        kind = data[offset + 3]
        payload = data[offset + 9:offset + 9 + length]
        name = FRAME_TYPES.get(kind, f"type{kind}")
        if kind == 7 and len(payload) >= 8:
            name += "(" + H2_ERRORS.get(int.from_bytes(payload[4:8], "big"), "?") + ")"
        elif kind == 3 and len(payload) >= 4:
            name += "(" + H2_ERRORS.get(int.from_bytes(payload[0:4], "big"), "?") + ")"
        if name not in seen and kind not in (4, 8):  # SETTINGS and WINDOW_UPDATE: routine
            seen.append(name)
        offset += 9 + length
    return seen


# --- audio --------------------------------------------------------------------------------


def read_wav(path):
    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise SystemExit(f"soak: {path}: not 16-bit mono PCM")
        return wav.getframerate(), wav.readframes(wav.getnframes())


def write_repeated_wav(source, target, times):
    rate, pcm = read_wav(source)
    with wave.open(target, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm * times)


# --- the soak -----------------------------------------------------------------------------

COUNTERS = ("ok", "409", "cancel", "kill", "bad", "churn", "err")
# `[  12 s] active 50 · completed 1234 · failed 0 · …`, hark load's line on stderr each second.
LOAD_LIVE_LINE = re.compile(r"\] active \d+\D+completed (\d+)\D+failed (\d+)")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fmt_time(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Soak:
    def __init__(self, args):
        self.args = args
        self.engine = args.engine
        self.recognizers = args.recognizers
        self.interval = args.interval
        self.duration = args.minutes * 60.0
        self.warmup = 120.0 if self.duration >= 360 else self.duration / 3
        self.sessions = max(1, self.recognizers // 2 if self.engine == "dtmf"
                            else self.recognizers // 4)
        self.tmp = tempfile.mkdtemp(prefix="hark-soak-")
        self.log_path = os.path.join(self.tmp, "serve.log")
        self.log = ServerLog(self.log_path)
        self.port = None
        self.address = None
        self.server = None
        self.children = set()  # asyncio processes of load components
        self.running = False  # load components start new work while this holds
        self.stopping = None  # an asyncio.Event set when the load stops
        self.tasks = []
        self.interval_counts = collections.Counter()
        self.totals = collections.Counter()
        self.error_kinds = collections.Counter()
        self.bad_outcomes = collections.Counter()  # "case: what the server did" -> count
        self.other = collections.Counter()  # things worth a line in the verdict
        self.rows = []
        self.last_cpu = None  # (monotonic time, server CPU seconds) at the last row
        self.load_seconds = None  # from the load's start until the sessions drained
        self.load_started = None
        self.interrupted = False
        session_audio, audio, self.builtin = ENGINE_AUDIO[self.engine]
        self.session_args = ["--audio", os.path.join(SAMPLES, session_audio)] \
            if session_audio else []
        self.builtin_args = ["--builtin", self.builtin] if self.builtin else []
        self.check_wav = os.path.join(SAMPLES, audio)
        self.rate, self.pcm = read_wav(self.check_wav)
        self.long_wav = os.path.join(self.tmp, "long.wav")  # outlasts every kill delay
        write_repeated_wav(self.check_wav, self.long_wav,
                           max(2, int(MID_STREAM_S[1] * self.rate * 2 / len(self.pcm)) + 2))

    # -- counting --

    def count(self, name, amount=1):
        self.interval_counts[name] += amount
        self.totals[name] += amount

    def error(self, kind, amount=1):
        self.count("err", amount)
        if kind not in self.error_kinds and len(self.error_kinds) >= 40:
            kind = "(other)"
        self.error_kinds[kind] += amount

    async def spawn(self, *command, **kwargs):
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.DEVNULL, preexec_fn=_child_setup, **kwargs)
        self.children.add(process)
        return process

    # -- the server --

    def start_server(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        command = [self.args.hark, "serve", "--listen", self.address, "--engine", self.engine,
                   "--recognizers", str(self.recognizers),
                   "--statistics-interval", f"{self.interval:g}"]
        log = open(self.log_path, "ab")  # O_APPEND: the log can be truncated under the server
        self.server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=log, preexec_fn=_child_setup)
        log.close()
        print(f"soak: {' '.join(command[1:])} (pid {self.server.pid}, log {self.log_path})",
              flush=True)

    async def wait_listening(self):
        deadline = time.monotonic() + (300 if self.engine == "sphinx" else 60)
        while time.monotonic() < deadline:
            self.log.read()
            # hark serve listens while sphinx models load; calls are refused until Ready.
            if self.log.listening is not None and self.log.ready:
                return time.monotonic()
            if self.server.poll() is not None:
                break
            await asyncio.sleep(0.05)
        tail = open(self.log_path, errors="replace").read()[-2000:]
        raise SystemExit(f"soak: hark serve did not start listening:\n{tail}")

    def server_alive(self):
        return self.server is not None and self.server.poll() is None

    # -- 1. normal sessions --

    async def normal_sessions(self):
        """`hark load` runs, one after another. Sessions that ended well are counted as its live
        line (each second) reports them, then made exact from the run's JSON report."""
        report = os.path.join(self.tmp, "load.json")
        run_seconds = max(20.0, self.interval)
        while self.running:
            if os.path.exists(report):
                os.unlink(report)
            process = await self.spawn(
                self.args.hark, "load", "--plaintext", "--server", self.address,
                "--sessions", str(self.sessions), "--duration", f"{run_seconds:g}",
                "--json", report, *self.session_args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.count("connections")
            ok_so_far = 0
            messages = collections.deque(maxlen=3)  # its last lines that are not live lines
            async for raw in process.stderr:
                line = raw.decode("utf-8", "replace").strip()
                live = LOAD_LIVE_LINE.search(line)
                if live:
                    # completed − failed: sessions that ended with a status under 300.
                    ok = int(live.group(1)) - int(live.group(2))
                    if ok > ok_so_far:
                        self.count("ok", ok - ok_so_far)
                        ok_so_far = ok
                elif line:
                    messages.append(line)
            code = await process.wait()
            self.children.discard(process)  # if cancelled meanwhile, reap_children() kills it
            self.other["hark load runs"] += 1
            try:
                with open(report) as file:
                    counters = json.load(file)["counters"]
            except (OSError, ValueError, KeyError):
                if code not in (-signal.SIGKILL, -signal.SIGTERM):
                    last = messages[-1][:80] if messages else ""
                    self.error(f"hark load exit {code}: {last}")
                    await self.pause(RESTART_BACKOFF_S)
                continue
            statuses = counters.get("statuses", {})
            ok = statuses.get("200", 0) + statuses.get("204", 0)
            self.count("ok", max(0, ok - ok_so_far))
            for status, number in statuses.items():
                if status == "409":
                    self.count("409", number)
                elif status not in ("100", "200", "204"):
                    self.error(f"hark load status {status}", number)
            for name, number in counters.get("transport_errors", {}).items():
                self.error(f"hark load transport {name}", number)

    # -- grpcio helpers --

    def init_request(self):
        parameters = recognizer_pb2.RecognitionParameters(
            language="en-US",
            audio_format=recognizer_pb2.AudioFormat(
                pcm=recognizer_pb2.PCM(sample_rate_hz=self.rate)),
            utterance_detection_mode=recognizer_pb2.MULTIPLE)
        resources = [resource_pb2.RecognitionResource(builtin=self.builtin)] \
            if self.builtin else []
        return recognizer_pb2.RecognitionRequest(
            recognition_init_message=recognizer_pb2.RecognitionInitMessage(
                parameters=parameters, resources=resources))

    @staticmethod
    def status_of(response):
        if response is grpc.aio.EOF or response is None:
            return None
        if response.WhichOneof("response_union") == "status":
            return response.status.code
        return None

    # -- 2. 409 bursts --

    async def conflicts(self):
        while self.running:
            try:
                await self.burst(self.recognizers + BURST_EXTRA)
            except Exception as error:  # noqa: BLE001
                self.error(f"burst: {type(error).__name__}")
                await self.pause(RESTART_BACKOFF_S)
            await self.pause(BURST_EVERY_S)

    async def burst(self, streams):
        answered = 0
        release = asyncio.Event()
        init = self.init_request()
        self.count("connections")
        async with grpc.aio.insecure_channel(self.address, options=GRPC_OPTIONS) as channel:
            stub = recognizer_pb2_grpc.RecognizerStub(channel)

            async def one():
                nonlocal answered
                counted = False
                call = stub.Recognize(timeout=30)
                try:
                    await call.write(init)
                    code = self.status_of(await call.read())
                    answered += 1
                    counted = True
                    if answered == streams:
                        release.set()
                    if code == 409:
                        self.count("409")
                    elif code == 100:
                        # Hold the recognizer until every stream has its answer, then end it.
                        try:
                            await asyncio.wait_for(release.wait(), 5)
                        except asyncio.TimeoutError:
                            pass
                        await call.done_writing()
                        while await call.read() is not grpc.aio.EOF:
                            pass
                    else:
                        self.error(f"burst: first status {code}")
                except grpc.aio.AioRpcError as error:
                    self.error(f"burst: gRPC {error.code().name}")
                finally:
                    if not counted:
                        answered += 1
                        if answered == streams:
                            release.set()
                    call.cancel()

            results = await asyncio.gather(*(one() for _ in range(streams)),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    self.error(f"burst: {type(result).__name__}")

    # -- 3. cancels --

    async def pause(self, seconds):
        """Sleeps, but returns as soon as the load stops."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def repeat(self, every, concurrency, work):
        """Starts `work()` every `every` seconds while running, at most `concurrency` at once.

        When the load stops, the work under way finishes (each is bounded): a task cancelled
        inside a grpc.aio channel can leave that channel's connection open.
        """
        slots = asyncio.Semaphore(concurrency)
        pending = set()

        async def guarded():
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001  (counted; the component goes on)
                self.error(f"{work.__name__}: {type(error).__name__}")
            finally:
                slots.release()

        try:
            while self.running:
                await slots.acquire()
                if not self.running:
                    slots.release()
                    break
                task = asyncio.create_task(guarded())
                pending.add(task)
                task.add_done_callback(pending.discard)
                await self.pause(every)
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            for task in list(pending):
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel_one(self):
        delay = random.uniform(*MID_STREAM_S)
        frame_bytes = self.rate * 2 // 50  # 20 ms
        loop = asyncio.get_running_loop()
        self.count("connections")
        async with grpc.aio.insecure_channel(self.address, options=GRPC_OPTIONS) as channel:
            call = recognizer_pb2_grpc.RecognizerStub(channel).Recognize(timeout=30)
            started = loop.time()
            try:
                await call.write(self.init_request())
                code = self.status_of(await call.read())
                if code == 409:
                    self.count("409")
                    return
                if code != 100:
                    self.error(f"cancel: first status {code}")
                    return
                offset, sent = 0, 0
                while self.running and loop.time() - started < delay:
                    if offset >= len(self.pcm):
                        offset = 0
                    await call.write(recognizer_pb2.RecognitionRequest(
                        audio=self.pcm[offset:offset + frame_bytes]))
                    offset += frame_bytes
                    sent += 1
                    pause = started + sent * 0.02 - loop.time()
                    if pause > 0:
                        await asyncio.sleep(pause)
                call.cancel()
                self.count("cancel")
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    self.error(f"cancel: gRPC {error.code().name}")
            except asyncio.InvalidStateError:  # the call ended before the cancel
                self.other["cancel: the call ended first"] += 1
            finally:
                call.cancel()

    # -- 4. kills --

    async def kill_one(self):
        delay = random.uniform(*MID_STREAM_S)
        process = await self.spawn(self.args.hark, "recognize", "--plaintext", "--server", self.address,
                                   "--realtime", *self.builtin_args, self.long_wav,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.count("connections")
        try:
            try:
                code = await asyncio.wait_for(process.wait(), delay)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
                self.count("kill")
                return
            if code == 7:  # a 4xx: with the 409 bursts, most likely 409
                self.other["kill: hark recognize exit 7 (409) first"] += 1
            else:
                self.error(f"kill: hark recognize exit {code} before the kill")
        finally:
            if process.returncode is not None:  # otherwise reap_children() kills it
                self.children.discard(process)

    # -- 5. bad frames --

    def bad_cases(self):
        authority = self.address
        init = grpc_message(self.init_request().SerializeToString())
        audio = grpc_message(recognizer_pb2.RecognitionRequest(audio=self.pcm[:320])
                             .SerializeToString())
        start = PREFACE + settings_frame()
        headers = request_block(authority)

        def stream_with(*data_payloads, end=True):
            out = frame(1, END_HEADERS, 1, headers)
            for index, payload in enumerate(data_payloads):
                last = index == len(data_payloads) - 1
                out += frame(0, END_STREAM if (last and end) else 0, 1, payload)
            return start + out

        def garbage():
            return os.urandom(random.randint(64, 4096))

        def garbage_after_preface():
            return start + os.urandom(random.randint(64, 4096))

        def http1():
            return f"GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode()

        def truncated_grpc():  # the prefix promises 1000 bytes; 10 come, then END_STREAM
            return stream_with(grpc_message(b"\x1a\x08" + bytes(8), declared=1000))

        def malformed_protobuf():  # the init, then a message whose field 1 runs past its end
            return stream_with(init, grpc_message(b"\x0a\xff\xff\x03\x01\x02"))

        def audio_before_init():
            return stream_with(audio, end=False)

        def hpack_bomb():
            block = headers + hpack_literal("x-soak-bomb", "a" * BOMB_ENTRY_BYTES, indexed=True)
            block += b"\xbe" * BOMB_REFERENCES  # index 62: the newest dynamic-table entry
            return start + frame(1, END_HEADERS, 1, block)

        def rapid_reset():
            out = bytearray(start)
            for index in range(RAPID_RESET_STREAMS):
                stream = 2 * index + 1
                out += frame(1, END_HEADERS, stream, headers)
                out += frame(3, 0, stream, struct.pack(">I", 8))  # CANCEL
            return bytes(out)

        return [garbage, garbage_after_preface, http1, truncated_grpc, malformed_protobuf,
                audio_before_init, hpack_bomb, rapid_reset]

    async def bad_frames(self):
        cases = itertools.cycle(self.bad_cases())

        async def bad_one():
            case = next(cases)
            name = case.__name__.replace("_", " ")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 5)
            except (OSError, asyncio.TimeoutError) as error:
                self.error(f"bad frames: connect {type(error).__name__}")
                return
            received = bytearray()
            closed = False
            try:
                writer.write(case())
                await writer.drain()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + BAD_WAIT_S
                while len(received) < 1 << 20:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        chunk = await asyncio.wait_for(reader.read(65536), left)
                    except asyncio.TimeoutError:
                        break
                    if not chunk:
                        closed = True
                        break
                    received += chunk
            except (ConnectionError, OSError):
                closed = True
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
            self.count("bad")
            self.count("connections")
            frames = describe_frames(bytes(received)) if received else ["nothing"]
            frames = frames or ["SETTINGS only"]
            what = ", ".join(frames[:4]) + ("; server closed" if closed else "; we closed")
            self.bad_outcomes[f"{name}: {what}"[:120]] += 1

        bad_one.__name__ = "bad frames"
        await self.repeat(BAD_EVERY_S, BAD_CONCURRENCY, bad_one)

    # -- 6. connection churn --

    async def churn(self):
        kinds = itertools.cycle(("close", "reset", "preface", "settings"))

        async def churn_one():
            kind = next(kinds)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), 5)
            except (OSError, asyncio.TimeoutError) as error:
                self.error(f"churn: connect {type(error).__name__}")
                return
            try:
                if kind == "reset":  # close with RST instead of FIN
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif kind == "preface":
                    writer.write(PREFACE)
                    await writer.drain()
                elif kind == "settings":  # a short but complete HTTP/2 connection
                    writer.write(PREFACE + settings_frame())
                    await writer.drain()
                    await asyncio.wait_for(reader.read(65536), 1)
                    writer.write(frame(4, 0x1, 0))  # SETTINGS ACK
                    await writer.drain()
            except (ConnectionError, OSError, asyncio.TimeoutError) as error:
                self.error(f"churn {kind}: {type(error).__name__}")
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
            self.count("churn")
            self.count("connections")

        churn_one.__name__ = "churn"
        await self.repeat(1.0 / CHURN_PER_S, CHURN_CONCURRENCY, churn_one)

    # -- the load as a whole --

    def start_load(self):
        self.running = True
        self.stopping = asyncio.Event()
        self.load_started = time.monotonic()
        components = {
            "sessions": self.normal_sessions,
            "409": self.conflicts,
            "cancels": lambda: self.repeat(CANCEL_EVERY_S[self.engine], CANCEL_CONCURRENCY,
                                           self.cancel_one),
            "kills": lambda: self.repeat(KILL_EVERY_S[self.engine], KILL_CONCURRENCY,
                                         self.kill_one),
            "bad": self.bad_frames,
            "churn": self.churn,
        }
        self.tasks = [asyncio.create_task(self.restarting(name, components[name]))
                      for name in COMPONENTS if name not in self.args.skip]

    async def restarting(self, name, start):
        """Runs a component; one that ends or fails while the load runs starts again."""
        while self.running:
            try:
                await start()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001  (counted; the component starts again)
                self.error(f"{name}: {type(error).__name__}: {str(error)[:60]}")
            if self.running:
                self.other[f"restarted {name}"] += 1
                await self.pause(RESTART_BACKOFF_S)

    async def stop_load(self, gracefully=True):
        """Stops every component. Gracefully, the work under way ends by itself (the running
        `hark load` finishes its run; each other piece of work is bounded to seconds)."""
        self.running = False
        if self.stopping is not None:
            self.stopping.set()
        if gracefully and self.tasks:
            await asyncio.wait(self.tasks, timeout=max(10.0, self.interval) + 30)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.reap_children()

    async def reap_children(self):
        """SIGKILLs the load's processes still running and waits for them."""
        children = list(self.children)
        self.children.clear()
        for process in children:
            if process.returncode is None:
                try:
                    process.kill()
                except ProcessLookupError:
                    pass
        if children:
            await asyncio.wait([asyncio.ensure_future(p.wait()) for p in children], timeout=5)

    # -- rows --

    def take_row(self, phase):
        statistics = self.log.read()
        resources = process_resources(self.server.pid) if self.server_alive() else None
        now, cpu = time.monotonic(), cpu_seconds(self.server.pid)
        cpu_percent = None
        if cpu is not None and self.last_cpu is not None:
            cpu_percent = 100.0 * (cpu - self.last_cpu[1]) / max(1e-3, now - self.last_cpu[0])
        self.last_cpu = (now, cpu) if cpu is not None else None
        last = statistics[-1] if statistics else {}
        established, close_wait = tcp_states(self.port)
        row = {
            "t": now - self.load_started,
            "cpu": cpu_percent,
            "tcp": established,
            "close_wait": close_wait,
            "phase": phase,
            "rss": resources[0] if resources else None,
            "fds": resources[1] if resources else None,
            "threads": resources[2] if resources else None,
            "active": as_int(last.get("active")),
            "idle": as_int(last.get("recognizers_idle")),
            "busy": as_int(last.get("recognizers_busy")),
            "conns": as_int(last.get("connections")),
            "ended": sum(as_int(s.get("ended")) or 0 for s in statistics) if statistics else None,
            "statistics": bool(statistics),
        }
        for name in COUNTERS + ("connections",):
            row[name] = self.interval_counts[name]
        self.interval_counts.clear()
        self.rows.append(row)
        print(self.format_row(row), flush=True)
        self.write_markdown()
        return row

    HEADER = ("time", "RSS MiB", "fds", "thr", "cpu%", "tcp", "active", "idle", "busy", "conns",
              "ended") + COUNTERS

    @staticmethod
    def cells(row):
        def value(x, digits=None):
            if x is None:
                return "-"
            return f"{x:.{digits}f}" if digits is not None else str(x)
        time_cell = fmt_time(row["t"]) + ("*" if row["phase"] != "load" else "")
        return [time_cell, value(row["rss"], 1), value(row["fds"]), value(row["threads"]),
                value(row["cpu"], 0), value(row["tcp"]), value(row["active"]), value(row["idle"]), value(row["busy"]),
                value(row["conns"]), value(row["ended"])] + [str(row[n]) for n in COUNTERS]

    WIDTHS = (6, 8, 5, 4, 5, 4, 6, 5, 5, 6, 6, 6, 5, 6, 5, 5, 6, 5)

    def format_row(self, row):
        return "  ".join(c.rjust(w) for c, w in zip(self.cells(row), self.WIDTHS))

    def format_header(self):
        return "  ".join(c.rjust(w) for c, w in zip(self.HEADER, self.WIDTHS))

    def markdown_table(self):
        lines = ["| " + " | ".join(self.HEADER) + " |",
                 "|" + "|".join("---:" for _ in self.HEADER) + "|"]
        lines += ["| " + " | ".join(self.cells(r)) + " |" for r in self.rows]
        return lines

    def write_markdown(self, verdict=None):
        if not self.args.out:
            return
        skipped = f", without {','.join(self.args.skip)}" if self.args.skip else ""
        text = [f"# hark serve soak: {self.engine}, {self.recognizers} recognizers, "
                f"{self.args.minutes:g} min, rows every {self.interval:g} s{skipped}", ""]
        text += self.markdown_table()
        text += ["", "`*`: after the load stopped. cpu%: the server's CPU use (100 = one core). "
                 "tcp: established connections to the server's port (from /proc/net/tcp). "
                 "active…ended: from the server's Statistics line(s) of the interval (`-` when "
                 "absent). ok/409/cancel/kill/bad/churn/err: what the load components did in "
                 "the interval."]
        if verdict:
            text += ["", "## Verdict", "", "```"] + verdict + ["```"]
        temporary = self.args.out + ".tmp"
        with open(temporary, "w") as file:
            file.write("\n".join(text) + "\n")
        os.replace(temporary, self.args.out)

    # -- the run --

    async def run(self):
        self.start_server()
        listening = await self.wait_listening()
        parts = {
            "sessions": f"{self.sessions} hark load sessions",
            "409": f"409 bursts of {self.recognizers + BURST_EXTRA} streams every "
                   f"{BURST_EVERY_S:g} s",
            "cancels": f"a cancel every {CANCEL_EVERY_S[self.engine]:g} s",
            "kills": f"a kill every {KILL_EVERY_S[self.engine]:g} s",
            "bad": f"a bad-frame connection every {BAD_EVERY_S:g} s",
            "churn": f"{CHURN_PER_S} churned connections/s",
        }
        load = ", ".join(text for name, text in parts.items() if name not in self.args.skip)
        print(f"soak: {self.engine} engine, {self.recognizers} recognizers; load: "
              f"{load or 'none'}; {self.args.minutes:g} min, a row every {self.interval:g} s",
              flush=True)
        baseline = process_resources(self.server.pid)
        if baseline:
            print(f"soak: before the load: RSS {baseline[0]:.1f} MiB, {baseline[1]} fds, "
                  f"{baseline[2]} threads", flush=True)
        self.baseline = baseline
        self.last_cpu = (time.monotonic(), cpu_seconds(self.server.pid))
        # The server logs Statistics every interval from `listening`; rows fall half-way between.
        await asyncio.sleep(max(0.0, listening + self.interval / 2 - time.monotonic()))
        print(self.format_header(), flush=True)
        self.start_load()
        tick = self.load_started
        self.check = None
        self.pool = None
        died_during_load = False
        # Load phase.
        while True:
            tick += self.interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            self.take_row("load")
            if not self.server_alive():
                died_during_load = True
                break
            if tick - self.load_started >= self.duration - 1e-6:
                break
        # Stop the load (hark load finishes its current run), with rows going on meanwhile.
        stopping = asyncio.create_task(self.stop_load(gracefully=not died_during_load))
        drained = False
        drain_limit = time.monotonic() + max(10.0, self.interval) + 60
        while self.server_alive() and not drained:
            tick += self.interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            row = self.take_row("after")
            if not stopping.done():
                continue
            quiet = not row["statistics"]  # nothing changed and nothing active at its tick
            drained = quiet or (row["active"] == 0 and row["busy"] in (None, 0))
            if time.monotonic() > drain_limit:
                break
        await stopping
        self.load_seconds = time.monotonic() - self.load_started
        # A normal recognition, then the pool read from a Statistics line logged after it.
        if self.server_alive():
            self.check = await self.check_recognition()
            check_limit = 4
            while self.server_alive() and check_limit > 0:
                check_limit -= 1
                tick += self.interval
                await asyncio.sleep(max(0.0, tick - time.monotonic()))
                row = self.take_row("after")
                if row["statistics"]:
                    idle = row["active"] == 0 and row["busy"] in (None, 0)
                    self.pool = (idle, row)
                    if idle:
                        break
        return self.verdict()

    async def check_recognition(self):
        started = time.monotonic()
        process = await self.spawn(self.args.hark, "recognize", "--plaintext", "--server", self.address,
                                   "--timeout", "30", *self.builtin_args, self.check_wav,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(), 40)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            return False, "no answer within 40 s"
        finally:
            if process.returncode is not None:
                self.children.discard(process)
        text = (out or b"").decode(errors="replace").strip().replace("\n", " / ")
        problem = (err or b"").decode(errors="replace").strip().splitlines()
        elapsed = time.monotonic() - started
        if process.returncode == 0:
            return True, f"exit 0 in {elapsed:.2f} s, transcript {text!r}"
        return False, f"exit {process.returncode}: {problem[-1] if problem else text}"

    # -- the verdict --

    def verdict(self, interrupted=False):
        load_rows = [r for r in self.rows if r["phase"] == "load" and r["rss"] is not None]
        after_rows = [r for r in self.rows if r["phase"] != "load" and r["rss"] is not None]
        lines = [f"engine {self.engine}, {self.recognizers} recognizers, "
                 f"{self.args.minutes:g} min of load, rows every {self.interval:g} s"
                 + (f", without {','.join(self.args.skip)}" if self.args.skip else "")]
        failures = []
        if self.baseline:
            lines.append(f"before the load:      RSS {self.baseline[0]:.1f} MiB, "
                         f"{self.baseline[1]} fds, {self.baseline[2]} threads")
        warm = next((r for r in load_rows if r["t"] >= self.warmup - 1e-6), None)
        if warm:
            lines.append(f"RSS after warm-up:    {warm['rss']:.1f} MiB at {fmt_time(warm['t'])}")
        if load_rows:
            end = load_rows[-1]
            lines.append(f"RSS at the load's end: {end['rss']:.1f} MiB at {fmt_time(end['t'])}"
                         + (f" ({end['rss'] - warm['rss']:+.1f} MiB since warm-up)"
                            if warm else ""))
        if after_rows:
            lines.append(f"RSS after the load:   {after_rows[-1]['rss']:.1f} MiB")
        half = [r for r in load_rows if r["t"] >= self.duration / 2 - 1e-6]
        if len(half) >= 2:
            xs = [r["t"] for r in half]
            ys = [r["rss"] for r in half]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
            connections = sum(r["connections"] for r in half[1:])
            per = ""
            if connections:
                growth = slope * (half[-1]["t"] - half[0]["t"]) * 1024 * 1024
                per = (f"; ~{growth / connections / 1024:.1f} KiB per TCP connection the load "
                       f"opened meanwhile ({connections})")
            lines.append(f"RSS slope, last half: {slope * 600:+.1f} MiB per 10 minutes "
                         f"(least squares over {fmt_time(xs[0])}-{fmt_time(xs[-1])}{per})")
        cpu = [r["cpu"] for r in load_rows if r["cpu"] is not None]
        if cpu and self.load_seconds:
            own = os.times()
            own = own.user + own.system + own.children_user + own.children_system
            lines.append(f"CPU during the load:  server {sum(cpu) / len(cpu):.0f}% of a core; "
                         f"the soak itself and its clients {100 * own / self.load_seconds:.0f}%")
        fds = [r["fds"] for r in self.rows if r["fds"] is not None]
        threads = [r["threads"] for r in self.rows if r["threads"] is not None]
        if fds:
            lines.append(f"fds:                  max {max(fds)}, last {fds[-1]}")
        tcp = [r["tcp"] for r in self.rows if r["tcp"] is not None]
        close_wait = [r["close_wait"] for r in self.rows if r["close_wait"] is not None]
        if tcp:
            lines.append(f"TCP on the port:      max {max(tcp)} established, last {tcp[-1]}; "
                         f"max {max(close_wait or [0])} in CLOSE_WAIT")
        if threads:
            lines.append(f"threads:              max {max(threads)}, last {threads[-1]}")
        alive = self.server_alive()
        if alive:
            lines.append("server:               alive")
        else:
            code = self.server.poll()
            lines.append(f"server:               DEAD (exit status {code})")
            failures.append("the server died")
        if self.check is None:
            if alive:
                failures.append("no normal recognition was tried")
        else:
            ok, what = self.check
            lines.append(f"normal recognition:   {'answered' if ok else 'FAILED'}: {what}")
            if not ok:
                failures.append("the server did not answer a normal recognition")
        if self.pool is None and alive:
            lines.append("pool after the load:  UNKNOWN (no Statistics line after the check)")
            if alive:
                failures.append("no Statistics line showed the pool after the load")
        else:
            idle, row = self.pool
            state = (f"active={row['active']} recognizers_busy="
                     f"{'-' if row['busy'] is None else row['busy']} recognizers_idle="
                     f"{'-' if row['idle'] is None else row['idle']} connections="
                     f"{'-' if row['conns'] is None else row['conns']}")
            lines.append(f"pool after the load:  {'all idle' if idle else 'NOT IDLE'} ({state})")
            if not idle:
                failures.append("the pool did not return to idle")
        lines.append("load totals:          " + ", ".join(
            f"{name} {self.totals[name]}" for name in COUNTERS)
            + f" ({self.other['hark load runs']} hark load runs)")
        if self.error_kinds:
            lines.append("client-side errors:   " + "; ".join(
                f"{kind} x{n}" for kind, n in self.error_kinds.most_common(8)))
        extra = {k: v for k, v in self.other.items() if v and k != "hark load runs"}
        if extra:
            lines.append("also:                 " + "; ".join(f"{k} x{v}" for k, v in extra.items()))
        if self.log.warnings:
            lines.append("server log warnings:  " + "; ".join(
                f"{kind} x{n}" for kind, n in self.log.warnings.most_common(6)))
        if self.log.truncations:
            lines.append(f"server log:           truncated {self.log.truncations} times "
                         f"(over {LOG_LIMIT_BYTES >> 20} MiB)")
        if self.bad_outcomes:
            lines.append("bad frames (what the server did, x times):")
            by_case = collections.defaultdict(list)
            for key, n in self.bad_outcomes.most_common():
                case, _, what = key.partition(": ")
                by_case[case].append(f"{what} x{n}")
            for case, outcomes in by_case.items():
                lines.append(f"  {case}: " + "; ".join(outcomes[:3]))
        if interrupted:
            lines.append("RESULT: INTERRUPTED")
        else:
            lines.append("RESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
        return lines, not failures

    def print_report(self, verdict_lines):
        print("\n" + self.format_header())
        for row in self.rows:
            print(self.format_row(row))
        print("(* after the load stopped; cpu%: the server's, 100 = one core; tcp: established "
              "connections to its port; active..ended: from its Statistics lines, - when "
              "absent)\n")
        for line in verdict_lines:
            print(line)
        sys.stdout.flush()
        self.write_markdown(verdict_lines)

    def stop_server(self):
        if self.server is None or self.server.poll() is not None:
            return
        started = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        try:
            code = self.server.wait(15)
            print(f"soak: hark serve exited with status {code} {time.monotonic() - started:.1f} s "
                  "after SIGTERM", flush=True)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
            print("soak: hark serve did not stop within 15 s of SIGTERM: killed", flush=True)


async def main_async(soak):
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def interrupt(signal_name):
        if not soak.interrupted:
            soak.interrupted = True
            print(f"\nsoak: {signal_name}: stopping", file=sys.stderr, flush=True)
            main_task.cancel()

    loop.add_signal_handler(signal.SIGINT, interrupt, "SIGINT")
    loop.add_signal_handler(signal.SIGTERM, interrupt, "SIGTERM")
    try:
        return await soak.run()
    except asyncio.CancelledError:
        return None
    finally:
        soak.running = False
        for task in soak.tasks:
            task.cancel()
        await asyncio.gather(*soak.tasks, return_exceptions=True)
        await soak.reap_children()


def main():
    args = main_usage(sys.argv[1:])
    if args.hark is None:
        print("soak: give --hark PATH (tools/soak builds it and passes it)", file=sys.stderr)
        return 64
    soak = Soak(args)
    passed = False
    try:
        result = asyncio.run(main_async(soak))
        if result is None:  # interrupted
            if soak.rows:
                verdict, _ = soak.verdict(interrupted=True)
                soak.print_report(verdict)
            return 130
        verdict, passed = result
        soak.print_report(verdict)
        return 0 if passed else 1
    finally:
        soak.stop_server()
        soak.log.read()
        if passed:
            shutil.rmtree(soak.tmp, ignore_errors=True)
        else:
            print(f"soak: the server's log and the load's files are in {soak.tmp}",
                  file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
