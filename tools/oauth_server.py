#!/usr/bin/env python3
"""An OAuth2 token endpoint for the client-credentials grant (RFC 6749 §4.4), the peer of Hark's
token tests. Standard library only.

    python oauth_server.py --cert CERT --key KEY --client-id ID --client-secret SECRET
                           [--host 127.0.0.1] [--port 0] [--scope asr] [--expires-in 900]
                           [--fail-first N] [--delay-ms MS]

Serves HTTPS (plain HTTP without --cert and --key) and prints `LISTENING <port>` as its first
stdout line once it accepts connections; serves until its stdin reaches EOF (the parent closes the
pipe) or SIGTERM / SIGINT, and exits 0. Diagnostics go to stderr.

POST /oauth2/token checks what a client must send (RFC 6749 §2.3.1, §4.4.2):
  - HTTP basic authentication whose user and password are the client ID and secret, each
    form-urlencoded first (so `appID:NMDP…` arrives as `appID%3ANMDP…`), percent-decoded here;
  - a body of application/x-www-form-urlencoded with grant_type=client_credentials and a scope
    whose every space-separated value is one of --scope.
It answers tokens `tok-1`, `tok-2`, … with `expires_in` of --expires-in seconds, or the errors of
§5.2: invalid_client (401, with WWW-Authenticate), invalid_request, unsupported_grant_type,
invalid_scope (400). The first --fail-first requests get 500; each answer waits --delay-ms.

What it served, as one JSON object, is the answer of GET /stats and the stdout line answering a
`stats` line on stdin: token_requests (POSTs to the token path), issued (the tokens with their
issue time, Unix seconds, and lifetime), failed (500s), refused (4xx).
"""

import argparse
import base64
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_PATH = "/oauth2/token"


def _log(message):
    print(f"oauth_server: {message}", file=sys.stderr, flush=True)


class State:
    """What the server served, shared by its handler threads."""

    def __init__(self, fail_first):
        self.lock = threading.Lock()
        self.fail_first = fail_first
        self.token_requests = 0
        self.issued = []
        self.failed = 0
        self.refused = 0

    def stats(self):
        with self.lock:
            return {
                "token_requests": self.token_requests,
                "issued": list(self.issued),
                "failed": self.failed,
                "refused": self.refused,
            }


def make_handler(options, state):
    allowed_scopes = set(options.scope.split())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "hark-oauth-test/1"

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            _log(format % args)

        def _send_json(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            # RFC 6749 §5.1: tokens must not be cached.
            self.send_header("Cache-Control", "no-store")
            self.send_header("Pragma", "no-cache")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, status, error, description, headers=()):
            with state.lock:
                state.refused += 1
            self._send_json(
                status, {"error": error, "error_description": description}, headers
            )

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/stats":
                self._send_json(200, state.stats())
            else:
                self._send_json(404, {"error": "not_found"})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            if self.path != TOKEN_PATH:
                self._send_json(404, {"error": "not_found"})
                return
            with state.lock:
                state.token_requests += 1
                failing = state.fail_first > 0
                if failing:
                    state.fail_first -= 1
                    state.failed += 1
            if options.delay_ms:
                time.sleep(options.delay_ms / 1000.0)
            if failing:
                self._send_json(500, {"error": "server_error"})
                return

            client_id, client_secret = self._basic_credentials()
            if client_id != options.client_id or client_secret != options.client_secret:
                self._refuse(
                    401,
                    "invalid_client",
                    "Client authentication failed",
                    [("WWW-Authenticate", 'Basic realm="hark-oauth-test"')],
                )
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != "application/x-www-form-urlencoded":
                self._refuse(400, "invalid_request", f"content type {content_type!r}")
                return
            form = urllib.parse.parse_qs(body, keep_blank_values=True)
            if any(len(values) > 1 for values in form.values()):
                self._refuse(400, "invalid_request", "a parameter is repeated")
                return
            grant_type = form.get("grant_type", [""])[0]
            if not grant_type:
                self._refuse(400, "invalid_request", "grant_type is missing")
                return
            if grant_type != "client_credentials":
                self._refuse(400, "unsupported_grant_type", f"grant_type {grant_type!r}")
                return
            scopes = form.get("scope", [""])[0].split()
            if not scopes or not set(scopes) <= allowed_scopes:
                self._refuse(400, "invalid_scope", "The requested scope is invalid")
                return

            with state.lock:
                token = f"tok-{len(state.issued) + 1}"
                state.issued.append(
                    {"token": token, "issued_at": time.time(), "expires_in": options.expires_in}
                )
            self._send_json(
                200,
                {
                    "access_token": token,
                    "expires_in": options.expires_in,
                    "scope": " ".join(scopes),
                    "token_type": "bearer",
                },
            )

        def _basic_credentials(self):
            header = self.headers.get("Authorization") or ""
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                return None, None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except ValueError:
                return None, None
            user, colon, password = decoded.partition(":")
            if not colon:
                return None, None
            # RFC 6749 §2.3.1: both were form-urlencoded before basic authentication.
            return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="PEM certificate (HTTPS); with --key")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--scope", default="asr", help="the scopes granted, space-separated")
    parser.add_argument("--expires-in", type=int, default=900, help="token lifetime, seconds")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 500 to the first N")
    parser.add_argument("--delay-ms", type=int, default=0, help="wait this long before answering")
    options = parser.parse_args()
    if (options.cert is None) != (options.key is None):
        parser.error("--cert and --key go together")

    state = State(options.fail_first)
    server = ThreadingHTTPServer((options.host, options.port), make_handler(options, state))
    server.daemon_threads = True
    if options.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.cert, options.key)
        # The handshake happens in the handler thread, so a client that fails it holds up no one.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )

    stopped = threading.Event()

    def stop(*_):
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def read_commands():
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(state.stats()), flush=True)
        stopped.set()

    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=read_commands, daemon=True).start()
    print(f"LISTENING {server.server_address[1]}", flush=True)
    stopped.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
