"""The fast path's C pump: building it, starting it, and talking to it.

Forwarding in Python (a callback, a bytes object and a transport write per
chunk) made the cluster endpoint cost more CPU per query than pgbouncer.  So,
for client endpoints that need no toxics, the fabric routes and connects a
connection and then hands both sockets to ``pump.c``, which moves the bytes
with epoll and plain read/write.  The protocol is described at the top of
``pump.c``.

MySQL endpoints go through the pump too: it follows their packets and hands a
connection back (``Handback``) at the first one the Python session must see;
the fabric forwards it in Python until the session is done with it, then gives
it to the pump again (``Resumed``).  See ``pump.c`` and
``mysql_session.INTERCEPT_WORDS``.

The pump is compiled on first use with the machine's ``cc`` into a cache keyed
by a hash of the source, so an edit rebuilds and everything else reuses it.
Without a compiler, or with ``GAMEDAY_FABRIC_PUMP=off``, there is no pump and
fast listeners simply forward in Python.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import socket
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("fabric")

SOURCE = Path(__file__).with_name("pump.c")
COMPILER = "cc"
CFLAGS = ("-O2", "-Wall")
SWITCH_ENV = "GAMEDAY_FABRIC_PUMP"  # "off" keeps every listener on Python forwarding
BUILD_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 2.0
MESSAGE_LIMIT = 512
BACK_FIELDS = 13  # "back" and its 12 numbers
MAX_NEEDLES = 32  # pump.c MAX_NEEDLES
_RST_LINGER = struct.pack("ii", 1, 0)


class PumpUnavailable(RuntimeError):
    """The pump cannot be built or started here (the reason is in the message)."""


def pump_disabled() -> bool:
    return os.environ.get(SWITCH_ENV, "").strip().lower() in ("off", "0", "false", "no")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aurora-gameday"


def build_pump(cache_dir: Path | None = None, source: Path = SOURCE) -> Path:
    """Return the pump binary for this source, compiling it if the cache lacks it.

    The source is fed to the compiler from the bytes that were hashed, so the
    binary always matches its name even if the file changes meanwhile; the
    result is renamed into place, so concurrent builders never see half a file.
    """
    code = source.read_bytes()
    key = hashlib.sha256(" ".join((COMPILER, *CFLAGS)).encode() + b"\0" + code).hexdigest()[:16]
    directory = cache_dir or default_cache_dir()
    binary = directory / f"fabric-pump-{key}"
    if os.access(binary, os.X_OK):
        return binary
    partial = directory / f".{binary.name}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([COMPILER, *CFLAGS, "-x", "c", "-o", str(partial), "-"], input=code,
                              capture_output=True, timeout=BUILD_TIMEOUT_S, check=False)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-1000:]
            raise PumpUnavailable(f"{COMPILER} failed (status {done.returncode}): {detail}")
        os.replace(partial, binary)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PumpUnavailable(f"cannot build the pump with {COMPILER!r}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return binary


@dataclass
class Handback:
    """A MySQL connection the pump gave back, and what it held of it, for Python to go on with."""

    client: socket.socket
    upstream: socket.socket
    bytes_up: int
    bytes_down: int
    greeted: bool  # the server's greeting was seen
    awaiting: bool  # the start of an answer to a forwarded query is awaited (`answer` holds its start)
    status: int  # the server's status flags, as the last OK packet had them
    server_caps: int
    to_server: bytes  # judged, not yet taken by the server: forwarded as they are
    to_client: bytes  # the server's, not yet taken by the client
    unjudged: bytes  # the client's, from the packet Python must see on
    answer: bytes
    response: bytes  # the client's handshake response payload (empty if not seen)

    def reset(self) -> None:
        reset_socket(self.client)
        reset_socket(self.upstream)


@dataclass
class Resumed:
    """What a MySQL pair's session knows, for the pump to carry on with (and hand back later)."""

    greeted: bool
    awaiting: bool
    status: int
    server_caps: int
    answer: bytes  # the start of the answer being awaited (at most 1028 bytes)
    response: bytes  # the client's handshake response payload


