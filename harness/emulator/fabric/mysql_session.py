"""One client connection to a MySQL endpoint, as the fabric's proxy follows it.

The session sees the client's packets on their way to MariaDB and the server's answers on
their way back (observed, never changed). It classifies each query by its first characters:
Aurora's SQL surface is rewritten (`mysql_surface`), a commit on the writer waits for the
write quorum (`mysql_quorum`), and the fault-injection statements (`ALTER SYSTEM CRASH ...`,
`ALTER SYSTEM SIMULATE ...`, `SHOW VOLUME STATUS`, parsed by `fault_grammar_mysql`) never
reach MariaDB: the proxy checks the user is the master user (it read the user name in the
handshake response), asks the emulator to inject the fault into the instance this connection
reached, and answers with an OK or an ERR packet in MySQL's own words. The connection stays
usable after an error; after a crash it is gone, as Aurora's would be.

A connection starts in the fabric's C pump, which forwards every packet until one of them
needs this session: a COM_QUERY that mentions one of `pump_needles` (the Aurora variables the
route rewrites, or `INTERCEPT_WORDS`) or a COM_CHANGE_USER; or until the writer's volume has
toxics (a commit may then be held). The pump then hands the connection back with what it
learnt (`resume`) and the session follows it; after `REPUMP_AFTER` commands in a row that the
pump would have passed, with nothing waiting here, the fabric gives it to the pump again
(`pump_state`).

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
import random
import re
import time
from collections.abc import Awaitable
from typing import Any

from harness.emulator.fabric.controller import CONTROLLER, Controller
from harness.emulator.fabric.mysql_protocol import (
    CLIENT_COMPRESS,
    CLIENT_PROTOCOL_41,
    CLIENT_SSL,
    COM_CHANGE_USER,
    COM_QUERY,
    COM_RESET_CONNECTION,
    SERVER_STATUS_AUTOCOMMIT,
    SERVER_STATUS_IN_TRANS,
    PacketFramer,
    SessionIO,
    err_packet,
    ok_packet,
    query_packet,
)
from harness.emulator.fabric.mysql_quorum import (
    RELEASERS,
    quorum_wait,
    release_semi_sync,
)
from harness.emulator.fabric.mysql_settings import SETTINGS_KEY, AuroraSettings
from harness.emulator.fabric.pump import Resumed
from harness.emulator.fabric.mysql_surface import (
    GLOBAL_TABLES_BYTES,
    GLOBAL_VIEW_BYTES,
    REPLICA_HOST_STATUS_BYTES,
    SURFACE_PART,
    global_view_sql,
    global_views_in,
    substitute_global_views,
    substitute_tables,
    RDS_TOPOLOGY_BYTES,
    rds_topology_sql,
    substitute_rds_topology,
    QueryRewriter,
    aurora_variables,
    replica_host_status_sql,
    replica_rows,
    show_variables,
    substitute_replica_host_status,
)
from harness.emulator.fabric.toxics import Toxic
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

EMULATOR_TIMEOUT_S = 120.0  # a crash restarts an engine before the emulator answers
SURFACE_TIMEOUT_S = 3.0
GLOBAL_SURFACE_TIMEOUT_S = 20.0  # the global views read every Region's instances: slower on a busy machine
CRASH_WAIT_S = 10.0  # how long a crashing session waits for the emulator to reset it
QUORUM_RECHECK_S = 0.05  # a held commit re-checks the storage nodes this often while the quorum is lost
RNG = random.Random()

# What a query is, told from its first characters.
_LEADING = re.compile(r"(?:\s+|/\*(?!!).*?\*/|--[ \t][^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|\()*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")
_SHOW_HEAD = re.compile(r"(?i)\s*SHOW\s")
_TABLES_MENTIONED = re.compile(r"(?i)information_schema`?\s*\.\s*`?tables\b")
HEAD_BYTES = 512  # how much of a query is decoded to tell what it is
REPUMP_AFTER = 8  # plain commands in a row before a connection goes back to the C pump (no ping-pong)
OBSERVED_LIMIT = 4 + 1024  # the most of an awaited answer the pump keeps (pump.c MY_OBSERVED)
HOLD_BUFFER = 1 << 20  # while a statement waits, stop reading the client past this much
WRITE_STATEMENTS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"})
DDL_STATEMENTS = frozenset({"CREATE", "DROP", "ALTER", "TRUNCATE", "RENAME", "GRANT", "REVOKE"})


# Words whose mention in a query (any case, anywhere) sends the connection to this session: a
# superset of what `_query` acts on besides the rewritten variables (`SHOW ... VARIABLES`,
# `information_schema.replica_host_status`, the Global Database views `aurora_global_db_*`,
# Blue/Green's `mysql.rds_topology`, `ALTER SYSTEM ...` and `SHOW VOLUME STATUS`).
INTERCEPT_WORDS = ("variables", "replica_host_status", "aurora_global_db_", "system", "volume", "rds_topology")
_NEEDLE = re.compile(r"[a-z0-9_$]+")


def pump_needles(rewrite: dict[str, str]) -> list[str]:
    """What the C pump scans client queries for, for a target with these rewrites: the
    rewritten variables' names (without @@: also matches `@@session.name`) and INTERCEPT_WORDS."""
    names = [name[2:].lower() for name in rewrite if name.startswith("@@")]
    words = [n for n in names if _NEEDLE.fullmatch(n)] + list(INTERCEPT_WORDS)
    if len(words) < len(names) + len(INTERCEPT_WORDS):
        raise ValueError(f"a variable name the pump cannot scan for: {names}")
    return words


