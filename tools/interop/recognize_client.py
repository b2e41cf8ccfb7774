#!/usr/bin/env python3
"""A grpcio client of nuance.asr.v1.Recognizer/Recognize that runs one scenario against a server.

    python recognize_client.py --target HOST:PORT --scenario NAME

Made for a recognizer running the `dtmf` engine: the audio of each scenario is in-band DTMF key
tones (the "speech") and digital silence. Prints one JSON object on stdout (see README.md for
the contract) and exits 0 if the scenario's expectations held, 1 if not, 2 on a usage error.
"""

import argparse
import array
import json
import math
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in tools/interop (it is not git-ignored)
import stubs  # noqa: E402,F401  (generates the stubs and puts them on sys.path)
sys.dont_write_bytecode = False

import grpc  # noqa: E402
from nuance.asr.v1 import recognizer_pb2, recognizer_pb2_grpc, result_pb2  # noqa: E402

# Every call gets this deadline, so no scenario hangs.
CALL_TIMEOUT = 10.0

SAMPLE_RATE = 8000
MESSAGE_BYTES = 320  # 20 ms of 8 kHz L16
KEY_MS = 100  # one key tone
GAP_MS = 100  # digital silence between the keys of a sequence
TONE_AMPLITUDE = 0.316 * 32767  # each of the two sines of a key: -10 dBFS

