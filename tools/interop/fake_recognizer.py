#!/usr/bin/env python3
"""A tiny grpcio server of nuance.asr.v1.Recognizer that recognizes DTMF keys: for self-checks.

    python fake_recognizer.py [--host 127.0.0.1] [--port 0] [--fault NAME]

Only for checking recognize_client.py without a Hark server: it follows DESIGN.md's rules for
Recognize simply (L16 PCM only, a plain energy threshold for speech, Goertzel filters for the
keys, no idle timeout, no cookies) and is no reference of anything. Prints `LISTENING <port>` as
its first stdout line once it accepts connections, then serves until its stdin reaches EOF or it
gets SIGTERM / SIGINT, and exits 0. Diagnostics go to stderr.

--fault makes it misbehave, to check that the client notices: `wrong-text` (the transcript gets
an extra "9"), `after-status` (a start-of-speech after the terminal status), `grpc-error` (the
RPC ends with gRPC INTERNAL after the in-band status).
"""

import argparse
import array
import math
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
from nuance.asr.v1 import recognizer_pb2, recognizer_pb2_grpc, result_pb2  # noqa: E402

MAX_WORKERS = 64
SPEECH_DBFS = -40.0  # a 10 ms frame louder than this is speech
DTMF_ROWS = (697, 770, 852, 941)
DTMF_COLUMNS = (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")
MEDIA_TYPES = {8000: "audio/l16;rate=8000", 16000: "audio/l16;rate=16000"}


def _log(message):
    print(f"fake_recognizer: {message}", file=sys.stderr, flush=True)


def status(code, message, details=""):
    return recognizer_pb2.RecognitionResponse(
        status=recognizer_pb2.Status(code=code, message=message, details=details))


class Ended(Exception):
    """The recognition ended with a terminal status (already queued)."""


def goertzel_power(samples, frequency, rate):
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coefficient * s1 * s2


def detect_key(samples, rate):
    """The DTMF key of a tone, or None: the strongest row and column, each holding much of the
    tone's energy."""
    samples = samples[:rate // 5]  # 200 ms is plenty
    energy = sum(x * x for x in samples)
    if not samples or energy == 0:
        return None
    scale = 2.0 / (len(samples) * energy)  # a pure sine of the frequency gives 1, two give 0.5
    rows = [goertzel_power(samples, f, rate) * scale for f in DTMF_ROWS]
    columns = [goertzel_power(samples, f, rate) * scale for f in DTMF_COLUMNS]
    row, column = rows.index(max(rows)), columns.index(max(columns))
    if rows[row] < 0.2 or columns[column] < 0.2:
        return None
    return DTMF_KEYS[row][column]


class Recognition:
    """One recognition after its init: endpointing, timers and DTMF keys, by sample counts."""

    def __init__(self, params, fault):
        self.rate = params.audio_format.pcm.sample_rate_hz
        self.mode = params.utterance_detection_mode
        self.result_type = params.result_type
        self.fault = fault
        self.frame = self.rate // 100
        self.end_silence = self.samples(params.utterance_end_silence_ms or 500)
        self.no_input = self.samples(params.no_input_timeout_ms)
        self.too_long = self.samples(params.recognition_timeout_ms)
        self.timers_running = not params.recognition_flags.stall_timers
        self.out = []  # responses to send
        self.pending = array.array("h")  # samples of an unfinished frame
        self.position = 0  # samples seen (whole frames)
        self.utterances = 0
        self.in_speech = False
        self.onset = 0
        self.last_speech_end = 0
        self.silence_run = 0
        self.no_input_run = 0
        self.tone = array.array("h")  # samples of the key tone under way
        self.tone_start = 0
        self.words = []  # (key, start sample, end sample) of the utterance

    def samples(self, ms):
        return self.rate * ms // 1000

    def ms(self, samples):
        return samples * 1000 // self.rate

    def end(self, code, message, details=""):
        self.out.append(status(code, message, details))
        raise Ended

    def start_timers(self):
        if not self.timers_running:
            self.timers_running = True
            self.no_input_run = 0
            self.out.append(status(100, "Continue", "timers started"))

    def audio(self, data):
        samples = array.array("h")
        samples.frombytes(data[:len(data) // 2 * 2])
        if sys.byteorder != "little":
            samples.byteswap()
        self.pending.extend(samples)
        while len(self.pending) >= self.frame:
            frame = self.pending[:self.frame]
            del self.pending[:self.frame]
            self.process(frame)

    def process(self, frame):
        start = self.position
        self.position += len(frame)
        mean_square = sum(x * x for x in frame) / len(frame)
        dbfs = 10 * math.log10(max(mean_square, 1e-9) / (32768.0 * 32768.0))
        speech = dbfs > SPEECH_DBFS
        if self.mode == recognizer_pb2.DISABLED:
            self.track_tone(frame, start, speech)
            return
        if speech:
            if not self.in_speech:
                self.in_speech = True
                self.utterances += 1
                self.onset = start
                self.words = []
                self.out.append(recognizer_pb2.RecognitionResponse(
                    start_of_speech=recognizer_pb2.StartOfSpeech(
                        first_audio_to_start_of_speech_ms=self.ms(start))))
            self.silence_run = 0
            self.last_speech_end = self.position
            self.track_tone(frame, start, True)
            if (self.timers_running and self.too_long
                    and self.last_speech_end - self.onset >= self.too_long):
                self.finish_utterance()
                self.end(413, "Too much speech",
                         f"speech longer than recognition_timeout_ms ({self.ms(self.too_long)} ms)")
            return
        self.track_tone(frame, start, False)
        if self.in_speech:
            self.silence_run += len(frame)
            if self.silence_run >= self.end_silence:
                self.finish_utterance()
                if self.mode == recognizer_pb2.SINGLE:
                    self.end(200, "Success")
        elif self.timers_running and self.no_input and self.utterances == 0:
            self.no_input_run += len(frame)
            if self.no_input_run >= self.no_input:
                self.end(404, "No speech",
                         f"no speech within no_input_timeout_ms ({self.ms(self.no_input)} ms)")

    def track_tone(self, frame, start, speech):
        if speech:
            if not self.tone:
                self.tone_start = start
            self.tone.extend(frame)
        elif self.tone:
            self.finish_tone()

    def finish_tone(self):
        key = detect_key(self.tone, self.rate)
        if key is not None:
            self.words.append((key, self.tone_start, self.tone_start + len(self.tone)))
            if self.result_type != result_pb2.FINAL:
                self.out.append(self.result(result_pb2.PARTIAL if self.result_type
                                            == result_pb2.PARTIAL else result_pb2.IMMUTABLE_PARTIAL))
        self.tone = array.array("h")

    def result(self, result_type):
        text = "".join(key for key, _, _ in self.words)
        if self.fault == "wrong-text" and result_type == result_pb2.FINAL:
            text += "9"
        start = self.words[0][1] if self.words else self.onset
        end = self.words[-1][2] if self.words else self.last_speech_end
        hypothesis = result_pb2.Hypothesis(
            formatted_text=text, minimally_formatted_text=text,
            rejected=result_type == result_pb2.FINAL and not self.words,
            words=[result_pb2.Word(text=key, start_ms=self.ms(s), end_ms=self.ms(e))
                   for key, s, e in self.words])
        if self.words:
            hypothesis.confidence = 1.0
        return recognizer_pb2.RecognitionResponse(result=result_pb2.Result(
            result_type=result_type, abs_start_ms=self.ms(start), abs_end_ms=self.ms(end),
            hypotheses=[hypothesis]))

    def finish_utterance(self):
        if self.tone:
            self.finish_tone()
        self.in_speech = False
        self.out.append(self.result(result_pb2.FINAL))
        self.words = []

    def close(self):
        """The client half-closed."""
        if self.mode == recognizer_pb2.DISABLED:
            if self.tone:
                self.finish_tone()
            if self.position == 0:
                self.end(204, "No result", "the stream held no audio")
            self.utterances = 1
            self.last_speech_end = self.position
            self.out.append(self.result(result_pb2.FINAL))
        elif self.in_speech:
            self.finish_utterance()
        if self.utterances:
            self.end(200, "Success")
        self.end(204, "No result", "the audio held no utterance")


def validate(params):
    """The proto name of the first bad field of an init, with why, or None."""
    if not params.language:
        return "language: required"
    kind = params.audio_format.WhichOneof("audio_format_union")
    if kind is None:
        return "audio_format: required"
    if kind != "pcm":
        return f"audio_format.{kind}: not supported by the fake recognizer"
    if params.audio_format.pcm.sample_rate_hz not in MEDIA_TYPES:
        return "audio_format.pcm.sample_rate_hz: must be 8000 or 16000"
    if params.utterance_detection_mode not in (recognizer_pb2.SINGLE, recognizer_pb2.MULTIPLE,
                                               recognizer_pb2.DISABLED):
        return "utterance_detection_mode: unknown value"
    if params.result_type not in (result_pb2.FINAL, result_pb2.PARTIAL,
                                  result_pb2.IMMUTABLE_PARTIAL):
        return "result_type: unknown value"
    return None


class RecognizerServicer(recognizer_pb2_grpc.RecognizerServicer):
    def __init__(self, fault):
        self.fault = fault

    def Recognize(self, request_iterator, context):
        recognition = None
        ended = False
        out = []
        try:
            for request in request_iterator:
                kind = request.WhichOneof("request_union")
                if recognition is None:
                    if kind == "control_message":
                        out.append(status(410, "Not recognizing",
                                          "start_timers_message arrived before a recognition started"))
                        raise Ended
                    if kind != "recognition_init_message":
                        out.append(status(400, "Bad request", "recognition_init_message must be "
                                          "the first message, before any audio"))
                        raise Ended
                    params = request.recognition_init_message.parameters
                    problem = validate(params)
                    if problem is not None:
                        out.append(status(400, "Bad request", problem))
                        raise Ended
                    recognition = Recognition(params, self.fault)
                    out = recognition.out
                    rate = params.audio_format.pcm.sample_rate_hz
                    out.append(status(100, "Continue",
                                      f"recognition started on {MEDIA_TYPES[rate]} stream"))
                elif kind == "recognition_init_message":
                    out.append(status(400, "Bad request",
                                      "recognition_init_message: a recognition accepts one init message"))
                    raise Ended
                elif kind == "control_message":
                    if request.control_message.HasField("start_timers_message"):
                        recognition.start_timers()
                elif kind == "audio":
                    recognition.audio(request.audio)
                while out:
                    yield out.pop(0)
            # The client half-closed.
            if recognition is None:
                out.append(status(400, "Bad request",
                                  "recognition_init_message: the stream ended before an init message"))
                raise Ended
            recognition.close()
        except Ended:
            ended = True
        while out:
            yield out.pop(0)
        if ended and self.fault == "after-status":
            yield recognizer_pb2.RecognitionResponse(
                start_of_speech=recognizer_pb2.StartOfSpeech(first_audio_to_start_of_speech_ms=1))
        if ended and self.fault == "grpc-error":
            context.abort(grpc.StatusCode.INTERNAL, "fault injected by fake_recognizer")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault", choices=("wrong-text", "after-status", "grpc-error"))
    args = parser.parse_args()

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="recognize"),
        options=[("grpc.so_reuseport", 0)],
    )
    recognizer_pb2_grpc.add_RecognizerServicer_to_server(RecognizerServicer(args.fault), server)
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
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

    while not stop.wait(0.2):
        pass
    server.stop(grace=0.5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
