"""A Slack-compatible HTTP server on 127.0.0.1 for the delivery tests: real sockets, real clients.

It speaks the endpoints costwatch uses, the way Slack answers them:
- `POST /api/chat.postMessage` (JSON or form body, `Authorization: Bearer <token>` or a `token`
  form field): `{"ok": true, "channel": <channel ID>, "ts": ...}` (a `#name` is answered with its
  ID, as Slack does), or HTTP 200 with `{"ok": false, "error": "invalid_auth"}` for a wrong token;
- `GET` or `POST /api/conversations.history` (a channel *ID*; `oldest`, `latest`, `limit`,
  `cursor`, `include_all_metadata`): the channel's accepted messages newest first, with their
  `metadata` only when `include_all_metadata` is set, and `response_metadata.next_cursor`;
- `POST /webhook/<id>`: `ok` with 200 for a known id, `no_service` with 404 otherwise.

A test scripts trouble with `fail_next(n, status=429)` (with `Retry-After`) or `status=500`:
the next n requests get that answer whatever their path. `misbehave_next(kind)` makes the next
posts (chat.postMessage or webhook) be *accepted* (recorded in `messages`) and then answered
badly, the ways that lose an answer: `drip` (the headers, then the body one byte every
`drip_interval_s`),
`drop` (the connection closed before any answer), `truncated` (a 200 whose body is cut),
`html` (a 200 proxy page); and `vanish`, the connection closed before the post is recorded (lost
on the way: the client cannot tell it from `drop`). `hold()` parks every request until the test `admit`s it, to look at
the outbox while a post is in flight. Every request is logged in `requests`; only accepted posts
land in `messages`. It binds loopback only, caps bodies and records,
never writes to stdout/stderr (paths carry webhook secrets), and shuts itself down after
`lifetime_s` if a test forgets to.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

HOST = "127.0.0.1"
MISBEHAVIOURS = ("drip", "drop", "truncated", "html", "vanish")
PROXY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Gateway</title></head>"
    "<body><h1>Please wait</h1><p>Your request is being checked by the corporate proxy.</p></body></html>"
)


def channel_id(name: str) -> str:
    """The ID this server gives a channel name (`#llm-cost` -> `C...`); an ID maps to itself."""
    if name.startswith(("C", "G")) and name[1:].isalnum() and name.isupper():
        return name
    return "C" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10].upper()


@dataclass(frozen=True)
class ReceivedMessage:
    """A post the server accepted."""

    endpoint: str  # "chat.postMessage" or "webhook"
    channel: str | None  # chat.postMessage only, as posted (a name or an ID); a webhook owns its channel
    text: str | None
    blocks: list | None
    metadata: dict | None
    ts: str | None = None  # chat.postMessage only

    @property
    def alert_id(self) -> str | None:
        return ((self.metadata or {}).get("event_payload") or {}).get("alert_id")


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
        tls: tuple[str, str] | None = None,
    ):
        self.token = token
        self.tls = tls  # (certificate file, key file): serve https, as Slack does
        self.history_scope = True  # False: the token lacks channels:history, as many bots do
        self.webhook_ids = frozenset(webhook_ids)
        self.max_body_bytes = max_body_bytes
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.port: int | None = None  # kept across stop/start, so a restart comes back on it
        self.messages: list[ReceivedMessage] = []
        self.requests: list[ReceivedRequest] = []
        self._script: deque[tuple[int, dict[str, str]]] = deque()
        self._misbehaviours: deque[str] = deque()
        self.drip_interval_s = 1.0
        self._stopping = threading.Event()
        self._last_ts = 0.0
        self._gate: threading.Semaphore | None = None
        self._waiting = 0
        self._lock = threading.Lock()
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
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

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
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._stopping.clear()
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
        self._stopping.set()  # ends any drip in progress
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

    def misbehave_next(
        self, kind: str, count: int = 1, *, after: int = 0, drip_interval_s: float | None = None
    ) -> None:
        """After `after` posts answered normally, accept the next `count` posts and answer each the
        `kind` way (see MISBEHAVIOURS)."""
        assert kind in MISBEHAVIOURS, kind
        if drip_interval_s is not None:
            self.drip_interval_s = drip_interval_s
        with self._lock:
            self._misbehaviours.extend([None] * after + [kind] * count)

    def copies(self) -> dict[str, int]:
        """How many accepted messages carry each alert id: 1 each when nothing was lost or doubled."""
        counts: dict[str, int] = {}
        for message in self.messages:
            if message.alert_id is not None:
                counts[message.alert_id] = counts.get(message.alert_id, 0) + 1
        return counts

    def hold(self) -> None:
        """Park each request on arrival until `admit` lets it through (or 10 s pass)."""
        self._gate = threading.Semaphore(0)

    def admit(self, count: int = 1) -> None:
        assert self._gate is not None, "hold() first"
        self._gate.release(count)

    def release(self) -> None:
        """Stop holding: parked requests go through, new ones are not parked."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release(1000)

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
        path, _, query = request.path.partition("?")
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

        if path == "/api/conversations.history":
            return self._conversations_history(request, path, raw, query)
        if request.command != "POST":
            return self._answer(request, path, 405, "text/plain", "method not allowed")
        if path in ("/api/chat.postMessage",) or path.startswith("/webhook/"):
            with self._lock:
                request.scripted_misbehaviour = self._misbehaviours.popleft() if self._misbehaviours else None
        if getattr(request, "scripted_misbehaviour", None) == "vanish":
            with self._lock:
                self.requests.append(ReceivedRequest(path, 0))
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return None
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
        ts = self._next_ts()
        self._record(
            ReceivedMessage(
                "chat.postMessage", channel, body.get("text"), body.get("blocks"), body.get("metadata"), ts
            ),
            request,
        )
        reply = {"ok": True, "channel": channel_id(channel), "ts": ts, "message": {"text": body.get("text"), "ts": ts}}
        return self._answer(request, path, 200, "application/json", json.dumps(reply))

    def _next_ts(self) -> str:
        # Real time, so `oldest` windows computed from the client's clock select what they should;
        # strictly increasing, as a channel's ts are unique.
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            return f"{self._last_ts:.6f}"

    def _conversations_history(self, request: _Handler, path: str, raw: bytes, query: str) -> None:
        try:
            body = _parse_body(request.headers.get("Content-Type", ""), raw) if raw else {}
        except ValueError:
            return self._slack_error(request, path, "invalid_arguments")
        args = {key: values[-1] for key, values in parse_qs(query).items()} | body
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        if not token:
            return self._slack_error(request, path, "not_authed")
        if token != self.token:
            return self._slack_error(request, path, "invalid_auth")
        if not self.history_scope:
            return self._slack_error(request, path, "missing_scope")
        wanted = str(args.get("channel") or "")
        if not wanted or channel_id(wanted) != wanted:  # Slack wants the ID here, not a #name
            return self._slack_error(request, path, "channel_not_found")
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")
        limit = min(int(args.get("limit") or 100), 999)
        offset = int(args.get("cursor") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        with self._lock:
            found = [
                m
                for m in self.messages
                if m.endpoint == "chat.postMessage"
                and channel_id(m.channel or "") == wanted
                and oldest < float(m.ts or 0) < latest
            ]
        found.sort(key=lambda m: float(m.ts or 0), reverse=True)
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        reply = {
            "ok": True,
            "messages": [
                {"type": "message", "ts": m.ts, "text": m.text}
                | ({"metadata": m.metadata} if with_metadata and m.metadata else {})
                for m in page
            ],
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }
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
        self._record(
            ReceivedMessage("webhook", None, body.get("text"), body.get("blocks"), body.get("metadata")), request
        )
        return self._answer(request, path, 200, "text/html", "ok")

    def _slack_error(self, request: _Handler, path: str, error: str) -> None:
        # The Web API reports most errors with HTTP 200 and ok=false.
        self._answer(request, path, 200, "application/json", json.dumps({"ok": False, "error": error}))

    def _record(self, message: ReceivedMessage, request: _Handler) -> None:
        with self._lock:
            self.messages.append(message)
        # Only an accepted post misbehaves: the answer is lost after Slack acted on it.
        request.misbehaviour = getattr(request, "scripted_misbehaviour", None)

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
        misbehaviour = getattr(request, "misbehaviour", None)
        if record:
            with self._lock:
                self.requests.append(ReceivedRequest(path, status if misbehaviour is None else 0))
        if misbehaviour == "drop":
            # Accepted, then the connection goes before a single byte of the answer.
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        if misbehaviour == "truncated":
            body = body[: len(body) // 2]
        elif misbehaviour == "html":
            status, content_type, body = 200, "text/html", PROXY_PAGE
        data = body.encode("utf-8")
        head = [f"HTTP/1.0 {status} {_REASONS.get(status, 'Status')}"]
        head += [f"Content-Type: {content_type}; charset=utf-8", f"Content-Length: {len(data)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        raw_head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if misbehaviour == "drip":
            request.close_connection = True
            request.wfile.write(raw_head)
            request.wfile.flush()
            self._drip(request, data)
            return
        request.wfile.write(raw_head + data)

    def _drip(self, request: _Handler, body: bytes) -> None:
        """The answer's body one byte every `drip_interval_s`, after its status line and headers:
        a client whose timeout is per socket read never times out, however long the answer takes."""
        for byte in body:
            if self._stopping.wait(self.drip_interval_s):
                return
            try:
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
            except OSError:  # the client gave up and closed: what a bounded client does
                return


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


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
        self.server.app._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: request lines hold webhook paths, and the tests assert no secret reaches stderr.
        pass
