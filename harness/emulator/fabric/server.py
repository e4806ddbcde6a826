"""The fabric process: every emulated endpoint and replication link as a TCP proxy.

Run as ``python -m harness.emulator.fabric.server --control /path/fabric.sock``.
All proxies share one event loop in one process so forwarding never competes
with the control plane's Python threads for the GIL.  The process is driven by
newline-delimited JSON over a Unix socket (see ``client.py``).

Forwarding uses asyncio Protocols rather than streams (fewer copies and
coroutine hops per chunk); a chunk is written straight through unless a toxic
or a backlog forces it through the direction's delay queue.

Client endpoints can opt into the fast path (``"fast": true``): they take no
toxics, so once a connection is routed and its upstream connected, both
sockets go to a small C pump (``pump.c``) that forwards with far less CPU per
message than Python can.  MySQL endpoints (targets with rewrites) too: the
pump hands such a connection back while it needs the Python session
(``mysql_session``), and Python returns it when done.  Without a pump (no
compiler, or switched off) fast listeners forward in Python like the others.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import itertools
import json
import logging
import math
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from harness.emulator.fabric.mysql import MySqlSession, parse_rewrite
from harness.emulator.fabric.mysql import configure as configure_mysql
from harness.emulator.fabric.mysql_session import pump_needles
from harness.emulator.fabric.mysql_settings import SETTINGS_KEY, AuroraSettings
from harness.emulator.fabric.pump import (
    SWITCH_ENV,
    Handback,
    Pump,
    PumpUnavailable,
    arm_reset,
    build_pump,
    pump_disabled,
    reset_socket,
)
from harness.emulator.fabric.toxics import (
    DOWNSTREAM,
    PASSTHROUGH,
    UPSTREAM,
    DirectionPlan,
    LatencyClock,
    Pacer,
    Toxic,
    ToxicityDice,
    build_plan,
    next_change,
    parse_toxic,
)

log = logging.getLogger("fabric")

CONNECT_TIMEOUT_S = 2.0
# Pause the source while this much sits in a delay queue. A delayed link must hold what flows
# during one delay (a real network's bandwidth-delay product): a 1 MiB queue behind a 1.5 s
# latency carried under 0.7 MB/s, so a reader lagged that way fell further behind every second
# instead of trailing by 1.5 s.
QUEUE_HIGH = 32 << 20
QUEUE_LOW = 8 << 20
CONTROL_LINE_LIMIT = 1 << 20
ACCEPT_BATCH = 64  # connections accepted per wake-up of a fast listener (fairness)
ACCEPT_BACKOFF_S = 1.0  # pause after accept() fails for lack of fds or memory, as asyncio does
TAKE_BACK_TIMEOUT_S = 2.0  # how long a toxic on a storage node waits for the pump to return connections


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Target:
    """An upstream: a TCP address or a Unix socket path, named by instance id."""

    id: str
    host: str | None = None
    port: int | None = None
    unix: str | None = None
    # MySQL: system variable -> this instance's value, and the instance's Aurora settings (mysql_settings.py)
    rewrite: tuple[tuple[str, str], ...] = ()


def _parse_rewrite(raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return parse_rewrite(raw.get("rewrite"), raw["id"])


@dataclass(frozen=True)
class Route:
    targets: tuple[Target, ...]
    policy: str = "first"
    stale_targets: tuple[Target, ...] = ()
    stale_seconds: float = 0.0


def _parse_target(raw: object) -> Target:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise ValueError(f"target must be an object with a string 'id', got {raw!r}")
    if "unix" in raw:
        if not isinstance(raw["unix"], str) or not raw["unix"]:
            raise ValueError(f"target {raw['id']!r}: 'unix' must be a path")
        return Target(id=raw["id"], unix=raw["unix"], rewrite=_parse_rewrite(raw))
    host, port = raw.get("host"), raw.get("port")
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"target {raw['id']!r} needs 'host' and integer 'port', or 'unix'")
    if not 0 < port < 65536:
        raise ValueError(f"target {raw['id']!r}: port {port} out of range")
    return Target(id=raw["id"], host=host, port=port, rewrite=_parse_rewrite(raw))


def parse_route(raw: object) -> Route:
    """Validate a route object from JSON (raises ValueError)."""
    if not isinstance(raw, dict):
        raise ValueError("route must be an object")
    targets = raw.get("targets", [])
    if not isinstance(targets, list):
        raise ValueError("route.targets must be a list")
    policy = raw.get("policy", "first")
    if policy not in ("first", "round_robin"):
        raise ValueError(f"route.policy must be 'first' or 'round_robin', got {policy!r}")
    stale = raw.get("stale")
    stale_targets: tuple[Target, ...] = ()
    stale_seconds = 0.0
    if stale is not None:
        if not isinstance(stale, dict) or not isinstance(stale.get("targets"), list):
            raise ValueError("route.stale must be null or {targets: [...], seconds: n}")
        seconds = stale.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            0 <= seconds < math.inf
        ):
            raise ValueError("route.stale.seconds must be a non-negative number")
        stale_targets = tuple(_parse_target(t) for t in stale["targets"])
        stale_seconds = float(seconds)
    return Route(
        targets=tuple(_parse_target(t) for t in targets),
        policy=policy,
        stale_targets=stale_targets,
        stale_seconds=stale_seconds,
    )


# --------------------------------------------------------------------------- plumbing


def _reset_transport(transport: asyncio.BaseTransport | None) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed or partitioned host would look."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        arm_reset(sock)
    transport.abort()


def _set_nodelay(sock: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        _set_nodelay(sock)


class Direction:
    """One byte stream of a proxied connection (client→server or server→client).

    Chunks go straight to ``dest`` while nothing is queued and no toxic is
    active; otherwise they wait in a FIFO with delivery times, which keeps
    order even when a toxic is removed while chunks are still queued.
    """

    def __init__(self, conn: Connection, kind: str) -> None:
        self.conn = conn
        self.kind = kind
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self.plan: DirectionPlan = PASSTHROUGH
        self.queue: collections.deque[list[Any]] = collections.deque()  # [ready_at, bytes]
        self.queued = 0
        self.clock = LatencyClock(conn.listener.fabric.rng)
        self.pacer: Pacer | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.dest_paused = False
        self.pauses: set[str] = set()
        self.eof = False
        self.done = False

    # -- input side
    def feed(self, data: bytes) -> None:
        if self.done:
            return
        session = self.conn.mysql
        if session is not None:  # MySQL endpoints: the session forwards the client's bytes itself
            if self.kind == UPSTREAM:
                session.from_client(data)
                return
            session.from_server(data)
        self.forward(data)

    def forward(self, data: bytes) -> None:
        if self.done or not data:
            return
        if self.plan.passthrough and not self.queue and self.dest is not None:
            self._emit(data)
            return
        if self.plan.blackhole:
            return
        delay = self.plan.latency_s + self.plan.extra_delay(self.conn.listener.fabric.rng)
        ready = self.clock.schedule(time.monotonic(), delay, self.plan.jitter_s)
        self.queue.append([ready, data])
        self.queued += len(data)
        if self.queued > QUEUE_HIGH:
            self.pause_source("queue")
        if self.dest is None:
            # Early bytes while the upstream connects are kept; stop reading more.
            # (Pausing here, not in connection_made: uvloop ignores a pause there.)
            self.pause_source("connecting")
        if self.timer is None:
            self.pump()

    def finish(self) -> None:
        """The source sent EOF: deliver what is queued, then pass the EOF on."""
        self.eof = True
        if not self.queue and self.dest is not None:
            self._complete()

    def abandon(self) -> None:
        """The destination is gone: drop everything still queued."""
        self._cancel_timer()
        self.queue.clear()
        self.queued = 0
        self.done = True

    # -- output side
    def set_plan(self, plan: DirectionPlan) -> None:
        if plan.rate_bytes is None:
            self.pacer = None
        elif self.pacer is None or self.pacer.rate_bytes != plan.rate_bytes:
            self.pacer = Pacer(plan.rate_bytes)
        self.plan = plan
        if self.queue:
            self._cancel_timer()
            self.pump()

    def pump(self) -> None:
        """Deliver every queued chunk that is due; re-arm a timer for the rest."""
        self.timer = None
        if self.dest is None or self.done or self.plan.stalled:
            return  # a stall holds everything until the plan changes (set_plan pumps again)
        now = time.monotonic()
        while self.queue and not self.dest_paused:
            entry = self.queue[0]
            ready, data = entry
            if ready > now:
                self._wake_at(ready, now)
                return
            if self.pacer is not None:
                count, retry_at = self.pacer.admit(len(data), now)
                if count == 0:
                    if retry_at < math.inf:
                        self._wake_at(retry_at, now)
                    return  # rate 0: held until the plan changes
                if count < len(data):
                    entry[1] = data[count:]
                    data = data[:count]
                else:
                    self.queue.popleft()
            else:
                self.queue.popleft()
            self.queued -= len(data)
            self._emit(data)
        if self.queued < QUEUE_LOW:
            self.resume_source("queue")
        if not self.queue and self.eof:
            self._complete()

    def _wake_at(self, when: float, now: float) -> None:
        # Toxic times are on time.monotonic(), not loop.time(): uvloop's clock is
        # whole milliseconds and cached per iteration, which could deliver a
        # chunk slightly *before* its latency.  pump() re-checks, so an early
        # wake-up only re-arms; the 1 ms floor avoids spinning on a sub-ms rest.
        self.timer = self.conn.loop.call_later(max(when - now, 0.001), self.pump)

    def _emit(self, data: bytes) -> None:
        assert self.dest is not None
        self.dest.write(data)
        self.conn.listener.count(self.kind, len(data))

    def _complete(self) -> None:
        if not self.done:
            self.done = True
            self.conn.direction_done(self)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- flow control: the source is read only while nothing asks it to pause
    def dest_pause(self) -> None:
        self.dest_paused = True
        self.pause_source("dest")

    def dest_resume(self) -> None:
        self.dest_paused = False
        self.resume_source("dest")
        if self.queue and self.timer is None:
            self.pump()

    def pause_source(self, reason: str) -> None:
        if not self.pauses and self.source is not None and not self.source.is_closing():
            self.source.pause_reading()
        self.pauses.add(reason)

    def resume_source(self, reason: str) -> None:
        if reason not in self.pauses:
            return
        self.pauses.discard(reason)
        if not self.pauses and self.source is not None and not self.source.is_closing():
            self.source.resume_reading()


class Connection:
    """A client connection and its upstream, with one Direction per byte stream."""

    def __init__(self, listener: Listener, client: asyncio.Transport, target: Target) -> None:
        self.listener = listener
        self.loop = listener.fabric.loop
        self.client = client
        self.target = target
        self.upstream: asyncio.Transport | None = None
        self.up = Direction(self, UPSTREAM)
        self.down = Direction(self, DOWNSTREAM)
        self.mysql = MySqlSession(dict(target.rewrite), self) if target.rewrite else None
        self.up.source = client
        self.down.dest = client
        self.dice = ToxicityDice(listener.fabric.rng)
        self.reset_timers: dict[int, asyncio.TimerHandle] = {}
        self.closed = False
        self.connect_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        _nodelay(self.client)
        self.refresh_toxics()
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        target = self.target
        try:
            factory = lambda: UpstreamProtocol(self)  # noqa: E731
            if target.unix is not None:
                coro: Awaitable[Any] = self.loop.create_unix_connection(factory, target.unix)
            else:
                coro = self.loop.create_connection(factory, target.host, target.port)
            await asyncio.wait_for(coro, CONNECT_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            self.connect_task = None  # we are that task; do not cancel ourselves
            self.listener.fabric.warn_connect(self.listener.name, target, exc)
            self.reset()

    def attach_upstream(self, transport: asyncio.Transport) -> None:
        if self.closed:
            _reset_transport(transport)
            return
        _nodelay(transport)
        self.upstream = transport
        self.up.dest = transport
        self.down.source = transport
        self.up.resume_source("connecting")
        self.up.pump()  # whatever (and any EOF) arrived while connecting

    def refresh_toxics(self, now: float | None = None) -> None:
        """Re-evaluate the listener's toxics; they apply to live connections too."""
        toxics = list(self.listener.toxics.values())
        self.dice.retain(t.uid for t in toxics)
        active = [t for t in toxics if self.dice.applies(t)]
        now = time.monotonic() if now is None else now
        self.up.set_plan(build_plan(active, UPSTREAM, now))
        self.down.set_plan(build_plan(active, DOWNSTREAM, now))
        resets = {t.uid: t for t in active if t.type == "reset"}
        for uid in [uid for uid in self.reset_timers if uid not in resets]:
            self.reset_timers.pop(uid).cancel()
        for uid, toxic in resets.items():
            if uid not in self.reset_timers:
                delay = toxic.attributes["timeout_ms"] / 1000.0
                self.reset_timers[uid] = self.loop.call_later(delay, self.reset)

    def resume(self, back: Handback) -> None:
        """Go on from where the pump stopped: what it held goes first, in order (the upstream's
        share waits in the queue until that side is attached), then the client's next bytes."""
        if self.mysql is not None:
            self.mysql.resume(greeted=back.greeted, awaiting=back.awaiting, status=back.status,
                              server_caps=back.server_caps, answer=back.answer, response=back.response)
        self.up.forward(back.to_server)
        self.down.forward(back.to_client)
        if back.unjudged:
            self.up.feed(back.unjudged)

    def repump(self) -> None:
        """Give this MySQL connection to the C pump again, if nothing of it is in flight here.

        Our copies of the sockets are duplicated, then the transports dropped without a word to
        either peer (closing one copy of a socket sends nothing); the pump reads on from the
        kernel's buffers, with the session's state.
        """
        fabric, session = self.listener.fabric, self.mysql
        pump, upstream = fabric.pump, self.upstream
        if (pump is None or not self.listener.fast or self.closed or upstream is None or session is None
                or self.up.queue or self.down.queue or self.up.pauses or self.down.pauses or self.reset_timers
                or self.up.eof or self.down.eof or self.client.get_write_buffer_size()
                or upstream.get_write_buffer_size() or fabric.volume_delays(_volume(self.target.rewrite))
                or not fabric.update_needles(_needles(self.target.rewrite))):
            return
        try:
            fds = [os.dup(t.get_extra_info("socket").fileno()) for t in (self.client, upstream)]
        except (OSError, AttributeError):
            return
        state = session.pump_state()
        self.closed = True  # what the transports report from now on is not news
        self.listener.forget(self)
        session.shutdown()
        self.up.abandon()
        self.down.abandon()
        self.client.abort()
        upstream.abort()
        record = PumpedConnection(self.listener, None, self.target)
        self.listener.conns.add(record)
        fabric.pumped[record.id] = record
        try:
            pump.resume(record.id, socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1]), state)
        except OSError as exc:
            log.warning("%s: cannot give a connection back to the pump: %s", self.listener.name, exc)
            fabric.pumped.pop(record.id, None)
            record.finished(0, 0)

    # -- what a MySQL session asks of its connection (mysql_protocol.SessionIO)
    def to_server(self, data: bytes) -> None:
        self.up.forward(data)

    def to_client(self, data: bytes) -> None:
        self.down.forward(data)

    def hold_client(self, held: bool) -> None:
        (self.up.pause_source if held else self.up.resume_source)("mysql")

    def close(self) -> None:
        self._finish(graceful=True)

    def toxics(self, listener: str) -> list[Toxic]:
        """The toxics on another listener (a cluster volume's virtual storage nodes)."""
        found = self.listener.fabric.listeners.get(listener)
        return list(found.toxics.values()) if found is not None else []

    def reset_link(self, listener: str) -> int:
        """Reset every connection through another listener (a replication link); how many."""
        found = self.listener.fabric.listeners.get(listener)
        victims = list(found.conns) if found is not None else []
        for conn in victims:
            conn.reset()
        return len(victims)

    def direction_done(self, direction: Direction) -> None:
        """Half-close: pass the EOF on; once both ways are done, close for good."""
        if self.closed:
            return
        dest = direction.dest
        if self.up.done and self.down.done:
            self._finish(graceful=True)
        elif dest is not None and not dest.is_closing():
            if dest.can_write_eof():
                dest.write_eof()
            else:
                self._finish(graceful=True)

    def side_lost(self, side: str, exc: Exception | None) -> None:
        """One transport went away; mirror a reset as a reset, a close as a close."""
        if self.closed:
            return
        if exc is not None:
            self.reset()
            return
        outgoing, incoming = (self.up, self.down) if side == "client" else (self.down, self.up)
        incoming.abandon()
        if outgoing.queue and not outgoing.done:
            outgoing.finish()  # flush what the departed side already sent
        else:
            self._finish(graceful=True)

    def reset(self) -> None:
        """Kill both sides with RST (drop, reset toxic, failed upstream)."""
        self._finish(graceful=False)

    def _finish(self, *, graceful: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.forget(self)
        if self.mysql is not None:
            self.mysql.shutdown()
        for timer in self.reset_timers.values():
            timer.cancel()
        self.reset_timers.clear()
        self.up.abandon()
        self.down.abandon()
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        for transport in (self.client, self.upstream):
            if transport is None:
                continue
            if graceful:
                transport.close()
            else:
                _reset_transport(transport)


class ClientProtocol(asyncio.Protocol):
    """The accepted (client-facing) side of a proxied connection."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.conn: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn = self.listener.accept(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.up.feed(data)
            if self.conn.mysql is not None and self.conn.mysql.repumpable():
                self.conn.repump()

    def eof_received(self) -> bool:
        if self.conn is not None:
            self.conn.up.finish()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.side_lost("client", exc)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.down.dest_pause()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.down.dest_resume()


class UpstreamProtocol(asyncio.Protocol):
    """The server-facing side of a proxied connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.conn.attach_upstream(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.conn.down.feed(data)

    def eof_received(self) -> bool:
        self.conn.down.finish()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost("upstream", exc)

    def pause_writing(self) -> None:
        self.conn.up.dest_pause()

    def resume_writing(self) -> None:
        self.conn.up.dest_resume()


class AdoptedClient(ClientProtocol):
    """The client side of a connection the pump handed back: routed already, so no pick."""

    def __init__(self, listener: Listener, target: Target, back: Handback | None) -> None:
        super().__init__(listener)
        self.target = target
        self.back = back

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        conn = Connection(self.listener, transport, self.target)  # type: ignore[arg-type]
        self.conn = conn
        self.listener.conns.add(conn)
        conn.refresh_toxics()
        if self.back is not None:
            conn.resume(self.back)


async def adopt(listener: Listener, target: Target, client: socket.socket, upstream: socket.socket,
                back: Handback | None) -> None:
    """Forward in Python a connection whose sockets are connected already (from the pump)."""
    loop = listener.fabric.loop
    try:
        _, protocol = await loop.connect_accepted_socket(lambda: AdoptedClient(listener, target, back), client)
    except OSError as exc:
        log.warning("%s: cannot take a connection back from the pump: %s", listener.name, exc)
        reset_socket(client)
        reset_socket(upstream)
        return
    conn = protocol.conn
    if conn is None or conn.closed:
        reset_socket(upstream)
        return
    conn.connect_task = asyncio.current_task()  # a reset meanwhile cancels us
    try:
        await loop.connect_accepted_socket(lambda: UpstreamProtocol(conn), upstream)
    except asyncio.CancelledError:
        reset_socket(upstream)
        raise
    except OSError:
        conn.connect_task = None  # we are that task; do not cancel ourselves
        conn.reset()
        return
    conn.connect_task = None


@functools.lru_cache(maxsize=256)
def _needles(rewrite: tuple[tuple[str, str], ...]) -> frozenset[str]:
    return frozenset(pump_needles(dict(rewrite)))


@functools.lru_cache(maxsize=256)
def _volume(rewrite: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The storage-node listeners whose toxics hold this target's commits (a MySQL writer's)."""
    raw = dict(rewrite).get(SETTINGS_KEY)
    settings = AuroraSettings.from_json(json.loads(raw)) if raw else None
    return settings.storage_links if settings is not None and settings.is_writer else ()


# --------------------------------------------------------------------------- fast path

_pump_ids = itertools.count(1)


def _upstream_socket(target: Target) -> tuple[socket.socket, str | tuple[str, int]]:
    """A non-blocking socket for ``target`` and the address to connect it to."""
    address: str | tuple[str, int]
    if target.unix is not None:
        sock, address = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), target.unix
    else:
        assert target.host is not None and target.port is not None
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        sock, address = socket.socket(family, socket.SOCK_STREAM), (target.host, target.port)
    sock.setblocking(False)
    return sock, address


class PumpedConnection:
    """A fast listener's connection: routed and connected here, forwarded by the pump.

    Python never reads a byte of it.  The client is accepted but not read (what
    it sends early waits in the kernel), the upstream is connected with a bare
    ``sock_connect``, and both sockets go to the pump the moment that succeeds,
    so there are no transports to detach and no buffered bytes to flush.  From
    then on this record is what ``drop``, ``stats`` and ``remove_listener`` see,
    until the pump's ``closed`` report brings the byte counts and retires it.
    """

    def __init__(self, listener: Listener, client: socket.socket | None, target: Target) -> None:
        """Route and connect ``client``; None: a connection Python gives back to the pump."""
        self.listener = listener
        self.target = target
        self.id = next(_pump_ids)
        self.client: socket.socket | None = client  # ours until the handoff
        self.closed = False
        self.mysql = bool(target.rewrite)  # the pump follows it, and may hand it back
        self.volume = _volume(target.rewrite) if self.mysql else ()
        self.returned: asyncio.Future[None] | None = None  # resolved once the pump lets go of it
        self.connect_task: asyncio.Task[None] | None = (listener.fabric.loop.create_task(self._connect())
                                                        if client is not None else None)

    async def _connect(self) -> None:
        fabric = self.listener.fabric
        upstream, address = _upstream_socket(self.target)
        try:
            await asyncio.wait_for(fabric.loop.sock_connect(upstream, address), CONNECT_TIMEOUT_S)
        except asyncio.CancelledError:
            reset_socket(upstream)
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            upstream.close()
            self.connect_task = None  # we are that task; do not cancel ourselves
            fabric.warn_connect(self.listener.name, self.target, exc)
            self.reset()
            return
        self.connect_task = None
        client, pump = self.client, fabric.pump
        assert client is not None  # a reset would have cancelled us
        if pump is None:  # lost while we connected: the client's retry gets Python forwarding
            reset_socket(upstream)
            self.reset()
            return
        _set_nodelay(client)
        _set_nodelay(upstream)
        self.client = None
        if self.mysql and (fabric.volume_delays(self.volume) or not fabric.update_needles(_needles(self.target.rewrite))):
            self.adopt(client, upstream, None)  # e.g. its commits may be held: Python's from the start
            return
        fabric.pumped[self.id] = self
        pump.hand_off(self.id, client, upstream, mysql=self.mysql)

    def take_back(self) -> asyncio.Future[None]:
        """Ask the pump to hand this MySQL connection back; resolved when it has (or it ended)."""
        if self.returned is None:
            self.returned = self.listener.fabric.loop.create_future()
            if (pump := self.listener.fabric.pump) is not None and not self.closed:
                pump.take_back(self.id)
            else:
                self.returned.set_result(None)
        return self.returned

    def adopt(self, client: socket.socket, upstream: socket.socket, back: Handback | None) -> None:
        """Python forwards this connection from now on: a Connection takes this record's place."""
        self.finished(back.bytes_up if back else 0, back.bytes_down if back else 0)
        self.listener.fabric.start_adoption(adopt(self.listener, self.target, client, upstream, back))

    def reset(self) -> None:
        """Kill both sides with RST (drop, remove_listener, failed upstream)."""
        if self.closed:
            return
        self.closed = True
        self.listener.forget(self)
        if self.connect_task is not None:
            self.connect_task.cancel()  # it resets the half-connected upstream
        if self.client is not None:
            reset_socket(self.client)
            self.client = None
        elif (pump := self.listener.fabric.pump) is not None:
            pump.close(self.id)  # stays in fabric.pumped until the pump reports its bytes

    def finished(self, bytes_up: int, bytes_down: int) -> None:
        """The pump says the pair is over (or the pump is gone, or gave it back): count its bytes, forget it."""
        self.closed = True
        self.listener.bytes_up += bytes_up
        self.listener.bytes_down += bytes_down
        self.listener.forget(self)
        if self.returned is not None and not self.returned.done():
            self.returned.set_result(None)


# --------------------------------------------------------------------------- listeners


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """One endpoint: a listening socket, its route, toxics, connections and counters.

    A fast listener whose fabric has a pump accepts on its own (``raw``) and
    hands connections to the pump; every other listener is an asyncio server.
    """

    def __init__(self, fabric: Fabric, name: str, fast: bool = False) -> None:
        self.fabric = fabric
        self.name = name
        self.fast = fast
        self.host = ""
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.raw: socket.socket | None = None
        self.switching: asyncio.Task[None] | None = None  # held: the loop keeps tasks weakly
        self.closed = False
        self.route = Route(targets=())
        self.stale_until = 0.0
        self.rr = 0
        self.conns: set[Connection | PumpedConnection] = set()
        self.toxics: dict[str, Toxic] = {}
        self.flip_timer: asyncio.TimerHandle | None = None  # next phase change of a stall toxic
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0

    async def bind(self, host: str, port: int) -> None:
        """(Re)bind; live connections survive a rebind, only the listening socket moves."""
        try:
            sock = _listen_socket(host, port)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise ValueError(f"cannot bind {host}:{port}: {reason}") from None
        server = None
        if self.fast and self.fabric.pump is not None:
            self.fabric.loop.add_reader(sock.fileno(), self._accept_for_pump, sock)
        else:
            server = await self.fabric.loop.create_server(
                lambda: ClientProtocol(self), sock=sock, backlog=1024
            )
        self._stop_accepting()
        self.server, self.raw = server, (sock if server is None else None)
        self.host, self.port = host, sock.getsockname()[1]

    def _stop_accepting(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.raw is not None:
            self.fabric.loop.remove_reader(self.raw.fileno())
            self.raw.close()
            self.raw = None

    def _accept_for_pump(self, sock: socket.socket) -> None:
        """Accept what is pending without reading it: the pump will read the client's bytes."""
        for _ in range(ACCEPT_BATCH):
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of fds or memory; retrying at once would spin
                log.warning("%s: accept failed (%s); pausing %gs", self.name, exc, ACCEPT_BACKOFF_S)
                self.fabric.loop.remove_reader(sock.fileno())
                self.fabric.loop.call_later(ACCEPT_BACKOFF_S, self._resume_accepting, sock)
                return
            self.accepted += 1
            target = self.pick()
            if target is None:
                reset_socket(client)
                continue
            self.conns.add(PumpedConnection(self, client, target))

    def _resume_accepting(self, sock: socket.socket) -> None:
        if self.raw is sock:
            self.fabric.loop.add_reader(sock.fileno(), self._accept_for_pump, sock)

    def forward_in_python(self) -> None:
        """The pump is gone: serve the same listening socket with asyncio from now on."""
        sock, self.raw = self.raw, None
        if sock is not None:
            self.fabric.loop.remove_reader(sock.fileno())
            self.switching = self.fabric.loop.create_task(self._serve_in_python(sock))

    async def _serve_in_python(self, sock: socket.socket) -> None:
        server = await self.fabric.loop.create_server(lambda: ClientProtocol(self), sock=sock, backlog=1024)
        if self.closed or self.server is not None or self.raw is not None:
            server.close()  # closed or rebound meanwhile
        else:
            self.server = server

    def set_route(self, route: Route) -> None:
        self.route = route
        self.stale_until = time.monotonic() + route.stale_seconds if route.stale_targets else 0.0

    def pick(self) -> Target | None:
        route = self.route
        targets = route.targets
        if route.stale_targets and time.monotonic() < self.stale_until:
            targets = route.stale_targets
        if not targets:
            return None
        if route.policy == "round_robin":
            self.rr += 1
            return targets[(self.rr - 1) % len(targets)]
        return targets[0]

    def accept(self, transport: asyncio.Transport) -> Connection | None:
        self.accepted += 1
        target = self.pick()
        if target is None:
            _reset_transport(transport)
            return None
        conn = Connection(self, transport, target)
        self.conns.add(conn)
        conn.start()
        return conn

    def forget(self, conn: Connection | PumpedConnection) -> None:
        self.conns.discard(conn)

    def count(self, kind: str, nbytes: int) -> None:
        if kind == UPSTREAM:
            self.bytes_up += nbytes
        else:
            self.bytes_down += nbytes

    def toxics_changed(self) -> None:
        """Re-plan live connections; a stall toxic's duty cycle re-plans them at each phase change."""
        if self.flip_timer is not None:
            self.flip_timer.cancel()
            self.flip_timer = None
        now = time.monotonic()
        for conn in list(self.conns):
            if isinstance(conn, Connection):  # fast listeners take no toxics
                conn.refresh_toxics(now)
        when = next_change(self.toxics.values(), now)
        if when < math.inf and not self.closed:
            self.flip_timer = self.fabric.loop.call_later(max(when - now, 0.001), self.toxics_changed)

    def drop(self, target_id: str) -> int:
        victims = [c for c in self.conns if c.target.id == target_id]
        for conn in victims:
            conn.reset()
        return len(victims)

    def close(self) -> None:
        self.closed = True
        if self.flip_timer is not None:
            self.flip_timer.cancel()
            self.flip_timer = None
        self._stop_accepting()
        for conn in list(self.conns):
            conn.reset()

    def stats(self) -> dict[str, Any]:
        by_target: dict[str, int] = {}
        for conn in self.conns:
            by_target[conn.target.id] = by_target.get(conn.target.id, 0) + 1
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "fast": self.fast,
            "active": len(self.conns),
            "accepted": self.accepted,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "by_target": by_target,
        }


# --------------------------------------------------------------------------- control


def _field(req: dict[str, Any], key: str, kind: type = str) -> Any:
    value = req.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"missing or invalid {key!r} (expected {kind.__name__})")
    return value


class Fabric:
    """All listeners plus the JSON control interface that manipulates them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.rng = random.Random()
        self.listeners: dict[str, Listener] = {}
        self.pump: Pump | None = None
        self.pumped: dict[int, PumpedConnection] = {}  # handed off, not yet reported over
        self.needles: frozenset[str] = frozenset()  # what the pump scans MySQL queries for
        self.adoptions: set[asyncio.Task[None]] = set()  # connections the pump handed back, being set up
        self._pump_start: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()
        self._warned: dict[tuple[str, str], float] = {}
        self.ops: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "ping": self.op_ping,
            "set_listener": self.op_set_listener,
            "set_route": self.op_set_route,
            "remove_listener": self.op_remove_listener,
            "drop": self.op_drop,
            "add_toxic": self.op_add_toxic,
            "remove_toxic": self.op_remove_toxic,
            "list_toxics": self.op_list_toxics,
            "reset_toxics": self.op_reset_toxics,
            "stats": self.op_stats,
            "shutdown": self.op_shutdown,
        }

    def warn_connect(self, listener: str, target: Target, exc: BaseException) -> None:
        """Log upstream connect failures at most once a second per (listener, target)."""
        key = (listener, target.id)
        now = time.monotonic()
        if now - self._warned.get(key, -math.inf) >= 1.0:
            self._warned[key] = now
            where = target.unix or f"{target.host}:{target.port}"
            reason = type(exc).__name__ if not str(exc) else str(exc)
            log.warning("%s: upstream %s (%s) unreachable: %s", listener, target.id, where, reason)

    async def start_pump(self) -> None:
        """Build and start the pump on first use.  Tried once: a failure means Python forwarding."""
        if self._pump_start is None:
            self._pump_start = self.loop.create_task(self._start_pump())
        await asyncio.shield(self._pump_start)  # a caller that hangs up must not cancel the build

    async def _start_pump(self) -> None:
        if pump_disabled():
            log.info("fast path switched off (%s); fast listeners forward in Python", SWITCH_ENV)
            return
        try:
            binary = await asyncio.to_thread(build_pump)  # the first build takes a moment
            self.pump = Pump(self.loop, binary, self.pump_closed, self.pump_lost, self.pump_back)
        except PumpUnavailable as exc:
            log.warning("fast path unavailable, fast listeners forward in Python: %s", exc)
            return
        log.info("fast-path pump pid %d (%s)", self.pump.pid, binary)

    def pump_closed(self, conn_id: int, bytes_up: int, bytes_down: int) -> None:
        conn = self.pumped.pop(conn_id, None)
        if conn is not None:
            conn.finished(bytes_up, bytes_down)

    def pump_back(self, conn_id: int, back: Handback) -> None:
        """The pump handed a MySQL connection back: Python forwards it from now on."""
        conn = self.pumped.pop(conn_id, None)
        if conn is None or conn.closed:  # reset meanwhile: the pump had not seen our "close" yet
            back.reset()
            if conn is not None:
                conn.finished(back.bytes_up, back.bytes_down)
            return
        conn.adopt(back.client, back.upstream, back)

    def start_adoption(self, work: Awaitable[None]) -> None:
        task = self.loop.create_task(work)  # type: ignore[arg-type]
        self.adoptions.add(task)
        task.add_done_callback(self.adoptions.discard)

    def update_needles(self, words: frozenset[str]) -> bool:
        """Make sure the pump scans MySQL queries for these words too (before a pair needs them);
        False if it cannot take that many (such connections stay in Python)."""
        if words <= self.needles or self.pump is None:
            return True
        try:
            self.pump.set_needles(sorted(self.needles | words))
        except ValueError as exc:
            log.error("MySQL connections stay in Python: %s", exc)
            return False
        self.needles |= words
        return True

    def volume_delays(self, links: tuple[str, ...]) -> bool:
        """Would a MySQL session's commit wait for the volume now (toxics on a storage node)?"""
        return any(self.listeners[link].toxics for link in links if link in self.listeners)

    async def take_back_writers(self, link: str) -> None:
        """A toxic on a storage node: the writers' MySQL connections it concerns come back from the
        pump before the toxic counts as added, so no commit slips past the quorum (mysql_quorum)."""
        waits = [conn.take_back() for conn in list(self.pumped.values()) if link in conn.volume]
        if waits:
            await asyncio.wait(waits, timeout=TAKE_BACK_TIMEOUT_S)

    def pump_lost(self) -> None:
        """The pump died (its connections with it): keep every fast listener serving, in Python."""
        self.pump = None
        for conn in self.pumped.values():
            conn.finished(0, 0)
        self.pumped.clear()
        for listener in self.listeners.values():
            listener.forward_in_python()

    def listener(self, req: dict[str, Any], key: str = "name") -> Listener:
        name = _field(req, key)
        found = self.listeners.get(name)
        if found is None:
            raise ValueError(f"no listener named {name!r}")
        return found

    async def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one request line; never raises (bad input is an error reply)."""
        try:
            req = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            return {"ok": False, "error": f"bad JSON: {exc}"}
        if not isinstance(req, dict):
            return {"ok": False, "error": "request must be a JSON object"}
        op = req.get("op")
        handler = self.ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r} (known: {', '.join(self.ops)})"}
        try:
            result = await handler(req)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a bug, but the fabric must keep serving
            log.exception("op %s failed", op)
            return {"ok": False, "error": f"internal error in {op}: {type(exc).__name__}: {exc}"}
        return {"ok": True, **result}

    async def op_ping(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "pump_pid": self.pump.pid if self.pump is not None else None}

    async def op_set_listener(self, req: dict[str, Any]) -> dict[str, Any]:
        name = _field(req, "name")
        host = _field(req, "host")
        port = _field(req, "port", int)
        if not 0 <= port < 65536:
            raise ValueError(f"port {port} out of range")
        route = parse_route(req.get("route", {}))
        fast = req.get("fast", False)
        if not isinstance(fast, bool):
            raise ValueError(f"'fast' must be true or false, got {fast!r}")
        listener = self.listeners.get(name)
        if listener is None:
            if fast:
                await self.start_pump()
            listener = Listener(self, name, fast)
            await listener.bind(host, port)
            self.listeners[name] = listener
            mode = " (fast: pump)" if listener.raw else " (fast: Python, no pump)" if fast else ""
            log.info("listener %s on %s:%d%s", name, listener.host, listener.port, mode)
        elif fast != listener.fast:
            raise ValueError(f"listener {name!r} exists with fast={str(listener.fast).lower()}; "
                             "remove it to change that")
        elif host != listener.host or port not in (0, listener.port):
            await listener.bind(host, port)
            log.info("listener %s rebound to %s:%d", name, listener.host, listener.port)
        listener.set_route(route)
        log.info("listener %s route %s", name, _describe(route))
        return {"host": listener.host, "port": listener.port}

    async def op_set_route(self, req: dict[str, Any]) -> dict[str, Any]:
        listener = self.listener(req)
        route = parse_route(req.get("route"))
        listener.set_route(route)
        log.info("listener %s route %s", listener.name, _describe(route))
        return {}

    async def op_remove_listener(self, req: dict[str, Any]) -> dict[str, Any]:
        listener = self.listener(req)
        del self.listeners[listener.name]
        listener.close()
        log.info("listener %s removed", listener.name)
        return {}

    async def op_drop(self, req: dict[str, Any]) -> dict[str, Any]:
        target = _field(req, "target")
        scope = [self.listener(req, "listener")] if "listener" in req else list(self.listeners.values())
        dropped = sum(listener.drop(target) for listener in scope)
        log.info("dropped %d connection(s) to %s", dropped, target)
        return {"dropped": dropped}

    async def op_add_toxic(self, req: dict[str, Any]) -> dict[str, Any]:
        listener = self.listener(req, "listener")
        if listener.fast:
            raise ValueError(f"listener {listener.name!r} is a fast-path client endpoint; "
                             "toxics go on replication links")
        toxic = parse_toxic(req.get("toxic"))
        if toxic.name in listener.toxics:
            raise ValueError(f"toxic {toxic.name!r} already exists on listener {listener.name!r}")
        listener.toxics[toxic.name] = toxic
        listener.toxics_changed()
        await self.take_back_writers(listener.name)
        log.info("listener %s toxic + %s %s %s", listener.name, toxic.name, toxic.type, toxic.stream)
        return {"toxic": toxic.to_json()}

    async def op_remove_toxic(self, req: dict[str, Any]) -> dict[str, Any]:
        listener = self.listener(req, "listener")
        name = _field(req, "name")
        if listener.toxics.pop(name, None) is None:
            raise ValueError(f"no toxic named {name!r} on listener {listener.name!r}")
        listener.toxics_changed()
        log.info("listener %s toxic - %s", listener.name, name)
        return {}

    async def op_list_toxics(self, req: dict[str, Any]) -> dict[str, Any]:
        listener = self.listener(req, "listener")
        return {"toxics": [t.to_json() for t in listener.toxics.values()]}

    async def op_reset_toxics(self, req: dict[str, Any]) -> dict[str, Any]:
        scope = [self.listener(req, "listener")] if "listener" in req else list(self.listeners.values())
        for listener in scope:
            if listener.toxics:
                listener.toxics.clear()
                listener.toxics_changed()
        log.info("toxics reset on %s", ", ".join(l.name for l in scope) or "no listeners")
        return {}

    async def op_stats(self, req: dict[str, Any]) -> dict[str, Any]:
        scope = [self.listener(req)] if "name" in req else list(self.listeners.values())
        return {"listeners": [listener.stats() for listener in scope]}

    async def op_shutdown(self, req: dict[str, Any]) -> dict[str, Any]:
        # Stop after the reply has been written (the handler writes, then we stop).
        self.loop.call_soon(self.stopping.set)
        return {}

    def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()
        if self.pump is not None:
            self.pump.stop()  # after the resets above: the pump reads them before its EOF
            self.pump = None


def _describe(route: Route) -> str:
    ids = ",".join(t.id for t in route.targets) or "-"
    text = f"{route.policy}[{ids}]"
    if route.stale_targets:
        stale = ",".join(t.id for t in route.stale_targets)
        text += f" stale[{stale}] for {route.stale_seconds:g}s"
    return text


async def _serve_control(fabric: Fabric, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while not reader.at_eof():
            try:
                line = await reader.readline()
            except ValueError:  # line longer than the limit: answer, then hang up
                writer.write(b'{"ok": false, "error": "request line too long"}\n')
                break
            if not line.strip():
                continue
            reply = await fabric.handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _watch_parent(fabric: Fabric, parent: int) -> None:
    """Stop when the process that started us dies, so a crashed harness leaves no orphan."""
    while True:
        await asyncio.sleep(0.5)
        if os.getppid() != parent:
            log.info("parent %d gone", parent)
            fabric.stopping.set()
            return


async def serve(control: Path, exit_with_parent: bool = False) -> None:
    """Run the fabric until SIGTERM/SIGINT, a ``shutdown`` request or (optionally) parent death."""
    loop = asyncio.get_running_loop()
    fabric = Fabric(loop)
    configure_mysql(control)  # MySQL endpoints call the emulator that owns this control socket
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, fabric.stopping.set)
    # Keep a reference to the watcher: the loop only holds tasks weakly.
    watcher = loop.create_task(_watch_parent(fabric, os.getppid())) if exit_with_parent else None
    if control.exists() or control.is_symlink():
        control.unlink()  # a stale socket from a crashed fabric
    server = await asyncio.start_unix_server(
        lambda r, w: _serve_control(fabric, r, w), path=str(control), limit=CONTROL_LINE_LIMIT
    )
    log.info("fabric pid %d listening on %s", os.getpid(), control)
    try:
        await fabric.stopping.wait()
    finally:
        log.info("fabric shutting down")
        if watcher is not None:
            watcher.cancel()
        server.close()
        fabric.close()
        try:
            control.unlink()
        except FileNotFoundError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Aurora emulator network fabric (TCP proxies)")
    parser.add_argument("--control", required=True, type=Path, help="Unix socket for control requests")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="shut down when the parent process exits")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s fabric %(levelname)s %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.control, args.exit_with_parent))
    else:
        uvloop.run(serve(args.control, args.exit_with_parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
