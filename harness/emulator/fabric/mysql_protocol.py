"""The MySQL wire protocol, as much as the fabric's MySQL endpoints need of it.

Packets are cut out of the client's byte stream so a command can be looked at (and replaced)
whole; a packet of 16 MiB or more continues in the next ones and passes as raw pieces. The
ERR and OK packets are what a session answers with itself, in the server's stead.
`SessionIO` is what a proxied connection offers the session that follows it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from harness.emulator.fabric.toxics import Toxic
from harness.emulator.fault_grammar_mysql import MySqlError

COM_QUERY = 0x03
COM_CHANGE_USER = 0x11
COM_RESET_CONNECTION = 0x1F
MAX_PACKET = 0xFFFFFF  # a payload this long continues in the next packet: passed through untouched
CLIENT_COMPRESS = 0x20
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002


class SessionIO(Protocol):
    """What a MySQL session (and the quorum's semi-sync releaser) needs from the proxied connection
    it lives in: its event loop, both directions, and a look at other listeners' links."""

    loop: asyncio.AbstractEventLoop

    def to_server(self, data: bytes) -> None: ...

    def to_client(self, data: bytes) -> None: ...

    def hold_client(self, held: bool) -> None: ...

    def close(self) -> None: ...

    def toxics(self, listener: str) -> list[Toxic]: ...

    def reset_link(self, listener: str) -> int: ...


def query_packet(query: bytes) -> bytes | None:
    """A COM_QUERY packet (sequence 0) for `query`; None when it would need a second packet."""
    if len(query) + 1 >= MAX_PACKET:
        return None
    return (len(query) + 1).to_bytes(3, "little") + b"\x00" + bytes([COM_QUERY]) + query


class PacketFramer:
    """Cuts a byte stream into MySQL packets: yields (header, payload), or raw bytes of a packet
    too large to hold (16 MiB and more, which continue in later packets) as they come."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.passthrough = 0  # bytes of an oversized packet still to forward as they are

    def feed(self, data: bytes) -> list[bytes | tuple[bytes, bytes]]:
        self.buffer += data
        out: list[bytes | tuple[bytes, bytes]] = []
        while True:
            item = self.next()
            if item is None:
                return out
            out.append(item)

    def next(self) -> bytes | tuple[bytes, bytes] | None:
        """The next packet (or raw piece) in the buffer, None when it is not complete yet."""
        if self.passthrough:
            if not self.buffer:
                return None
            take = min(self.passthrough, len(self.buffer))
            piece = bytes(self.buffer[:take])
            del self.buffer[:take]
            self.passthrough -= take
            return piece
        if len(self.buffer) < 4:
            return None
        length = int.from_bytes(self.buffer[:3], "little")
        if length == MAX_PACKET:
            self.passthrough = 4 + length
            return self.next()
        if len(self.buffer) < 4 + length:
            return None
        header, payload = bytes(self.buffer[:4]), bytes(self.buffer[4:4 + length])
        del self.buffer[:4 + length]
        return header, payload


# --------------------------------------------------------------------------- packets we answer with


def _lenenc(value: int) -> bytes:
    if value < 251:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + value.to_bytes(2, "little")
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + value.to_bytes(8, "little")


def _packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def err_packet(error: MySqlError, seq: int = 1) -> bytes:
    """An ERR packet (protocol 4.1: with the SQLSTATE marker)."""
    message = error.message.encode("utf-8", "replace")[:4000]
    return _packet(seq, b"\xff" + error.code.to_bytes(2, "little") + b"#" + error.sqlstate.encode()[:5] + message)


def ok_packet(status: int, seq: int = 1) -> bytes:
    """An OK packet: no rows affected, no warnings, no info (valid with or without session tracking)."""
    return _packet(seq, b"\x00" + _lenenc(0) + _lenenc(0) + status.to_bytes(2, "little") + b"\x00\x00")