def first_words(sql: str, count: int = 2) -> list[str]:
    """The statement's first keywords, upper case, after comments, blanks and parentheses."""
    start = _LEADING.match(sql)
    return [w.upper() for w in _WORD.findall(sql, start.end() if start else 0, (start.end() if start else 0) + 64)[
        :count]]


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
        self.response = b""  # the handshake response, for the pump (which hands it back with the connection)
        self.needles = [w.encode() for w in pump_needles(rewrite)]
        self.plain = 0  # commands in a row that the pump would have passed

    def resume(self, *, greeted: bool, awaiting: bool, status: int, server_caps: int, answer: bytes,
               response: bytes) -> None:
        """Go on where the C pump stopped following this connection (see `pump.Handback`).

        The pump keeps no note of which statements wrote, so an open transaction counts as
        one that wrote: its COMMIT waits for the volume's quorum while toxics are on it.
        """
        self.greeted, self.status, self.server_caps = greeted, status, server_caps
        self.plain = 0
        if response:
            self._handshake_response(response)
        self.dirty = bool(status & SERVER_STATUS_IN_TRANS)
        self.awaiting = awaiting
        self.answer = bytearray(answer)

    def repumpable(self) -> bool:
        """May the C pump carry this connection again: nothing waits here, nothing half read, and
        the last REPUMP_AFTER commands were ones it would have passed?"""
        return (self.plain >= REPUMP_AFTER and self.busy is None and not self.closed and not self.raw
                and self.greeted and self.user is not None and not self.framer.buffer
                and not self.framer.passthrough)

    def pump_state(self) -> Resumed:
        """What the pump needs to follow this connection and hand it back later."""
        answer = bytes(self.answer[:OBSERVED_LIMIT]) if self.awaiting else b""
        return Resumed(self.greeted, self.awaiting, self.status, self.server_caps, answer, self.response)

    def _pump_passes(self, payload: bytes) -> bool:
        """Would the C pump pass this command packet (pump.c needs_python)?"""
        if payload[0] == COM_CHANGE_USER:
            return False
        if payload[0] != COM_QUERY:
            return True
        text = payload[1:].lower()
        return not any(needle in text for needle in self.needles)

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
            self.plain += 1
            return header + payload
        self.plain = self.plain + 1 if self._pump_passes(payload) else 0
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
        self.response = payload

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
            if REPLICA_HOST_STATUS_BYTES.search(query):
                return self._with_topology(query.decode("utf-8", "surrogateescape"), settings)
            if RDS_TOPOLOGY_BYTES.search(query):
                return self._with_blue_green(query.decode("utf-8", "surrogateescape"), settings)
            if GLOBAL_TABLES_BYTES.search(query):
                rewritten = substitute_tables(query.decode("utf-8", "surrogateescape"))
                return self._forward(rewritten.encode("utf-8", "surrogateescape"), head)
            if GLOBAL_VIEW_BYTES.search(query):
                return self._with_global_views(query.decode("utf-8", "surrogateescape"), settings)
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
            return self._send_rewritten(substitute_replica_host_status(sql, replica_host_status_sql(rows)))
        return fetch()

    def _send_rewritten(self, sql: str) -> Outcome:
        """Send a query whose Aurora views became literal tables, with the variables rewritten too."""
        packet = query_packet(self.rewriter.rewrite(sql.encode("utf-8", "surrogateescape")))
        if packet is None:
            return [("client", err_packet(MySqlError(1153, "08S01", "Got a packet bigger than "
                                                                    "'max_allowed_packet' bytes")))]
        return [("server", packet)]

    def _with_blue_green(self, sql: str, settings: AuroraSettings) -> Awaitable[Outcome]:
        """mysql.rds_topology (and its row in information_schema.tables) on engine versions that have
        it; elsewhere the query goes to MariaDB as it is (which has no such table)."""
        async def fetch() -> Outcome:
            try:
                surface = await self.controller.call("aurora_surface", GLOBAL_SURFACE_TIMEOUT_S,
                                                     region=settings.region, instance=settings.instance,
                                                     parts=["blue_green_metadata"])
            except Exception as exc:  # noqa: BLE001 - the emulator is busy or gone: an error, not a guess
                return [("client", err_packet(MySqlError(ER_UNKNOWN_ERROR, "HY000",
                                                         f"blue/green metadata unavailable: "
                                                         f"{type(exc).__name__} {exc}")))]
            rows = (surface or {}).get("blue_green_metadata")
            if rows is None:
                return self._send_rewritten(sql)
            if _TABLES_MENTIONED.search(sql):
                sql_out = substitute_tables(sql, rds_topology=True)
            else:
                sql_out = substitute_rds_topology(sql, rds_topology_sql(rows))
            return self._send_rewritten(sql_out)
        return fetch()

    def _with_global_views(self, sql: str, settings: AuroraSettings) -> Awaitable[Outcome]:
        async def fetch() -> Outcome:
            views = global_views_in(sql)
            try:
                surface = await self.controller.call("aurora_surface", GLOBAL_SURFACE_TIMEOUT_S,
                                                     region=settings.region, instance=settings.instance,
                                                     parts=[SURFACE_PART[v] for v in views])
            except Exception as exc:  # noqa: BLE001 - the emulator is busy or gone: an error, not a guess
                return [("client", err_packet(MySqlError(ER_UNKNOWN_ERROR, "HY000",
                                                         f"global database status unavailable: "
                                                         f"{type(exc).__name__} {exc}")))]
            tables = {v: global_view_sql(v, (surface or {}).get(SURFACE_PART[v]) or []) for v in views}
            return self._send_rewritten(substitute_global_views(sql, tables))
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
