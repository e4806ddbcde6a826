"""HTTP front door of the emulator.

`/` speaks the RDS Query protocol (SigV4-signed, parsed and serialized from botocore's model).
`/_emulator/*` is the emulator-only JSON control API the CLI and `@emulator-only` scenarios use;
it requires the token written to the state directory, so only its owner can call it.

The server only speaks HTTP: what answers a request comes in as `ApiRoutes`, so it knows
nothing of the backend, the controls or the emulator that wires them.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from harness.emulator.api import ApiError, fault, parse_request, serialize_error, serialize_response, verify
from harness.emulator.request_log import RequestLog

log = logging.getLogger("harness.emulator")
CONTROL_PREFIX = "/_emulator/"
MAX_BODY = 1024 * 1024
MAX_DRAINED = 16 * MAX_BODY  # a too large body is still read up to this, to answer it


@dataclass(frozen=True)
class ApiRoutes:
    """What answers the server's requests."""

    dispatch: Callable[[str, str, dict[str, Any]], dict[str, Any] | None]  # (region, operation, params)
    secret_for: Callable[[str], str | None]  # access key id -> its secret (SigV4)
    call_control: Callable[[str, dict[str, Any]], Any]  # (action, arguments)
    engine_may_call: Callable[[str, str, Any], bool]  # (engine token, action, arguments)
    control_token: str  # the owner's token: opens every control action
    requests: RequestLog  # every RDS call answered (operation names only)


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], routes: ApiRoutes):
        super().__init__(address, RequestHandler)
        self.routes = routes


class RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        log.debug("api %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise fault("MalformedQueryString", "Content-Length is not a number.") from None
        if length > MAX_BODY:
            # Read what was sent before answering (up to a bound), so the client hears the refusal
            # instead of a reset while it is still sending; beyond the bound, the connection goes.
            if length <= MAX_DRAINED:
                for _ in range(0, length, 65536):
                    self.rfile.read(min(65536, length))
                    length -= 65536
            else:
                self.close_connection = True
            raise fault("MalformedQueryString", "Request body too large.")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url.path[len(CONTROL_PREFIX):])
            return
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body()
            routes = self.server.routes
            caller = verify(self.command, url.path, url.query, dict(self.headers.items()), body, routes.secret_for)
            operation, params = parse_request(body, url.query)
            routes.requests.record(caller.region, operation)
            result = routes.dispatch(caller.region, operation, params)
            self._send(200, serialize_response(operation, result, request_id), "text/xml")
        except ApiError as err:
            self._send(err.status, serialize_error(err, request_id), "text/xml")
        except Exception:
            log.exception("internal error (request %s)", request_id)
            err = fault("InternalFailure", f"The emulator failed to process request {request_id}; see its log.")
            self._send(err.status, serialize_error(err, request_id), "text/xml")

    def _control(self, action: str) -> None:
        routes = self.server.routes
        token = self.headers.get("X-Gameday-Token", "")
        try:
            arguments = json.loads(self._read_body() or b"{}")
        except (ValueError, ApiError):
            arguments = None
        # Engines (Aurora's SQL functions) call the engine-facing actions with their cluster's token.
        engine_token = self.headers.get("X-Gameday-Engine-Token", "")
        if not hmac.compare_digest(token, routes.control_token) and not (
                engine_token and routes.engine_may_call(engine_token, action, arguments)):
            self._send(403, json.dumps({"error": "missing or wrong X-Gameday-Token"}).encode(), "application/json")
            return
        try:
            if not isinstance(arguments, dict):
                raise ValueError("the body must be a JSON object of arguments")
            result = routes.call_control(action, arguments)
            self._send(200, json.dumps({"result": result}, default=str).encode(), "application/json")
        except (KeyError, ValueError, TypeError, LookupError, ApiError) as exc:
            message = getattr(exc, "message", None) if isinstance(exc, ApiError) or hasattr(exc, "message") \
                else None
            error = {"error": message or str(exc).strip("'\"")}
            for extra in ("reason", "hint"):  # fault-injection refusals: how engines should word them
                if getattr(exc, extra, None):
                    error[extra] = getattr(exc, extra)
            self._send(400, json.dumps(error).encode(), "application/json")
        except Exception as exc:
            log.exception("control %s failed", action)
            self._send(500, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
