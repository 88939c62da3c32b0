"""A Slack-compatible HTTP server on 127.0.0.1 for the delivery tests: real sockets, real clients.

It speaks the two endpoints costwatch uses, the way Slack answers them:
- `POST /api/chat.postMessage` (JSON or form body, `Authorization: Bearer <token>` or a `token`
  form field): `{"ok": true, "channel": ..., "ts": ...}`, or HTTP 200 with
  `{"ok": false, "error": "invalid_auth"}` for a wrong token, like Slack;
- `POST /webhook/<id>`: `ok` with 200 for a known id, `no_service` with 404 otherwise.

A test scripts trouble with `fail_next(n, status=429)` (with `Retry-After`) or `status=500`:
the next n requests get that answer whatever their path; `hold()` parks every request until the
test `admit`s it, to look at the outbox while a post is in flight. Every request is logged in `requests`;
only accepted posts land in `messages`. It binds loopback only, caps bodies and records,
never writes to stdout/stderr (paths carry webhook secrets), and shuts itself down after
`lifetime_s` if a test forgets to.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """A post the server accepted."""

    endpoint: str  # "chat.postMessage" or "webhook"
    channel: str | None  # chat.postMessage only; a webhook owns its channel
    text: str | None
    blocks: list | None
    metadata: dict | None


@dataclass(frozen=True)
class ReceivedRequest:
    """Any request, answered or refused: what the retry tests count."""

    path: str
    status: int


class SlackTestServer:
    def __init__(
        self,
        *,
        token: str,
        webhook_ids: tuple[str, ...] = (),
        max_body_bytes: int = 1 << 20,
        max_requests: int = 1000,
        lifetime_s: float = 120.0,
    ):
        self.token = token
        self.webhook_ids = frozenset(webhook_ids)
        self.max_body_bytes = max_body_bytes
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.port: int | None = None  # kept across stop/start, so a restart comes back on it
        self.messages: list[ReceivedMessage] = []
        self.requests: list[ReceivedRequest] = []
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self._gate: threading.Semaphore | None = None
        self._waiting = 0
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # ---- lifecycle

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def base_url(self) -> str:
        assert self.port is not None, "start the server first"
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL should be (WebClient's base_url)."""
        return f"{self.base_url}/api/"

    def webhook_url(self, webhook_id: str) -> str:
        return f"{self.base_url}/webhook/{webhook_id}"

    def start(self) -> SlackTestServer:
        if self.running:
            return self
        # Port 0 picks a free port the first time; a restart rebinds the same one.
        httpd = _Server((HOST, self.port or 0), _Handler)
        httpd.app = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._watchdog = threading.Timer(self.lifetime_s, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket: connections to the port are refused from here on."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SlackTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- scripting

    def fail_next(self, count: int, *, status: int, retry_after: int = 1) -> None:
        """Answer the next `count` requests with `status` (429 carries `Retry-After`)."""
        headers = {"Retry-After": str(retry_after)} if status == 429 else {}
        with self._lock:
            self._script.extend([(status, headers)] * count)

    def hold(self) -> None:
        """Park each request on arrival until `admit` lets it through (or 10 s pass)."""
        self._gate = threading.Semaphore(0)

    def admit(self, count: int = 1) -> None:
        assert self._gate is not None, "hold() first"
        self._gate.release(count)

    @property
    def waiting(self) -> int:
        """Requests parked by `hold` right now."""
        with self._lock:
            return self._waiting

    # ---- request handling (called on the server's threads)

    def _handle(self, request: _Handler) -> None:
        gate = self._gate
        if gate is not None:
            with self._lock:
                self._waiting += 1
            gate.acquire(timeout=10)
            with self._lock:
                self._waiting -= 1
        path = request.path.split("?", 1)[0]
        length = int(request.headers.get("Content-Length") or 0)
        if length > self.max_body_bytes:
            return self._answer(request, path, 413, "text/plain", "request too large")
        raw = request.rfile.read(length) if length else b""
        with self._lock:
            if len(self.requests) >= self.max_requests:
                full = True
            else:
                full = False
                scripted = self._script.popleft() if self._script else None
        if full:
            return self._answer(request, path, 503, "text/plain", "test server request limit reached", record=False)
        if scripted is not None:
            status, headers = scripted
            if path.startswith("/api/"):
                error = "ratelimited" if status == 429 else "internal_error"
                return self._answer(
                    request, path, status, "application/json", json.dumps({"ok": False, "error": error}), headers
                )
            return self._answer(
                request, path, status, "text/plain", "rate_limited" if status == 429 else "internal error", headers
            )

        if path == "/api/chat.postMessage":
            return self._chat_post_message(request, path, raw)
        if path.startswith("/webhook/"):
            return self._webhook(request, path, raw)
        return self._answer(request, path, 404, "text/plain", "not found")

    def _chat_post_message(self, request: _Handler, path: str, raw: bytes) -> None:
        try:
            body = _parse_body(request.headers.get("Content-Type", ""), raw)
        except ValueError:
            return self._answer(
                request, path, 200, "application/json", json.dumps({"ok": False, "error": "invalid_json"})
            )
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body.get("token")
        if not token:
            return self._slack_error(request, path, "not_authed")
        if token != self.token:
            return self._slack_error(request, path, "invalid_auth")
        channel = body.get("channel")
        if not channel:
            return self._slack_error(request, path, "channel_not_found")
        if not body.get("text") and not body.get("blocks"):
            return self._slack_error(request, path, "no_text")
        ts = f"1700000000.{next(self._ts):06d}"
        self._record(
            ReceivedMessage("chat.postMessage", channel, body.get("text"), body.get("blocks"), body.get("metadata"))
        )
        # Slack answers with the channel id; a name is fine for a test.
        reply = {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text"), "ts": ts}}
        return self._answer(request, path, 200, "application/json", json.dumps(reply))

    def _webhook(self, request: _Handler, path: str, raw: bytes) -> None:
        if path.removeprefix("/webhook/") not in self.webhook_ids:
            return self._answer(request, path, 404, "text/plain", "no_service")
        try:
            body = _parse_body(request.headers.get("Content-Type", ""), raw)
        except ValueError:
            return self._answer(request, path, 400, "text/plain", "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return self._answer(request, path, 400, "text/plain", "no_text")
        self._record(ReceivedMessage("webhook", None, body.get("text"), body.get("blocks"), body.get("metadata")))
        return self._answer(request, path, 200, "text/html", "ok")

    def _slack_error(self, request: _Handler, path: str, error: str) -> None:
        # The Web API reports most errors with HTTP 200 and ok=false.
        self._answer(request, path, 200, "application/json", json.dumps({"ok": False, "error": error}))

    def _record(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def _answer(
        self,
        request: _Handler,
        path: str,
        status: int,
        content_type: str,
        body: str,
        headers: dict[str, str] | None = None,
        *,
        record: bool = True,
    ) -> None:
        if record:
            with self._lock:
                self.requests.append(ReceivedRequest(path, status))
        data = body.encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", f"{content_type}; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        body = json.loads(raw.decode("utf-8") or "{}")
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        return body
    form = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8")).items()}
    # Form posts carry structured arguments as JSON strings, as Slack's docs show.
    for key in ("blocks", "metadata"):
        if key in form:
            form[key] = json.loads(form[key])
    return form


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restart rebinds the port the clients know
    app: SlackTestServer

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return client_address[0] == HOST


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # a stuck client cannot hold a thread for long

    def do_POST(self) -> None:
        self.server.app._handle(self)

    def do_GET(self) -> None:
        self.send_error(405)

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: request lines hold webhook paths, and the tests assert no secret reaches stderr.
        pass
