"""Python protobuf (upb) on the messages of tools/bench-codec: ns per decode and per encode.

    .venv/bin/python tools/bench_codec_upb.py MESSAGES-DIR [FILTER] > upb.json

MESSAGES-DIR is what `CodecBenchmark --write-messages DIR` writes: `index.tsv` (one line per
message: key, fully qualified message type, display name) and `KEY.bin` (its encoding by Hark).
FILTER, as CodecBenchmark's, keeps one message (its key, or part of its name). tools/bench-codec
runs this in turns with CodecBenchmark and prints the table; the JSON is not meant to be read.

What is timed, for each message, with timeit's loop (the garbage collector off):
  decode: `Type.FromString(data)` and dropping the result, so the upb arena is freed, as Hark's
          decode drops its value and libprotobuf-c's frees the unpacked message;
  encode: `message.SerializeToString()`, which returns a new `bytes` object.
Each of these is a Python call around upb's C code, so each figure includes a per-call overhead
that Hark and libprotobuf-c do not pay: the loop, the method lookup and call, and the Python
wrapper of the result (a message object, or a bytes object). It is measured the same way on an
empty message of the same type (`Type.FromString(b"")`, and `SerializeToString()` of an empty
message), in turns with the message's own loops, and reported beside the raw figures; raw
minus overhead is upb's C work, a fair comparison where that work dominates (the init and the
5 x 10 result).

Before timing, each message is checked to decode to exactly what Hark encoded: no field lands in
unknown fields (so the generated classes know every field Hark wrote), and the deterministic
re-encoding is byte for byte Hark's encoding (so every value decoded equal).

Prints one JSON object on stdout: for each message, medians in ns over ROUNDS rounds in which
its four loops take turns, like CodecBenchmark's.
"""

import json
import os
import statistics
import sys
import timeit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "interop"))
import stubs  # noqa: E402,F401  (generates the Python classes of proto/ and puts them on sys.path)

import google.protobuf  # noqa: E402
from google.protobuf import unknown_fields  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402
from nuance.asr.v1 import recognizer_pb2  # noqa: E402

ROUNDS = 11
# Each timed loop takes about this long, as CodecBenchmark's do.
TARGET_SECONDS = 0.04


def message_class(full_name):
    package, _, name = full_name.rpartition(".")
    if package != "nuance.asr.v1" or not hasattr(recognizer_pb2, name):
        raise SystemExit(f"bench_codec_upb: unknown message type {full_name}")
    return getattr(recognizer_pb2, name)


def unknown_field_paths(message, path=""):
    """Paths of the (sub)messages of `message` that hold unknown fields."""
    found = [path or "(top)"] if len(unknown_fields.UnknownFieldSet(message)) else []
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        values = value if field.is_repeated else [value]
        for index, element in enumerate(values):
            found += unknown_field_paths(element, f"{path}.{field.name}[{index}]".lstrip("."))
    return found


def verify(key, cls, data):
    message = cls.FromString(data)
    unknown = unknown_field_paths(message)
    if unknown:
        raise SystemExit(f"bench_codec_upb: {key}: unknown fields in {', '.join(unknown)}")
    again = message.SerializeToString(deterministic=True)
    if again != data:
        raise SystemExit(
            f"bench_codec_upb: {key}: upb re-encodes {len(again)} bytes that differ from "
            f"Hark's {len(data)}"
        )
    return message


def calibrated(timer):
    """The number of loop iterations that take about TARGET_SECONDS."""
    number = 1000
    while True:
        if timer.timeit(number) > TARGET_SECONDS / 4:
            return number * 4
        number *= 4


def measure_interleaved(timers):
    """Median ns per iteration of each timer over ROUNDS rounds, the timers taking turns."""
    numbers = [calibrated(t) for t in timers]
    samples = [[] for _ in timers]
    for _ in range(ROUNDS):
        for index, (timer, number) in enumerate(zip(timers, numbers)):
            samples[index].append(timer.timeit(number) / number * 1e9)
    return [sorted(s)[ROUNDS // 2] for s in samples]


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: bench_codec_upb.py MESSAGES-DIR [FILTER]")
    directory = sys.argv[1]
    # As CodecBenchmark's filter: a message's key, or part of its name.
    wanted = sys.argv[2] if len(sys.argv) == 3 else None
    implementation = api_implementation.Type()
    print(
        f"bench_codec_upb: protobuf {google.protobuf.__version__}, implementation {implementation}",
        file=sys.stderr,
    )
    if implementation != "upb":
        raise SystemExit(f"bench_codec_upb: expected the upb implementation, got {implementation}")

    cases = []
    with open(os.path.join(directory, "index.tsv")) as index:
        for line in index:
            key, full_name, name = line.rstrip("\n").split("\t")
            if wanted is not None and wanted != key and wanted not in name:
                continue
            with open(os.path.join(directory, f"{key}.bin"), "rb") as f:
                data = f.read()
            cls = message_class(full_name)
            cases.append((key, full_name, cls, data, verify(key, cls, data)))

    # Each message's loops and those of the overhead (the same calls on an empty message of the
    # same type) take turns, so that the overhead is measured in the same stretch of time.
    results = {}
    for key, full_name, cls, data, message in cases:
        empty = cls()
        # Attribute lookups are hoisted into globals, as a tight loop in real code would do.
        decode, decode_overhead, encode, encode_overhead = measure_interleaved(
            [
                timeit.Timer("FromString(data)", globals={"FromString": cls.FromString, "data": data}),
                timeit.Timer("FromString(b'')", globals={"FromString": cls.FromString}),
                timeit.Timer("serialize()", globals={"serialize": message.SerializeToString}),
                timeit.Timer("serialize()", globals={"serialize": empty.SerializeToString}),
            ]
        )
        results[key] = {
            "type": full_name,
            "bytes": len(data),
            "decode": decode,
            "encode": encode,
            "decode_overhead": decode_overhead,
            "encode_overhead": encode_overhead,
        }
    # The overhead of each type, for the summary: the median over its messages.
    overhead = {}
    for full_name in sorted({case[1] for case in cases}):
        rows = [r for r in results.values() if r["type"] == full_name]
        overhead[full_name] = {
            "decode": statistics.median(r["decode_overhead"] for r in rows),
            "encode": statistics.median(r["encode_overhead"] for r in rows),
        }
    # A bare loop, for scale: what timeit's loop itself costs per iteration.
    (loop,) = measure_interleaved([timeit.Timer("pass")])

    json.dump(
        {
            "implementation": implementation,
            "protobuf_version": google.protobuf.__version__,
            "python_version": sys.version.split()[0],
            "loop_ns": loop,
            "overhead": overhead,
            "messages": results,
        },
        sys.stdout,
        indent=1,
    )
    print()


if __name__ == "__main__":
    main()
