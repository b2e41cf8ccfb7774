#!/usr/bin/env python3
"""A TCP proxy that logs the HTTP/2 frames between a cleartext (h2c, prior knowledge) client
and server, with header blocks decoded by libnghttp2's HPACK inflater (through ctypes).

    python h2_tap.py --target HOST:PORT [--port 0] [--data-bytes 0]

Prints `LISTENING <port>` as its first stdout line, then one line per frame on stderr:

    <conn>.<C>S> HEADERS stream=1 flags=END_HEADERS len=85 | :method: POST | ...

where `C>S` is client to server and `S>C` the reverse. Stops when stdin reaches EOF or on
SIGTERM. A debugging aid for Hark's transport (see README.md), not used by the tests.
"""

import argparse
import ctypes
import ctypes.util
import os
import signal
import socket
import struct
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_TYPES = {0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS",
               5: "PUSH_PROMISE", 6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE",
               9: "CONTINUATION"}
ERROR_CODES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
               4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
               7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
               11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
SETTINGS = {1: "HEADER_TABLE_SIZE", 2: "ENABLE_PUSH", 3: "MAX_CONCURRENT_STREAMS",
            4: "INITIAL_WINDOW_SIZE", 5: "MAX_FRAME_SIZE", 6: "MAX_HEADER_LIST_SIZE",
            8: "ENABLE_CONNECT_PROTOCOL", 0xFE03: "GRPC_ALLOW_TRUE_BINARY_METADATA",
            0xFE04: "GRPC_PREFERRED_RECEIVE_CRYPTO_FRAME_SIZE"}


class _NV(ctypes.Structure):
    _fields_ = [("name", ctypes.POINTER(ctypes.c_uint8)), ("value", ctypes.POINTER(ctypes.c_uint8)),
                ("namelen", ctypes.c_size_t), ("valuelen", ctypes.c_size_t),
                ("flags", ctypes.c_uint8)]


_lib = ctypes.CDLL(ctypes.util.find_library("nghttp2") or "libnghttp2.so.14")
_lib.nghttp2_hd_inflate_new.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
_lib.nghttp2_hd_inflate_hd2.argtypes = [ctypes.c_void_p, ctypes.POINTER(_NV),
                                        ctypes.POINTER(ctypes.c_int), ctypes.c_char_p,
                                        ctypes.c_size_t, ctypes.c_int]
_lib.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
_lib.nghttp2_hd_inflate_end_headers.argtypes = [ctypes.c_void_p]
_lib.nghttp2_hd_inflate_del.argtypes = [ctypes.c_void_p]


class Inflater:
    def __init__(self):
        self._handle = ctypes.c_void_p()
        if _lib.nghttp2_hd_inflate_new(ctypes.byref(self._handle)) != 0:
            raise RuntimeError("nghttp2_hd_inflate_new failed")

    def inflate(self, block):
        headers = []
        buffer = ctypes.create_string_buffer(block, len(block))
        base = ctypes.addressof(buffer)
        offset = 0
        while True:
            nv = _NV()
            flags = ctypes.c_int(0)
            used = _lib.nghttp2_hd_inflate_hd2(self._handle, ctypes.byref(nv), ctypes.byref(flags),
                                               ctypes.c_char_p(base + offset), len(block) - offset, 1)
            if used < 0:
                headers.append(("<hpack error>", str(used)))
                return headers
            offset += used
            if flags.value & 0x02:
                name = ctypes.string_at(nv.name, nv.namelen)
                value = ctypes.string_at(nv.value, nv.valuelen)
                headers.append((name.decode("latin-1"), value))
            if flags.value & 0x01:
                _lib.nghttp2_hd_inflate_end_headers(self._handle)
                return headers
            if not flags.value & 0x02 and offset >= len(block):
                return headers