DTMF_ROWS = (697, 770, 852, 941)
DTMF_COLUMNS = (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")

# The status message Hark sends with each code (DESIGN.md, status table).
STATUS_MESSAGES = {
    100: "Continue", 200: "Success", 204: "No result", 400: "Bad request", 401: "Unauthorized",
    403: "Forbidden", 404: "No speech", 408: "Audio timeout", 409: "Conflict",
    410: "Not recognizing", 413: "Too much speech", 429: "Too many requests",
    500: "Internal server error", 502: "Resource error", 512: "Shutdown",
}
CONTINUE_DETAILS = "recognition started on audio/l16;rate=8000 stream"
# first_audio_to_start_of_speech_ms is the speech onset "within 100 ms" (DESIGN.md, rule 5).
ONSET_TOLERANCE_MS = 100

RESULT_TYPES = {
    result_pb2.FINAL: "FINAL",
    result_pb2.PARTIAL: "PARTIAL",
    result_pb2.IMMUTABLE_PARTIAL: "IMMUTABLE_PARTIAL",
}


class Failure(Exception):
    """An expectation of the scenario did not hold."""


# --- audio ----------------------------------------------------------------------------------


def _samples(ms):
    return SAMPLE_RATE * ms // 1000


def silence(ms):
    return array.array("h", bytes(2 * _samples(ms)))


def key_tone(key, ms=KEY_MS):
    for row, keys in enumerate(DTMF_KEYS):
        if key in keys:
            low, high = DTMF_ROWS[row], DTMF_COLUMNS[keys.index(key)]
            break
    else:
        raise ValueError(f"not a DTMF key: {key!r}")
    step_low = 2 * math.pi * low / SAMPLE_RATE
    step_high = 2 * math.pi * high / SAMPLE_RATE
    return array.array("h", (
        int(round(TONE_AMPLITUDE * (math.sin(step_low * n) + math.sin(step_high * n))))
        for n in range(_samples(ms))))


class Audio:
    """An audio stream built piece by piece; remembers where each utterance starts (its onset)."""

    def __init__(self):
        self.samples = array.array("h")
        self.onsets_ms = []

    def silence(self, ms):
        self.samples.extend(silence(ms))
        return self

    def keys(self, keys, key_ms=KEY_MS):
        """A sequence of key tones (one utterance), GAP_MS of silence between them."""
        self.onsets_ms.append(len(self.samples) * 1000 // SAMPLE_RATE)
        for index, key in enumerate(keys):
            if index:
                self.samples.extend(silence(GAP_MS))
            self.samples.extend(key_tone(key, key_ms))
        return self

    def messages(self):
        """The audio as RecognitionRequests of MESSAGE_BYTES (20 ms), little-endian L16."""
        data = array.array("h", self.samples)
        if sys.byteorder != "little":
            data.byteswap()
        data = data.tobytes()
        return [recognizer_pb2.RecognitionRequest(audio=data[i:i + MESSAGE_BYTES])
                for i in range(0, len(data), MESSAGE_BYTES)]


# --- requests -------------------------------------------------------------------------------


def init_request(mode, language="en-US", **parameters):
    params = recognizer_pb2.RecognitionParameters(
        audio_format=recognizer_pb2.AudioFormat(pcm=recognizer_pb2.PCM(sample_rate_hz=SAMPLE_RATE)),
        utterance_detection_mode=mode,
        **parameters)
    if language is not None:
        params.language = language
    return recognizer_pb2.RecognitionRequest(
        recognition_init_message=recognizer_pb2.RecognitionInitMessage(parameters=params))


class Plan:
    """What a scenario sends and what it expects to see."""

    def __init__(self, requests, summary, hold_open=False, onsets_ms=(), continue_details=True,
                 details_contains=None):
        self.requests = requests
        self.summary = summary
        # Keep the request stream open after the last request until the call ends (instead of
        # half-closing at once), so that the server answers the requests, not the half-close.
        self.hold_open = hold_open
        self.onsets_ms = list(onsets_ms)
        self.continue_details = continue_details  # a 100 is expected first: check its details
        self.details_contains = details_contains  # (code, text) the details of a status contain


def plan_single():
    audio = Audio().silence(300).keys("123").silence(800)
    return Plan([init_request(recognizer_pb2.SINGLE)] + audio.messages(),
                ["100", "sos", "final:123", "200"], onsets_ms=audio.onsets_ms)


def plan_multiple():
    audio = Audio().silence(300).keys("12").silence(1000).keys("34").silence(800)
    return Plan([init_request(recognizer_pb2.MULTIPLE)] + audio.messages(),
                ["100", "sos", "final:12", "sos", "final:34", "200"], onsets_ms=audio.onsets_ms)


def plan_no_result():
    audio = Audio().silence(1000)
    return Plan([init_request(recognizer_pb2.MULTIPLE)] + audio.messages(), ["100", "204"])


def plan_no_speech():
    audio = Audio().silence(2000)
    return Plan([init_request(recognizer_pb2.MULTIPLE, no_input_timeout_ms=500)]
                + audio.messages(), ["100", "404"])


def plan_too_much_speech():
    audio = Audio().silence(300).keys("5", key_ms=1500).silence(800)
    return Plan([init_request(recognizer_pb2.MULTIPLE, recognition_timeout_ms=300)]
                + audio.messages(), ["100", "sos", "final:5", "413"], onsets_ms=audio.onsets_ms)


def plan_not_recognizing():
    start_timers = recognizer_pb2.RecognitionRequest(control_message=recognizer_pb2.ControlMessage(
        start_timers_message=recognizer_pb2.StartTimersControlMessage()))
    return Plan([start_timers], ["410"], hold_open=True, continue_details=False)


def plan_bad_request():
    return Plan([init_request(recognizer_pb2.SINGLE, language=None)], ["400"], hold_open=True,
                continue_details=False, details_contains=(400, "language"))


SCENARIOS = {
    "single": plan_single,
    "multiple": plan_multiple,
    "no-result": plan_no_result,
    "no-speech": plan_no_speech,
    "too-much-speech": plan_too_much_speech,
    "not-recognizing": plan_not_recognizing,
    "bad-request": plan_bad_request,
}


# --- responses ------------------------------------------------------------------------------


def describe(response):
    """A response as a JSON object, and its summary item."""
    kind = response.WhichOneof("response_union")
    if kind == "status":
        status = response.status
        entry = {"status": status.code, "message": status.message, "details": status.details}
        item = str(status.code)
    elif kind == "start_of_speech":
        entry = {"start_of_speech": response.start_of_speech.first_audio_to_start_of_speech_ms}
        item = "sos"
    elif kind == "result":
        result = response.result
        type_name = RESULT_TYPES.get(result.result_type, str(result.result_type))
        described = {"type": type_name, "text": None, "rejected": None,
                     "abs_start_ms": result.abs_start_ms, "abs_end_ms": result.abs_end_ms,
                     "words": []}
        if result.hypotheses:
            first = result.hypotheses[0]
            described["text"] = first.formatted_text
            described["rejected"] = first.rejected
            described["words"] = [[w.text, w.start_ms, w.end_ms] for w in first.words]
            text = first.formatted_text + (" (rejected)" if first.rejected else "")
        else:
            text = "(no hypothesis)"
        entry = {"result": described}
        item = ("final:" if result.result_type == result_pb2.FINAL else "partial:") + text
    else:
        entry = {"empty": True}
        item = "empty"
    if response.cookies:
        entry["cookies"] = dict(response.cookies)
    return entry, item


def check(plan, result, entries):
    summary = result["summary"]
    if result["grpc_status"] != "OK":
        raise Failure(f"the call ended with gRPC status {result['grpc_status']} "
                      f"({result['grpc_details']!r}), expected OK; summary {summary}")
    # Nothing may follow a terminal status (any status but 100).
    for index, entry in enumerate(entries):
        if "status" in entry and entry["status"] != 100 and index != len(entries) - 1:
            raise Failure(f"{len(entries) - 1 - index} responses after the terminal status "
                          f"{entry['status']}: summary {summary}")
    if not entries or "status" not in entries[-1] or entries[-1]["status"] == 100:
        raise Failure(f"the response stream ended without a terminal status: summary {summary}")
    if summary != plan.summary:
        raise Failure(f"expected summary {plan.summary}, got {summary}")
    for entry in entries:
        if "status" in entry:
            expected = STATUS_MESSAGES.get(entry["status"])
            if expected is not None and entry["message"] != expected:
                raise Failure(f"status {entry['status']} has message {entry['message']!r}, "
                              f"expected {expected!r}")
    if plan.continue_details and entries[0].get("details") != CONTINUE_DETAILS:
        raise Failure(f"the 100 has details {entries[0].get('details')!r}, "
                      f"expected {CONTINUE_DETAILS!r}")
    if plan.details_contains is not None:
        code, text = plan.details_contains
        details = [e["details"] for e in entries if e.get("status") == code]
        if not any(text in d for d in details):
            raise Failure(f"the details of status {code} ({details}) do not mention {text!r}")
    sos = [e["start_of_speech"] for e in entries if "start_of_speech" in e]
    for got, onset in zip(sos, plan.onsets_ms):
        if abs(got - onset) > ONSET_TOLERANCE_MS:
            raise Failure(f"start_of_speech at {got} ms, but the speech starts at {onset} ms "
                          f"(tolerance {ONSET_TOLERANCE_MS} ms): summary {summary}")


# --- the call -------------------------------------------------------------------------------


def run(target, scenario, result):
    plan = SCENARIOS[scenario]()
    done = threading.Event()

    def requests():
        # Runs on grpcio's request-consuming thread: the messages as fast as flow control allows,
        # stopping early once the call has ended; then the end of the iterator half-closes.
        for request in plan.requests:
            if done.is_set():
                return
            yield request
        if plan.hold_open:
            done.wait(CALL_TIMEOUT + 1.0)

    entries = result["responses"]
    summary = result["summary"]
    options = [("grpc.enable_retries", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = recognizer_pb2_grpc.RecognizerStub(channel)
        call = stub.Recognize(requests(), timeout=CALL_TIMEOUT)
        call.add_done_callback(lambda _call: done.set())
        try:
            for response in call:
                entry, item = describe(response)
                entries.append(entry)
                summary.append(item)
        except grpc.RpcError:
            pass  # the call's code and details say how it ended
        finally:
            done.set()
        code = call.code()
        result["grpc_status"] = code.name if code is not None else "UNKNOWN"
        result["grpc_details"] = call.details() or ""
    check(plan, result, entries)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the recognizer")
    parser.add_argument("--scenario", required=True, choices=list(SCENARIOS))
    args = parser.parse_args()

    result = {
        "scenario": args.scenario,
        "ok": False,
        "failure": None,
        "grpc_status": "NONE",  # stays NONE only if no call was made
        "grpc_details": "",
        "summary": [],
        "responses": [],
    }
    started = time.monotonic()
    try:
        run(args.target, args.scenario, result)
        result["ok"] = True
    except Failure as error:
        result["failure"] = str(error)
    except Exception as error:  # noqa: BLE001  (reported, not raised: one JSON line regardless)
        result["failure"] = f"{type(error).__name__}: {error}"
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    print(json.dumps(result, ensure_ascii=True), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
