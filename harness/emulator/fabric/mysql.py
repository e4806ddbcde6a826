"""Aurora MySQL's SQL surface on MariaDB, in the fabric's MySQL client endpoints.

MariaDB knows nothing of Aurora. The fabric knows which instance a client connection reached,
so its MySQL endpoints speak enough of the MySQL protocol to answer for Aurora:

* Aurora's own system variables: `@@aurora_server_id`, `@@aurora_version` and
  `@@innodb_read_only` (MariaDB keeps that one OFF on readers, since replication writes InnoDB)
  are replaced by this instance's values before MariaDB sees the query, and
  `SHOW [GLOBAL | SESSION] VARIABLES [LIKE ... | WHERE ...]` becomes a query over
  `information_schema` that lists them too (the AWS Advanced Python Wrapper recognises
  Aurora MySQL by `SHOW VARIABLES LIKE 'aurora_version'`).
* `information_schema.replica_host_status` becomes a derived table of the live topology: the
  members come with the route (republished on every topology change), the replica lag from
  the emulator at query time, so the wrapper's topology query works and is right after a
  failover.
* The fault-injection statements (`ALTER SYSTEM CRASH ...`, `ALTER SYSTEM SIMULATE ...`,
  `SHOW VOLUME STATUS`, parsed by `fault_grammar_mysql`) never reach MariaDB: the proxy
  checks the user is the master user (it read the user name in the handshake response), asks
  the emulator to inject the fault into the instance this connection reached, and answers
  with an OK or an ERR packet in MySQL's own words. The connection stays usable after an
  error; after a crash it is gone, as Aurora's would be.
* The cluster volume: MariaDB has no storage nodes, so the cluster's six storage nodes are
  virtual: fabric listeners that carry no bytes but take toxics (the engine-neutral
  `fault_injection` module puts its disk-failure stalls and disk-congestion delays there, the
  same toxics it puts on Aurora PostgreSQL's real storage-node links). A statement on the
  writer that makes a transaction durable (an autocommit INSERT/UPDATE/DELETE/REPLACE/LOAD,
  COMMIT of a transaction that wrote, DDL) is held before it reaches MariaDB until 4 of the 6
  nodes take writes again (a stalled or blackholed node does not; re-checked as toxics come,
  go and change phase), then for the 4th-fastest node's acknowledgement delay (latency,
  congestion): the Aurora 4-of-6 write quorum. One or two failed nodes change nothing; three
  stall commits until their interval ends; congestion on three or more raises commit latency
  into the band. Reads are not delayed (the proxy cannot tell buffer-cache misses), nor the
  statements of a transaction before its COMMIT.
* Replica failure on MariaDB: the emulator holds the failed readers' replication links; the
  proxy resets those links as each hold begins (`release_semi_sync`), so the writer's
  semi-synchronous replication stops waiting for them and its commits go on, as Aurora's do.

Only command packets (sequence number 0) are looked at; handshake and auth packets pass as
they are except that the user name is noted. Compressed and TLS sessions pass untouched
(the emulator offers neither). Everything here runs on the fabric's event loop; the only
waiting (the emulator's answer, a held commit) happens in tasks while the client's further
bytes wait in this session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.emulator.fabric.toxics import Toxic, stall_phase
from harness.emulator.fault_grammar_mysql import (
    ER_UNKNOWN_ERROR,
    Crash,
    DiskCongestion,
    DiskFailure,
    MySqlError,
    ReplicaFailure,
    ShowVolumeStatus,
    Statement,
    access_denied,
    is_fault_statement,
    parse,
    wrong_arguments,
)

log = logging.getLogger("fabric")

COM_QUERY = 0x03
COM_CHANGE_USER = 0x11
COM_RESET_CONNECTION = 0x1F
MAX_PACKET = 0xFFFFFF  # a payload this long continues in the next packet: passed through untouched
CLIENT_COMPRESS = 0x20
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
SERVER_STATUS_IN_TRANS = 0x0001
SERVER_STATUS_AUTOCOMMIT = 0x0002
SETTINGS_KEY = "aurora"  # the target's Aurora identity, next to its '@@variable' rewrites
EMULATOR_TIMEOUT_S = 120.0  # a crash restarts an engine before the emulator answers
SURFACE_TIMEOUT_S = 3.0
CRASH_WAIT_S = 10.0  # how long a crashing session waits for the emulator to reset it
QUORUM_RECHECK_S = 0.05  # a held commit re-checks the storage nodes this often while the quorum is lost
RNG = random.Random()


# --------------------------------------------------------------------------- system variables


def _pattern(names: list[bytes]) -> re.Pattern[bytes]:
    # Longest names first, and no word character after: @@aurora_version must not eat @@aurora_version_x.
    alternatives = b"|".join(re.escape(n[2:]) for n in sorted(names, key=len, reverse=True))
    return re.compile(rb"(?i)@@(?:(?:global|session|local)\.)?(" + alternatives + rb")(?![\w$])")


class QueryRewriter:
    """Replaces Aurora's system variables in COM_QUERY packets by this instance's values.

    `feed` takes the client's bytes and returns them ready to forward; a packet split across
    reads is held until it is complete, so what it returns always ends on a packet boundary.
    """

    def __init__(self, replacements: dict[str, str]):
        self.values = {name.lower()[2:].encode(): value.encode() for name, value in replacements.items()
                       if name.startswith("@@")}
        self.pattern = _pattern([b"@@" + n for n in self.values]) if self.values else None
        self.framer = PacketFramer()

    def rewrite(self, query: bytes) -> bytes:
        if self.pattern is None:
            return query
        return self.pattern.sub(lambda m: self.values[m.group(1).lower()], query)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for item in self.framer.feed(data):
            if isinstance(item, bytes):
                out += item
            else:
                header, payload = item
                out += self._packet(header, payload)
        return bytes(out)

    def _packet(self, header: bytes, payload: bytes) -> bytes:
        if header[3] != 0 or not payload or payload[0] != COM_QUERY:
            return header + payload
        return query_packet(self.rewrite(payload[1:])) or header + payload


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


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AuroraSettings:
    """What a client endpoint knows of the instance behind a target (published with the route)."""

    region: str
    cluster: str
    instance: str
    master_user: str
    writer: str  # the cluster's writer
    members: tuple[str, ...]  # every instance of the cluster
    version: str  # e.g. 3.05.2
    storage_links: tuple[str, ...] = ()  # fabric listeners standing for the volume's storage nodes
    quorum: int = 4  # storage nodes that must take a write
    disks: int = 6  # SHOW VOLUME STATUS when the emulator does not answer
    nodes: int = 6

    @property
    def is_writer(self) -> bool:
        return self.instance == self.writer

    @staticmethod
    def from_json(raw: dict[str, Any]) -> AuroraSettings:
        try:
            return AuroraSettings(region=str(raw["region"]), cluster=str(raw["cluster"]),
                                  instance=str(raw["instance"]), master_user=str(raw["master_user"]),
                                  writer=str(raw.get("writer") or ""), members=tuple(map(str, raw.get("members", ()))),
                                  version=str(raw.get("version", "")),
                                  storage_links=tuple(map(str, raw.get("storage_links", ()))),
                                  quorum=int(raw.get("quorum", 4)), disks=int(raw.get("disks", 6)),
                                  nodes=int(raw.get("nodes", 6)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad Aurora settings {raw!r}: {exc}") from None


def parse_rewrite(raw: object, target: str) -> tuple[tuple[str, str], ...]:
    """Validate a target's `rewrite` object: '@@variable' -> SQL literal, plus optionally
    'aurora' -> settings (kept as canonical JSON so the target stays hashable)."""
    if not raw:
        return ()
    if not isinstance(raw, dict):
        raise ValueError(f"target {target!r}: 'rewrite' must be an object")  # noqa: TRY004 - a 400 answer
    out = []
    for key, value in raw.items():
        if key == SETTINGS_KEY:
            if not isinstance(value, dict):
                raise ValueError(f"target {target!r}: 'rewrite.{SETTINGS_KEY}' must be an object")
            AuroraSettings.from_json(value)
            out.append((key, json.dumps(value, sort_keys=True)))
        elif isinstance(key, str) and key.startswith("@@") and isinstance(value, str):
            out.append((key, value))
        else:
            raise ValueError(f"target {target!r}: 'rewrite' must map '@@variable' names to SQL literals "
                             f"(and '{SETTINGS_KEY}' to the instance's settings)")
    return tuple(sorted(out))


# --------------------------------------------------------------------------- the cluster volume


def node_acknowledges(toxics: list[Toxic], now: float, rng: random.Random) -> tuple[float, float]:
    """When a virtual storage node acknowledges a write sent at `now`: (held until, then delay).

    `held until` is when the node takes writes again (`now` if it does; inf while a blackhole,
    a zero bandwidth or a 100% stall is on it: only removing the toxic frees it); `delay` is
    how long it then takes (latency, congestion).
    """
    held, delay = now, 0.0
    for toxic in toxics:
        if toxic.toxicity < 1.0 and rng.random() >= toxic.toxicity:
            continue
        attrs = toxic.attributes
        if toxic.type == "blackhole" or (toxic.type == "bandwidth" and attrs["rate_kbps"] == 0):
            held = math.inf
        elif toxic.type == "stall":
            stalled, change = stall_phase(toxic, now)
            if stalled:
                held = max(held, change)
        elif toxic.type == "latency":
            delay += attrs["latency_ms"] / 1000.0
        elif toxic.type == "congestion" and rng.random() * 100.0 < attrs["percent"]:
            delay += rng.uniform(attrs["min_ms"], attrs["max_ms"]) / 1000.0
    return held, delay


def quorum_wait(nodes: list[list[Toxic]], quorum: int, now: float, rng: random.Random) -> tuple[float, float]:
    """(held until, delay) for a write: the `quorum`-th node to take it, and its acknowledgement delay.

    While fewer than `quorum` nodes take writes, the write is held until enough do again;
    once they do, it is acknowledged when the `quorum`-th fastest of them answers.
    """
    if len(nodes) < quorum:
        return now, 0.0
    answers = [node_acknowledges(toxics, now, rng) for toxics in nodes]
    held = sorted(h for h, _ in answers)[quorum - 1]
    if held > now:
        return held, 0.0
    delays = sorted(d for h, d in answers if h <= now)
    return now, delays[quorum - 1]


# --------------------------------------------------------------------------- the emulator, seen from here


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


# --------------------------------------------------------------------------- SQL rewriting

_LEADING = re.compile(r"(?:\s+|/\*(?!!).*?\*/|--[ \t][^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|\()*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")
_SHOW_VARIABLES = re.compile(
    r"""(?is)\s*SHOW\s+(?:(?P<scope>GLOBAL|SESSION|LOCAL)\s+)?VARIABLES
        (?:\s+LIKE\s+(?P<like>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")|\s+WHERE\s+(?P<where>.+?))?
        \s*;?\s*$""", re.VERBOSE)
_REPLICA_HOST_STATUS = re.compile(r"(?i)`?information_schema`?\s*\.\s*`?replica_host_status`?(?![\w$])")
_REPLICA_HOST_STATUS_BYTES = re.compile(rb"(?i)`?information_schema`?\s*\.\s*`?replica_host_status`?(?![\w$])")
_SHOW_HEAD = re.compile(r"(?i)\s*SHOW\s")
HEAD_BYTES = 512  # how much of a query is decoded to tell what it is
HOLD_BUFFER = 1 << 20  # while a statement waits, stop reading the client past this much
_ALIAS_FOLLOWS = re.compile(r"(?is)\s+(?:AS\s+)?(?!(?:WHERE|ORDER|GROUP|LIMIT|JOIN|INNER|LEFT|RIGHT|CROSS|NATURAL|"
                            r"STRAIGHT_JOIN|ON|USING|UNION|HAVING|WINDOW|FOR|LOCK|INTO|PROCEDURE|EXCEPT|"
                            r"INTERSECT|FULL|OUTER)(?![\w$]))[A-Za-z_`$]")
WRITE_STATEMENTS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"})
DDL_STATEMENTS = frozenset({"CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "GRANT", "REVOKE"})
REPLICA_HOST_STATUS_COLUMNS = ("SERVER_ID", "SESSION_ID", "IOPS", "READ_IOS", "PENDING_READ_IOS", "CPU",
                               "STORAGE_NETWORK_LATENCY", "MASTER_SLAVE_LATENCY_IN_MICROSECONDS",
                               "REPLICA_LAG_IN_MILLISECONDS", "LOG_STREAM_SPEED_IN_KiB_PER_SECOND",
                               "CURRENT_REPLAY_LATENCY_IN_MICROSECONDS", "LAST_UPDATE_TIMESTAMP", "IS_CURRENT")
MASTER_SESSION_ID = "MASTER_SESSION_ID"


def first_words(sql: str, count: int = 2) -> list[str]:
    """The statement's first keywords, upper case, after comments, blanks and parentheses."""
    start = _LEADING.match(sql)
    return [w.upper() for w in _WORD.findall(sql, start.end() if start else 0, (start.end() if start else 0) + 64)[
        :count]]


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _like(pattern: str, name: str) -> bool:
    """SQL LIKE (case-insensitive, backslash escapes), for deciding whether to touch a SHOW."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        elif ch == "%":
            regex += ".*"
        elif ch == "_":
            regex += "."
        else:
            regex += re.escape(ch)
        i += 1
    return re.fullmatch(regex, name, re.IGNORECASE | re.DOTALL) is not None


def aurora_variables(settings: AuroraSettings) -> dict[str, str]:
    """Aurora MySQL's variables as SHOW VARIABLES lists them for this instance."""
    return {"aurora_server_id": settings.instance, "aurora_version": settings.version,
            "innodb_read_only": "OFF" if settings.is_writer else "ON"}


def show_variables(sql: str, variables: dict[str, str]) -> str | None:
    """SHOW VARIABLES rewritten to include Aurora's variables; None when it can list none of them."""
    match = _SHOW_VARIABLES.fullmatch(sql)
    if match is None:
        return None
    like = match.group("like")
    if like is not None:
        pattern = like[1:-1].replace(like[0] * 2, like[0])
        if not any(_like(pattern, name) for name in variables):
            return None
    table = "GLOBAL_VARIABLES" if (match.group("scope") or "").upper() == "GLOBAL" else "SESSION_VARIABLES"
    names = ", ".join(_literal(n) for n in variables)
    ours = " ".join(f"UNION ALL SELECT {_literal(n)}, {_literal(v)}" for n, v in variables.items())
    condition = f"Variable_name LIKE {like}" if like is not None else match.group("where") or "TRUE"
    return (f"SELECT Variable_name, Value FROM (SELECT LOWER(VARIABLE_NAME) AS Variable_name, "
            f"VARIABLE_VALUE AS Value FROM information_schema.{table} WHERE LOWER(VARIABLE_NAME) NOT IN ({names}) "
            f"{ours}) AS variables WHERE {condition} ORDER BY Variable_name")


def session_id(instance: str) -> str:
    """A reader's SESSION_ID: stable per instance, UUID-shaped as on Aurora."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aurora-gameday:{instance}"))


def replica_host_status_sql(rows: list[dict[str, Any]]) -> str:
    """information_schema.replica_host_status as a derived table of `rows`.

    Each row: server_id, is_writer, replica_lag_ms, cpu. LAST_UPDATE_TIMESTAMP is the server's
    NOW(6): the emulator's numbers are taken at query time.
    """
    selects = []
    for row in rows:
        lag = 0.0 if row["is_writer"] else float(row.get("replica_lag_ms") or 0.0)
        values = {
            "SERVER_ID": _literal(row["server_id"]),
            "SESSION_ID": _literal(MASTER_SESSION_ID if row["is_writer"] else session_id(row["server_id"])),
            "IOPS": "CAST(0 AS DOUBLE)", "READ_IOS": "CAST(0 AS UNSIGNED)", "PENDING_READ_IOS": "CAST(0 AS UNSIGNED)",
            "CPU": f"CAST({float(row.get('cpu') or 0.0)!r} AS DOUBLE)",
            "STORAGE_NETWORK_LATENCY": "CAST(0 AS DOUBLE)",
            "MASTER_SLAVE_LATENCY_IN_MICROSECONDS": f"CAST({int(lag * 1000)} AS SIGNED)",
            "REPLICA_LAG_IN_MILLISECONDS": f"CAST({lag!r} AS DOUBLE)",
            "LOG_STREAM_SPEED_IN_KiB_PER_SECOND": "CAST(0 AS DOUBLE)",
            "CURRENT_REPLAY_LATENCY_IN_MICROSECONDS": "CAST(0 AS SIGNED)",
            "LAST_UPDATE_TIMESTAMP": "NOW(6)",
            "IS_CURRENT": "1",
        }
        selects.append("SELECT " + ", ".join(f"{values[c]} AS {c}" for c in REPLICA_HOST_STATUS_COLUMNS))
    if not selects:
        selects.append("SELECT " + ", ".join(f"NULL AS {c}" for c in REPLICA_HOST_STATUS_COLUMNS) + " FROM DUAL "
                       "WHERE FALSE")
    return "(" + " UNION ALL ".join(selects) + ")"


def substitute_replica_host_status(sql: str, table: str) -> str:
    """Every `information_schema.replica_host_status` in `sql` replaced by the derived `table`."""
    out, position = [], 0
    for match in _REPLICA_HOST_STATUS.finditer(sql):
        out.append(sql[position:match.start()])
        out.append(table)
        if not _ALIAS_FOLLOWS.match(sql, match.end()):
            out.append(" AS replica_host_status")
        position = match.end()
    out.append(sql[position:])
    return "".join(out)


# --------------------------------------------------------------------------- replica failure on MariaDB

RELEASERS: dict[str, asyncio.Task[None]] = {}  # replication link -> its release_semi_sync task
RELEASE_POLL_S = 0.5


async def release_semi_sync(io: SessionIO, link: str) -> None:
    """While a stall toxic holds a MariaDB reader's link, reset the link as each hold begins.

    MariaDB's semi-synchronous replication (the emulator's stand-in for Aurora's storage
    quorum) holds every commit on the writer while all its readers' links are held, which
    Aurora's writer never does for a replica failure. A reset makes the reader reconnect
    through the held link: until the hold ends it is no semi-sync replica, so the writer
    commits without it (`rpl_semi_sync_master_wait_no_slave = OFF`) while its lag grows; when
    the link passes again it catches up from its GTID position and acknowledges again.
    """
    try:
        while True:
            stalls = [t for t in io.toxics(link) if t.type == "stall" and t.attributes["percent"] > 0]
            if not stalls:
                return
            now = time.monotonic()
            held, change = stall_phase(stalls[0], now)
            if held:
                io.reset_link(link)
                if change == math.inf:  # held until the toxic goes: look again now and then
                    while any(t.uid == stalls[0].uid for t in io.toxics(link)):
                        await asyncio.sleep(RELEASE_POLL_S)
                    continue
                await asyncio.sleep(change - now + 0.002)  # to the end of this hold
                now = time.monotonic()
                held, change = stall_phase(stalls[0], now)
            await asyncio.sleep(max(change - now, 0.001) if change < math.inf else RELEASE_POLL_S)
    finally:
        if RELEASERS.get(link) is asyncio.current_task():
            del RELEASERS[link]


# --------------------------------------------------------------------------- a client session


class SessionIO(Protocol):
    """What a session needs from the proxied connection it lives in."""

    loop: asyncio.AbstractEventLoop

    def to_server(self, data: bytes) -> None: ...

    def to_client(self, data: bytes) -> None: ...

    def hold_client(self, held: bool) -> None: ...

    def close(self) -> None: ...

    def toxics(self, listener: str) -> list[Toxic]: ...

    def reset_link(self, listener: str) -> int: ...


Outcome = list[tuple[str, bytes]]  # ("server" | "client" | "close", bytes)


class MySqlSession:
    """One client connection to a MySQL endpoint, as the proxy follows it."""

    def __init__(self, rewrite: dict[str, str], io: SessionIO, controller: Controller | None = None):
        raw = rewrite.get(SETTINGS_KEY)
        self.settings = AuroraSettings.from_json(json.loads(raw)) if raw else None
        self.rewriter = QueryRewriter(rewrite)
        self.io = io
        self.controller = controller or CONTROLLER
        self.framer = PacketFramer()
        self.raw = False  # TLS or compression: nothing more to understand
        self.busy: asyncio.Task[None] | None = None
        self.holding = False  # the client's reading is paused (too much arrived while busy)
        self.closed = False
        self.user: str | None = None
        self.server_caps = 0
        self.client_caps = 0
        self.greeted = False
        self.status = SERVER_STATUS_AUTOCOMMIT
        self.dirty = False  # the open transaction wrote
        self.awaiting = False  # the next server packet starts the answer to a query we forwarded
        self.answer = bytearray()

    # -- the client's bytes
    def from_client(self, data: bytes) -> None:
        if self.raw:
            self.io.to_server(data)
            return
        self.framer.buffer += data
        if self.busy is not None:
            # A statement is waiting (the emulator, a held commit): what follows waits here; the
            # client is read on (so its hanging up is seen) unless it sends a lot meanwhile.
            if len(self.framer.buffer) > HOLD_BUFFER and not self.holding:
                self.holding = True
                self.io.hold_client(True)
            return
        self._drain()

    def _drain(self) -> None:
        out = bytearray()
        while self.busy is None and not self.closed and not self.raw:
            item = self.framer.next()
            if item is None:
                break
            if isinstance(item, bytes):
                out += item
                continue
            header, payload = item
            result = self._client_packet(header, payload)
            if isinstance(result, bytes):
                out += result
            else:
                if out:
                    self.io.to_server(bytes(out))
                    out.clear()
                self._wait_for(result)
        if self.raw and self.framer.buffer:
            out += self.framer.buffer
            self.framer.buffer.clear()
        if out:
            self.io.to_server(bytes(out))

    def _wait_for(self, work: Awaitable[Outcome]) -> None:
        self.busy = self.io.loop.create_task(self._finish(work))

    async def _finish(self, work: Awaitable[Outcome]) -> None:
        try:
            outcome = await work
        except Exception as exc:  # a bug here must not hang the client
            log.exception("MySQL session: intercepted statement failed")
            outcome = [("client", err_packet(MySqlError(ER_UNKNOWN_ERROR, "HY000", f"emulator error: {exc}")))]
        self.busy = None
        if self.closed:
            return
        for where, data in outcome:
            if self.closed:
                return
            if where == "server":
                self._forwarding_query()
                self.io.to_server(data)
            elif where == "client":
                self.io.to_client(data)
            else:
                self.closed = True
                self.io.close()
                return
        if self.holding:
            self.holding = False
            self.io.hold_client(False)
        self._drain()

    def _client_packet(self, header: bytes, payload: bytes) -> bytes | Awaitable[Outcome]:
        seq = header[3]
        if seq != 0:
            if seq == 1 and self.user is None and self.greeted:
                self._handshake_response(payload)
            return header + payload
        if not payload:
            return header + payload
        command = payload[0]
        if command == COM_CHANGE_USER:
            self.user = payload[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
            self.status, self.dirty = SERVER_STATUS_AUTOCOMMIT, False
        elif command == COM_RESET_CONNECTION:
            self.status, self.dirty = SERVER_STATUS_AUTOCOMMIT, False
        if command != COM_QUERY:
            return header + payload
        return self._query(header, payload)

    def _handshake_response(self, payload: bytes) -> None:
        if len(payload) < 4:
            return
        caps = int.from_bytes(payload[:4], "little")
        self.client_caps = caps
        if not caps & CLIENT_PROTOCOL_41 or (caps & CLIENT_SSL):
            self.raw = True  # TLS (SSLRequest) or a pre-4.1 client
            return
        if caps & self.server_caps & CLIENT_COMPRESS:
            self.raw = True  # everything after the handshake is compressed
        end = payload.find(b"\0", 32)
        self.user = payload[32:end if end >= 0 else len(payload)].decode("utf-8", "replace")

    # -- queries
    def _query(self, header: bytes, payload: bytes) -> bytes | Awaitable[Outcome]:
        """Classify a query by its start (every query passes here: no full decode unless needed)."""
        query = payload[1:]
        head = query[:HEAD_BYTES].decode("utf-8", "replace")
        settings = self.settings
        if settings is not None:
            try:
                statement = parse(head if len(query) <= HEAD_BYTES else query.decode("utf-8", "replace")) \
                    if is_fault_statement(head) else None
            except MySqlError as error:
                return self._reply(err_packet(error))
            if statement is not None:
                return self._fault(statement, settings)
            if _SHOW_HEAD.match(head):
                rewritten = show_variables(query.decode("utf-8", "surrogateescape"), aurora_variables(settings))
                if rewritten is not None:
                    return self._forward(rewritten.encode("utf-8", "surrogateescape"), head)
            if _REPLICA_HOST_STATUS_BYTES.search(query):
                return self._with_topology(query.decode("utf-8", "surrogateescape"), settings)
        return self._forward(query, head, header + payload)

    def _reply(self, packet: bytes) -> Awaitable[Outcome]:
        async def now() -> Outcome:
            return [("client", packet)]
        return now()

    def _forward(self, query: bytes, head: str, original: bytes | None = None) -> bytes | Awaitable[Outcome]:
        """The query on its way to MariaDB: variables rewritten, a commit held by the cluster volume."""
        packet = query_packet(self.rewriter.rewrite(query)) or original
        if packet is None:
            return self._reply(err_packet(MySqlError(1153, "08S01", "Got a packet bigger than 'max_allowed_packet' "
                                                                    "bytes")))
        if self._commits(head) and self._volume_delays():
            return self._held(packet)
        self._forwarding_query()
        return packet

    def _forwarding_query(self) -> None:
        self.awaiting = True
        self.answer.clear()

    def _commits(self, head: str) -> bool:
        """Does this statement (its first characters), on the writer, make a transaction durable?"""
        settings = self.settings
        if settings is None or not settings.is_writer or not settings.storage_links:
            return False
        words = first_words(head)
        head = words[0] if words else ""
        if head == "COMMIT" or words == ["XA", "COMMIT"]:
            return self.dirty
        if head in DDL_STATEMENTS:
            return True
        if head in WRITE_STATEMENTS:
            if self.status & SERVER_STATUS_AUTOCOMMIT and not self.status & SERVER_STATUS_IN_TRANS:
                return True
            self.dirty = True
        return False

    def _storage_nodes(self) -> list[list[Toxic]]:
        assert self.settings is not None
        return [self.io.toxics(link) for link in self.settings.storage_links]

    def _volume_delays(self) -> bool:
        return any(self._storage_nodes())

    async def _held(self, packet: bytes) -> Outcome:
        """Wait for the write quorum: while it is lost (re-checked as toxics come and go), then for
        the acknowledgement delay of the quorum's slowest node."""
        assert self.settings is not None
        while True:
            now = time.monotonic()
            held, delay = quorum_wait(self._storage_nodes(), self.settings.quorum, now, RNG)
            if held <= now:
                break
            await asyncio.sleep(min(held - now, QUORUM_RECHECK_S))
        if delay > 0:
            await asyncio.sleep(delay)
        return [("server", packet)]

    def _with_topology(self, sql: str, settings: AuroraSettings) -> Awaitable[Outcome]:
        async def fetch() -> Outcome:
            rows = await self._topology(settings)
            rewritten = substitute_replica_host_status(sql, replica_host_status_sql(rows))
            query = self.rewriter.rewrite(rewritten.encode("utf-8", "surrogateescape"))
            packet = query_packet(query)
            if packet is None:
                return [("client", err_packet(MySqlError(1153, "08S01", "Got a packet bigger than "
                                                                        "'max_allowed_packet' bytes")))]
            return [("server", packet)]
        return fetch()

    async def _topology(self, settings: AuroraSettings) -> list[dict[str, Any]]:
        """The live topology from the emulator (instances that are up, their lag and CPU); when it
        does not answer in time, the members the route was published with, without lag."""
        try:
            surface = await self.controller.call("aurora_surface", SURFACE_TIMEOUT_S, region=settings.region,
                                                 instance=settings.instance, parts=["replica_status"])
            rows = replica_rows(surface)
        except Exception as exc:  # noqa: BLE001 - the emulator is busy or gone: the published topology
            log.debug("aurora_surface for %s failed: %s", settings.instance, exc)
            rows = []
        if not rows:
            rows = [{"server_id": m, "is_writer": m == settings.writer} for m in settings.members]
        return sorted(rows, key=lambda row: (not row["is_writer"], row["server_id"]))

    # -- fault injection
    def _fault(self, statement: Statement, settings: AuroraSettings) -> Awaitable[Outcome]:
        if isinstance(statement, ShowVolumeStatus):
            return self._volume_status(settings)
        if self.user != settings.master_user:
            return self._reply(err_packet(access_denied()))
        return self._inject(statement, settings)

    async def _volume_status(self, settings: AuroraSettings) -> Outcome:
        """Disks and Nodes, as the emulator's volume has them (the route's numbers if it is busy)."""
        disks, nodes = settings.disks, settings.nodes
        try:
            surface = await self.controller.call("aurora_surface", SURFACE_TIMEOUT_S, region=settings.region,
                                                 instance=settings.instance, parts=["volume_status"])
            disks, nodes = int(surface["volume_status"]["disks"]), int(surface["volume_status"]["nodes"])
        except Exception as exc:  # noqa: BLE001 - the emulator is busy or gone: the route's numbers
            log.debug("aurora_surface for %s failed: %s", settings.instance, exc)
        sql = f"SELECT 'Disks' AS Variable_name, '{disks}' AS Value UNION ALL SELECT 'Nodes', '{nodes}'"
        return [("server", query_packet(sql.encode()) or b"")]

    async def _inject(self, statement: Statement, settings: AuroraSettings) -> Outcome:
        """Ask the emulator for the fault; OK, or an ERR in MySQL's words; a crash ends the session."""
        faults = [statement.fault()]
        if isinstance(statement, (DiskFailure, DiskCongestion)) and statement.index is None:
            # The whole volume: every storage node (the emulator takes one index per fault).
            faults = [{**faults[0], "index": node, "is_disk": False} for node in range(len(settings.storage_links)
                                                                                          or settings.nodes)]
        try:
            for fault in faults:
                answer = await self.controller.call("inject", EMULATOR_TIMEOUT_S, region=settings.region,
                                                    instance=settings.instance, fault=fault)
                if isinstance(statement, ReplicaFailure):
                    self._restart_replication(answer)
        except LookupError as exc:  # the emulator refused the arguments
            message = str(exc).strip("'\"")
            error = MySqlError(ER_UNKNOWN_ERROR, "HY000", message) if isinstance(statement, Crash) \
                else wrong_arguments(message)
            return [("client", err_packet(error))]
        except (TimeoutError, ConnectionError, OSError) as exc:
            return [("client", err_packet(MySqlError(ER_UNKNOWN_ERROR, "HY000",
                                                     f"fault injection is unavailable: {exc or type(exc).__name__}")))]
        if isinstance(statement, Crash):
            # The server dies under the query: the crash resets this connection (the emulator
            # drops the instance's connections), so the client learns of it no earlier than it
            # happens. Should that not come, the connection still ends.
            await asyncio.sleep(CRASH_WAIT_S)
            return [("close", b"")]
        return [("client", ok_packet(self.status))]

    def _restart_replication(self, answer: Any) -> None:
        """Keep the writer from waiting for the failed replicas (see `release_semi_sync`)."""
        fault = answer.get("fault") if isinstance(answer, dict) else None
        for link in (fault or {}).get("links", []):
            self.io.reset_link(link)  # now, before the client hears OK and writes
            task = RELEASERS.get(link)
            if task is None or task.done():
                RELEASERS[link] = self.io.loop.create_task(release_semi_sync(self.io, link))

    def shutdown(self) -> None:
        """The connection is gone: stop whatever was still waiting for it."""
        self.closed = True
        if self.busy is not None:
            self.busy.cancel()
            self.busy = None

    # -- the server's bytes (observed, never changed)
    def from_server(self, data: bytes) -> None:
        if self.raw:
            return
        if not self.greeted:
            self.answer += data
            if len(self.answer) >= 4 and len(self.answer) >= 4 + int.from_bytes(self.answer[:3], "little"):
                self._greeting(bytes(self.answer[4:4 + int.from_bytes(self.answer[:3], "little")]))
                self.greeted = True
                self.answer.clear()
            return
        if not self.awaiting:
            return
        self.answer += data
        if len(self.answer) < 5:
            return
        length = int.from_bytes(self.answer[:3], "little")
        if self.answer[4] != 0x00 or length > 1024:
            self.awaiting = False  # a result set or an error: the status is not worth following
            return
        if len(self.answer) < 4 + length:
            return
        self.awaiting = False
        self._ok(bytes(self.answer[5:4 + length]))

    def _greeting(self, payload: bytes) -> None:
        """Protocol 10 handshake: the server's capabilities and initial status."""
        try:
            end = payload.index(b"\0", 1)
            rest = payload[end + 1:]
            caps = int.from_bytes(rest[13:15], "little")
            if len(rest) >= 20:
                self.status = int.from_bytes(rest[16:18], "little")
                caps |= int.from_bytes(rest[18:20], "little") << 16
            self.server_caps = caps
        except (ValueError, IndexError):
            pass

    def _ok(self, body: bytes) -> None:
        """An OK packet's status flags: autocommit and whether a transaction is open."""
        position = 0
        for _ in range(2):  # affected rows, last insert id
            if position >= len(body):
                return
            first = body[position]
            position += {0xFC: 3, 0xFD: 4, 0xFE: 9}.get(first, 1)
        if position + 2 > len(body):
            return
        self.status = int.from_bytes(body[position:position + 2], "little")
        if not self.status & SERVER_STATUS_IN_TRANS:
            self.dirty = False


def replica_rows(surface: Any) -> list[dict[str, Any]]:
    """(server_id, is_writer, replica_lag_ms, cpu) from the emulator's `aurora_surface` answer."""
    rows = surface.get("replica_status") if isinstance(surface, dict) else None
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("server_id"):
            out.append({"server_id": str(row["server_id"]), "is_writer": row.get("session_id") == MASTER_SESSION_ID,
                        "replica_lag_ms": float(row.get("replica_lag_in_msec") or 0.0),
                        "cpu": float(row.get("cpu") or 0.0)})
    return out