def _value(value, limit=120):
    try:
        text = value.decode("ascii")
        if all(32 <= ord(c) < 127 for c in text):
            return text if len(text) <= limit else text[:limit] + "..."
    except UnicodeDecodeError:
        pass
    return "0x" + value[:limit // 2].hex() + ("..." if len(value) > limit // 2 else "")


def _flag_names(frame_type, flags):
    names = []
    if frame_type in (0, 1) and flags & 0x1:
        names.append("END_STREAM")
    if frame_type in (4, 6) and flags & 0x1:
        names.append("ACK")
    if frame_type in (1, 5, 9) and flags & 0x4:
        names.append("END_HEADERS")
    if frame_type in (0, 1, 5) and flags & 0x8:
        names.append("PADDED")
    if frame_type == 1 and flags & 0x20:
        names.append("PRIORITY")
    return "|".join(names) or "0"


class Direction:
    def __init__(self, label, log, data_bytes):
        self.label = label
        self.log = log
        self.data_bytes = data_bytes
        self.buffer = b""
        self.preface = label.endswith("C>S")
        self.inflater = Inflater()
        self.header_block = None  # (stream, flags, fragments) while CONTINUATION frames follow

    def feed(self, data):
        self.buffer += data
        if self.preface:
            if len(self.buffer) < len(PREFACE):
                return
            if self.buffer.startswith(PREFACE):
                self.log(f"{self.label} PREFACE")
                self.buffer = self.buffer[len(PREFACE):]
            self.preface = False
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[0:3], "big")
            if len(self.buffer) < 9 + length:
                return
            frame_type, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.buffer = self.buffer[9 + length:]
            self.frame(frame_type, flags, stream, payload)

    def frame(self, frame_type, flags, stream, payload):
        name = FRAME_TYPES.get(frame_type, f"TYPE{frame_type}")
        line = f"{self.label} {name} stream={stream} flags={_flag_names(frame_type, flags)} " \
               f"len={len(payload)}"
        detail = ""
        if frame_type in (0, 1, 5) and flags & 0x8 and payload:
            pad = payload[0]
            payload = payload[1:len(payload) - pad]
        if frame_type == 0:
            if self.data_bytes and payload:
                detail = " | " + payload[:self.data_bytes].hex()
        elif frame_type == 1:
            if flags & 0x20:
                payload = payload[5:]
            if flags & 0x4:
                detail = self.headers(payload)
            else:
                self.header_block = payload
                detail = " | (header block continues)"
        elif frame_type == 9:
            self.header_block = (self.header_block or b"") + payload
            if flags & 0x4:
                detail = self.headers(self.header_block)
                self.header_block = None
        elif frame_type == 3 and len(payload) >= 4:
            code = struct.unpack(">I", payload[:4])[0]
            detail = f" | error={ERROR_CODES.get(code, code)}"
        elif frame_type == 7 and len(payload) >= 8:
            last, code = struct.unpack(">II", payload[:8])
            detail = f" | last_stream={last & 0x7FFFFFFF} error={ERROR_CODES.get(code, code)}" \
                     f" debug={_value(payload[8:])}"
        elif frame_type == 8 and len(payload) >= 4:
            detail = f" | increment={struct.unpack('>I', payload[:4])[0] & 0x7FFFFFFF}"
        elif frame_type == 4:
            items = []
            for i in range(0, len(payload) - 5, 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                items.append(f"{SETTINGS.get(key, hex(key))}={value}")
            detail = " | " + " ".join(items) if items else ""
        elif frame_type == 6:
            detail = f" | {payload.hex()}"
        self.log(line + detail)

    def headers(self, block):
        return "".join(f" | {n}: {_value(v)}" for n, v in self.inflater.inflate(block))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-bytes", type=int, default=0,
                        help="log the first N bytes of each DATA frame (hex)")
    args = parser.parse_args()
    target_host, target_port = args.target.rsplit(":", 1)

    started = time.monotonic()
    log_lock = threading.Lock()

    def log(message):
        with log_lock:
            print(f"{time.monotonic() - started:9.4f} {message}", file=sys.stderr, flush=True)

    listener = socket.create_server((args.host, args.port))
    print(f"LISTENING {listener.getsockname()[1]}", flush=True)

    def pump(source, sink, direction):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                direction.feed(data)
                sink.sendall(data)
        except OSError:
            pass
        log(f"{direction.label} EOF")
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve():
        number = 0
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            number += 1
            server = socket.create_connection((target_host, int(target_port)))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log(f"{number} connection")
            threading.Thread(target=pump, daemon=True,
                             args=(client, server, Direction(f"{number}.C>S", log, args.data_bytes))).start()
            threading.Thread(target=pump, daemon=True,
                             args=(server, client, Direction(f"{number}.S>C", log, args.data_bytes))).start()

    threading.Thread(target=serve, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        try:
            while os.read(sys.stdin.fileno(), 65536):
                pass
        except (OSError, AttributeError, ValueError):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.2):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
