"""Synchronous client for the fabric process, and the helper that starts it.

The control plane is threaded, so one client is shared: a lock serialises
requests over a single persistent Unix-socket connection (cheap per call),
which is re-opened transparently if the fabric hung up on it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 10.0
_PROJECT_ROOT = Path(__file__).resolve().parents[3]  # the directory holding `harness/`


class FabricError(RuntimeError):
    """The fabric refused a request, or could not be reached or started."""


class FabricClient:
    """Thread-safe JSON-lines client for the fabric control socket."""

    def __init__(self, control_path: Path | str, timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.control_path = str(control_path)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: Any = None

    # -- transport
    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.control_path)
        except OSError as exc:
            sock.close()
            raise FabricError(f"cannot reach fabric at {self.control_path}: {exc}") from exc
        self._sock, self._reader = sock, sock.makefile("rb")

    def _disconnect(self) -> None:
        for closable in (self._reader, self._sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
        self._sock = self._reader = None

    def _exchange(self, payload: bytes) -> bytes:
        assert self._sock is not None and self._reader is not None
        self._sock.sendall(payload)
        line = self._reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError("fabric closed the control connection")
        return line

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; return the reply without ``ok``; raise FabricError if refused."""
        payload = json.dumps({"op": op, **fields}).encode() + b"\n"
        with self._lock:
            reused = self._sock is not None
            if not reused:
                self._connect()
            try:
                line = self._exchange(payload)
            except (OSError, ConnectionError) as exc:
                self._disconnect()
                if not reused:
                    raise FabricError(f"fabric request {op!r} failed: {exc}") from exc
                # The kept-alive connection had gone stale (fabric restarted): retry once.
                self._connect()
                try:
                    line = self._exchange(payload)
                except (OSError, ConnectionError) as exc2:
                    self._disconnect()
                    raise FabricError(f"fabric request {op!r} failed: {exc2}") from exc2
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise FabricError(f"fabric sent a malformed reply to {op!r}: {line[:200]!r}") from exc
        if not reply.pop("ok", False):
            raise FabricError(reply.get("error", "unknown fabric error"))
        return reply

    def close(self) -> None:
        with self._lock:
            self._disconnect()

    # -- operations (thin wrappers naming the wire protocol)
    def ping(self) -> int:
        """Return the fabric's pid."""
        return int(self.request("ping")["pid"])

    def set_listener(
        self, name: str, host: str, port: int, route: dict[str, Any], *, fast: bool = False
    ) -> int:
        """Create or update a listener; returns the bound port (useful with port 0).

        ``fast`` (fixed when the listener is created) hands its connections to the C pump
        once routed: several times cheaper per message, but it takes no toxics, so it is for
        client endpoints, not replication links.
        """
        return int(self.request("set_listener", name=name, host=host, port=port, route=route,
                                fast=fast)["port"])

    def set_route(self, name: str, route: dict[str, Any]) -> None:
        self.request("set_route", name=name, route=route)

    def remove_listener(self, name: str) -> None:
        self.request("remove_listener", name=name)

    def drop(self, target: str, listener: str | None = None) -> int:
        """Reset every live connection proxied to ``target``; returns how many."""
        fields: dict[str, Any] = {"target": target}
        if listener is not None:
            fields["listener"] = listener
        return int(self.request("drop", **fields)["dropped"])

    def add_toxic(
        self,
        listener: str,
        name: str,
        type: str,
        *,
        stream: str = "both",
        toxicity: float = 1.0,
        attributes: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        toxic = {"name": name, "type": type, "stream": stream, "toxicity": toxicity,
                 "attributes": attributes or {}}
        return dict(self.request("add_toxic", listener=listener, toxic=toxic)["toxic"])

    def remove_toxic(self, listener: str, name: str) -> None:
        self.request("remove_toxic", listener=listener, name=name)

    def list_toxics(self, listener: str) -> list[dict[str, Any]]:
        return list(self.request("list_toxics", listener=listener)["toxics"])

    def reset_toxics(self, listener: str | None = None) -> None:
        if listener is None:
            self.request("reset_toxics")
        else:
            self.request("reset_toxics", listener=listener)

    def stats(self, name: str | None = None) -> list[dict[str, Any]]:
        """Per-listener counters (all listeners, or just ``name``)."""
        reply = self.request("stats") if name is None else self.request("stats", name=name)
        return list(reply["listeners"])

    def shutdown(self) -> None:
        self.request("shutdown")
        self.close()


def _log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_fabric(
    control_path: Path, log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], FabricClient]:
    """Start the fabric process and return it once it answers ``ping``.

    stdout/stderr go to ``log_path``.  The fabric exits by itself if this
    process dies (no orphaned proxies holding endpoint ports).  Raises
    FabricError with the log tail if the process dies or does not answer
    within ~5 s (and then kills it).
    """
    control_path, log_path = Path(control_path), Path(log_path)
    child_env = {**os.environ, **(env or {})}
    # Make `harness` importable for the child whatever its working directory is.
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.emulator.fabric.server",
             "--control", str(control_path), "--exit-with-parent"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=child_env,
        )
    client = FabricClient(control_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise FabricError(
                f"fabric exited with status {proc.returncode} during start-up; log tail:\n"
                f"{_log_tail(log_path)}"
            )
        try:
            if client.ping() == proc.pid:
                return proc, client
            client.close()  # some other process answered on a stale socket path
        except FabricError:
            pass  # not listening yet (or a stale socket from an earlier run)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise FabricError(
                f"fabric did not answer within {START_TIMEOUT_S:g}s; log tail:\n{_log_tail(log_path)}"
            )
        time.sleep(0.02)
