"""The emulator's control API, called from the fabric's event loop.

A MySQL session asks the emulator what only it knows (the live topology, the volume) and has
it inject the faults that the fault-injection statements name.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class Controller:
    """Calls the emulator's control API (`/_emulator/<action>`) from the fabric's event loop.

    The fabric's control socket lives in the emulator's state directory, next to the
    `emulator.json` connection file that says where the API is and which token it takes.
    """

    def __init__(self, connection_file: Path | None = None):
        self.connection_file = connection_file

    def _info(self) -> dict[str, Any]:
        if self.connection_file is None:
            raise ConnectionError("the fabric was not started by an emulator")
        try:
            return json.loads(self.connection_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConnectionError(f"cannot read {self.connection_file}: {exc}") from None

    async def call(self, action: str, timeout: float, **arguments: Any) -> Any:
        """The action's result; LookupError(message) when the emulator refuses (HTTP 4xx)."""
        info = self._info()
        url = urlsplit(info["endpoint_url"])
        body = json.dumps(arguments).encode()
        request = (f"POST /_emulator/{action} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                   f"X-Gameday-Token: {info['control_token']}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(url.hostname, url.port)
            try:
                writer.write(request)
                await writer.drain()
                return await reader.read()
            finally:
                writer.close()

        raw = await asyncio.wait_for(exchange(), timeout)
        head, _, payload = raw.partition(b"\r\n\r\n")
        try:
            status = int(head.split(b" ", 2)[1])
            reply = json.loads(payload or b"{}")
        except (IndexError, ValueError):
            raise ConnectionError(f"malformed reply from the emulator: {raw[:200]!r}") from None
        if status >= 500:
            raise ConnectionError(reply.get("error", f"HTTP {status}"))
        if status >= 400:
            raise LookupError(reply.get("error", f"HTTP {status}"))
        return reply.get("result")


CONTROLLER = Controller()


def configure(control_socket: Path) -> None:
    """Called by the fabric at start: the emulator's connection file is beside its control socket."""
    CONTROLLER.connection_file = Path(control_socket).with_name("emulator.json")