class _Memfd:
    """Bytes in an anonymous memory file, to pass to the pump with its sockets."""

    def __init__(self, data: bytes) -> None:
        self.fd = os.memfd_create("fabric-resume", os.MFD_CLOEXEC)
        os.write(self.fd, data)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        os.close(self.fd)


def _handback(fields: list[bytes], fds: list[int]) -> Handback:
    """Read a "back" report: the numbers, the sockets and the memfd of held bytes."""
    numbers = [int(f) for f in fields[2:]]
    os.lseek(fds[2], 0, os.SEEK_SET)  # the pump leaves it at the end of what it wrote
    with os.fdopen(fds[2], "rb") as held:
        data = held.read()
    parts, at = [], 0
    for length in numbers[6:]:
        parts.append(data[at:at + length])
        at += length
    return Handback(socket.socket(fileno=fds[0]), socket.socket(fileno=fds[1]), numbers[0], numbers[1],
                    bool(numbers[2]), bool(numbers[3]), numbers[4], numbers[5], *parts)


class Pump:
    """A running pump process and the SOCK_SEQPACKET control socket that feeds it.

    Sends never block the event loop: what the socket refuses waits in an
    outbox, in order, with the handed-off sockets kept open until their
    message is out.  ``on_closed(id, bytes_up, bytes_down)`` reports every pair
    that ends, ``on_back(id, handback)`` every MySQL pair handed back;
    ``on_lost()`` is called once if the pump dies under us.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        binary: Path,
        on_closed: Callable[[int, int, int], None],
        on_lost: Callable[[], None],
        on_back: Callable[[int, Handback], None] | None = None,
    ) -> None:
        self.loop = loop
        self.on_closed = on_closed
        self.on_lost = on_lost
        self.on_back = on_back
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The pump's stderr is ours, so its complaints land in the fabric log.
            self.proc = subprocess.Popen([str(binary), str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                         stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise PumpUnavailable(f"cannot start {binary}: {exc}") from None
        finally:
            theirs.close()  # only the pump may hold that end: its EOF is how we say goodbye
        ours.setblocking(False)
        self.sock: socket.socket | None = ours
        self.outbox: collections.deque[tuple[bytes, tuple[Any, ...]]] = collections.deque()
        self.waiting_to_send = False
        loop.add_reader(ours.fileno(), self._receive)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def hand_off(self, conn_id: int, client: socket.socket, upstream: socket.socket, mysql: bool = False) -> None:
        """Give a connected pair to the pump; our copies of the sockets are closed once sent.
        A ``mysql`` pair comes back (``on_back``) at the first packet Python must see."""
        self._send(b"%s %d" % (b"mysql" if mysql else b"pair", conn_id), (client, upstream))

    def resume(self, conn_id: int, client: socket.socket, upstream: socket.socket, state: Resumed) -> None:
        """Give a MySQL pair that came back to Python to the pump again, with its session's state."""
        message = b"resume %d %d %d %d %d %d %d" % (conn_id, state.greeted, state.awaiting, state.status,
                                                     state.server_caps, len(state.answer), len(state.response))
        try:
            memfd = _Memfd(state.answer + state.response)
        except OSError:
            _reset_all((client, upstream))
            raise
        self._send(message, (client, upstream, memfd))

    def set_needles(self, words: list[str]) -> None:
        """The words (ASCII, no blanks) whose mention in a query makes a MySQL pair Python's."""
        message = b"needles " + " ".join(words).encode("ascii")
        if len(message) >= MESSAGE_LIMIT or len(words) > MAX_NEEDLES:
            raise ValueError(f"too many needles for the pump: {words}")
        self._send(message, ())

    def take_back(self, conn_id: int) -> None:
        """Ask for a MySQL pair back now ("back"; or "closed" if it ended meanwhile)."""
        self._send(b"yield %d" % conn_id, ())

    def close(self, conn_id: int) -> None:
        """Ask the pump to reset a pair; it answers with the usual ``closed`` report."""
        self._send(b"close %d" % conn_id, ())

    def stop(self) -> None:
        """Close the control socket, which makes the pump reset its pairs and exit; reap it."""
        if self._shut():
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- internals
    def _send(self, message: bytes, socks: tuple[Any, ...]) -> None:
        if self.sock is None:
            _reset_all(socks)  # the pump is gone; nobody will forward these
            return
        self.outbox.append((message, socks))
        if len(self.outbox) == 1:
            self._flush()

    def _flush(self) -> None:
        assert self.sock is not None
        while self.outbox:
            message, socks = self.outbox[0]
            try:
                if socks:
                    socket.send_fds(self.sock, [message], [s.fileno() for s in socks])
                else:
                    self.sock.send(message)
            except (BlockingIOError, InterruptedError):
                if not self.waiting_to_send:
                    self.loop.add_writer(self.sock.fileno(), self._flush)
                    self.waiting_to_send = True
                return
            except OSError as exc:
                self._die(f"control socket: {exc}")
                return
            self.outbox.popleft()
            for sock in socks:
                # The pump holds the sockets now.  A plain close() of our copy sends
                # nothing: TCP says goodbye only when the last copy goes.
                sock.close()
        if self.waiting_to_send:
            self.loop.remove_writer(self.sock.fileno())
            self.waiting_to_send = False

    def _receive(self) -> None:
        while self.sock is not None:
            try:
                message, fds, _, _ = socket.recv_fds(self.sock, MESSAGE_LIMIT, 3)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._die(f"control socket: {exc}")
                return
            if not message:
                self._die("it closed its control socket")
                return
            fields = message.split()
            if fields[0] == b"closed" and len(fields) == 4 and not fds:
                conn_id, bytes_up, bytes_down = (int(f) for f in fields[1:])
                self.on_closed(conn_id, bytes_up, bytes_down)
            elif fields[0] == b"back" and len(fields) == BACK_FIELDS and len(fds) == 3:
                handback = _handback(fields, fds)
                if self.on_back is None:
                    handback.reset()
                else:
                    self.on_back(int(fields[1]), handback)
            else:
                for fd in fds:
                    os.close(fd)
                log.warning("pump sent an unknown message %r (%d fds)", message[:80], len(fds))
                if fields[0] == b"back" and len(fields) == BACK_FIELDS:  # its fds were lost: the pair is over
                    self.on_closed(int(fields[1]), int(fields[2]), int(fields[3]))

    def _shut(self) -> bool:
        """Stop talking to the pump; False if that already happened."""
        sock, self.sock = self.sock, None
        if sock is None:
            return False
        self.loop.remove_reader(sock.fileno())
        if self.waiting_to_send:
            self.loop.remove_writer(sock.fileno())
            self.waiting_to_send = False
        sock.close()
        for _, socks in self.outbox:
            _reset_all(socks)
        self.outbox.clear()
        return True

    def _die(self, reason: str) -> None:
        if self._shut():
            try:
                status = self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                status = self.proc.wait()
            log.error("fast-path pump (pid %d) lost: %s; exit status %s", self.proc.pid, reason, status)
            self.on_lost()


def arm_reset(sock: Any) -> None:
    """Make the coming close send a TCP RST (SO_LINGER 0), as a crashed or partitioned host would look."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
        except OSError:
            pass


def reset_socket(sock: socket.socket) -> None:
    arm_reset(sock)
    sock.close()


def _reset_all(socks: tuple[Any, ...]) -> None:
    for sock in socks:
        if isinstance(sock, socket.socket):
            reset_socket(sock)
        else:
            sock.close()
