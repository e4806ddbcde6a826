"""Rewriting Aurora MySQL's own system variables in client queries, on the way to MariaDB.

MariaDB has no `@@aurora_server_id` or `@@aurora_version`, and its `@@innodb_read_only` stays
OFF on readers (replication needs InnoDB writable). The fabric knows which instance a client
connection reached, so it replaces those names in the client's queries with that instance's
values before MariaDB sees them: `SELECT @@aurora_server_id` answers like Aurora MySQL.

Only `COM_QUERY` packets are touched. In the MySQL protocol every command packet is sequence
number 0 (handshake and auth packets are not), so no protocol state beyond packet framing is
needed. Compressed and TLS sessions are not rewritten (the emulator offers neither).
"""

from __future__ import annotations

import re

COM_QUERY = 0x03
MAX_PACKET = 0xFFFFFF  # a payload this long continues in the next packet: passed through untouched


def _pattern(names: list[bytes]) -> re.Pattern[bytes]:
    # Longest names first, and no word character after: @@aurora_version must not eat @@aurora_version_x.
    alternatives = b"|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(b"(?i)(?:" + alternatives + rb")(?!\w)")


class QueryRewriter:
    """Feed it the client's bytes; it returns them ready to forward, rewritten where needed.

    A packet split across reads is held until it is complete, so what it returns always ends on
    a packet boundary.
    """

    def __init__(self, replacements: dict[str, str]):
        self.values = {name.lower().encode(): value.encode() for name, value in replacements.items()}
        self.pattern = _pattern(list(self.values))
        self.buffer = bytearray()
        self.passthrough = 0  # bytes of an oversized packet still to forward as they are

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        view = memoryview(data)
        if self.passthrough:
            take = min(self.passthrough, len(view))
            out += view[:take]
            self.passthrough -= take
            view = view[take:]
        self.buffer += view
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[:3], "little")
            if length == MAX_PACKET:
                taken = min(len(self.buffer), 4 + length)
                out += self.buffer[:taken]
                self.passthrough = 4 + length - taken
                del self.buffer[:taken]
                if self.passthrough:
                    break
                continue
            if len(self.buffer) < 4 + length:
                break
            header, payload = bytes(self.buffer[:4]), bytes(self.buffer[4:4 + length])
            del self.buffer[:4 + length]
            out += self._packet(header, payload)
        return bytes(out)

    def _packet(self, header: bytes, payload: bytes) -> bytes:
        if header[3] != 0 or not payload or payload[0] != COM_QUERY:
            return header + payload
        query = self.pattern.sub(lambda m: self.values[m.group(0).lower()], payload[1:])
        if len(query) + 1 >= MAX_PACKET:
            return header + payload  # rewriting would need a second packet: leave it be
        return (len(query) + 1).to_bytes(3, "little") + b"\x00" + bytes([COM_QUERY]) + query
