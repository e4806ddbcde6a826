"""HTTP front door of the emulator.

`/` speaks the RDS Query protocol (SigV4-signed, parsed and serialized from botocore's model).
`/_emulator/*` is the emulator-only JSON control API the CLI and `@emulator-only` scenarios use;
it requires the token written to the state directory, so only its owner can call it.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from harness.emulator.api import ApiError, fault, parse_request, serialize_error, serialize_response, verify

if TYPE_CHECKING:
    from harness.emulator.emulator import Emulator

log = logging.getLogger("harness.emulator")
CONTROL_PREFIX = "/_emulator/"
MAX_BODY = 1024 * 1024


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator):
        super().__init__(address, RequestHandler)
        self.emulator = emulator


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
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise fault("MalformedQueryString", "Request body too large.")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url.path[len(CONTROL_PREFIX):])
            return
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body()
            caller = verify(self.command, url.path, url.query, dict(self.headers.items()), body,
                            self.server.emulator.secret_for)
            operation, params = parse_request(body, url.query)
            result = self.server.emulator.backend.dispatch(caller.region, operation, params)
            self._send(200, serialize_response(operation, result, request_id), "text/xml")
        except ApiError as err:
            self._send(err.status, serialize_error(err, request_id), "text/xml")
        except Exception:
            log.exception("internal error (request %s)", request_id)
            err = fault("InternalFailure", f"The emulator failed to process request {request_id}; see its log.")
            self._send(err.status, serialize_error(err, request_id), "text/xml")

    def _control(self, action: str) -> None:
        emulator = self.server.emulator
        token = self.headers.get("X-Gameday-Token", "")
        try:
            arguments = json.loads(self._read_body() or b"{}")
        except (ValueError, ApiError):
            arguments = None
        # Engines (Aurora's SQL functions) call the engine-facing actions with their cluster's token.
        engine_token = self.headers.get("X-Gameday-Engine-Token", "")
        if not hmac.compare_digest(token, emulator.control_token) and not (
                engine_token and emulator.controls.engine_may_call(engine_token, action, arguments)):
            self._send(403, json.dumps({"error": "missing or wrong X-Gameday-Token"}).encode(), "application/json")
            return
        try:
            if not isinstance(arguments, dict):
                raise ValueError("the body must be a JSON object of arguments")
            result = emulator.controls.call(action, arguments)
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
