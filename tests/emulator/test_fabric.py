"""The network fabric end to end: a real fabric process, real sockets, small upstreams.

Everything binds 127.77.x.y (never 127.0.0.1, where real services live) on
port 0.  Tests wait on observable state (bytes received, stats, a reset)
rather than sleeping; the only deliberate waits are short "nothing arrives"
windows for blackhole / bandwidth 0.
"""

from __future__ import annotations

import collections
import collections.abc
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from harness.emulator.fabric import FabricClient, FabricError, start_fabric

_SUBNET = random.randint(1, 250)
_hosts = itertools.count(1)
SILENCE_S = 0.5  # how long "no bytes arrive" is watched for


def fresh_host() -> str:
    """A loopback address no other test in this run uses."""
    n = next(_hosts)
    return f"127.77.{_SUBNET}.{n % 250 + 1}"


# --------------------------------------------------------------------------- upstreams


class Upstream:
    """Threaded echo server; optionally greets each connection with ``<id>\\n`` first."""

    def __init__(self, ident: str, *, greet: bool = True, unix: str | None = None) -> None:
        self.ident = ident
        self.greet = greet
        self.unix = unix
        if unix is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix)
        else:
            self.sock = socket.socket()
            self.sock.bind((fresh_host(), 0))
        self.sock.listen(64)
        self.received = bytearray()
        self.cond = threading.Condition()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def target(self) -> dict[str, object]:
        if self.unix is not None:
            return {"id": self.ident, "unix": self.unix}
        host, port = self.sock.getsockname()
        return {"id": self.ident, "host": host, "port": port}

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.greet:
                conn.sendall(f"{self.ident}\n".encode())
            while data := conn.recv(65536):
                with self.cond:
                    self.received += data
                    self.cond.notify_all()
                conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    def wait_received(self, expected: bytes, timeout: float = 5.0) -> bool:
        """Wait until ``expected`` appears in everything received so far."""
        with self.cond:
            return self.cond.wait_for(lambda: expected in self.received, timeout)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    client: FabricClient
    control: Path
    log: Path


@pytest.fixture
def fab() -> Iterator[Running]:
    workdir = Path(tempfile.mkdtemp(prefix="fab-"))  # short: Unix socket paths max ~107 bytes
    control, log = workdir / "fabric.sock", workdir / "fabric.log"
    running = Running(*start_fabric(control, log), control, log)
    try:
        yield running
    finally:
        proc = running.proc  # a test may have replaced it with a restarted fabric
        if proc.poll() is None:
            try:
                running.client.shutdown()
                proc.wait(5)
            except (FabricError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        running.client.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def upstreams() -> Iterator[collections.abc.Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(ident: str, **kwargs: object) -> Upstream:
        made.append(Upstream(ident, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


def route(*targets: Upstream | dict[str, object], policy: str = "first", stale: dict | None = None) -> dict:
    return {
        "targets": [t.target if isinstance(t, Upstream) else t for t in targets],
        "policy": policy,
        "stale": stale,
    }


def listen(fab: Running, name: str, rt: dict) -> tuple[str, int]:
    host = fresh_host()
    return host, fab.client.set_listener(name, host, 0, rt)


def connect(addr: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(addr, timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_line(sock: socket.socket) -> str:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError(f"EOF after {bytes(buf)!r}")
        buf += chunk
    return buf.decode().strip()


def who(addr: tuple[str, int]) -> str:
    """Open a connection and return which upstream answered."""
    with connect(addr) as sock:
        return read_line(sock)


def echo(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    return recv_exact(sock, len(payload))


def assert_reset(sock: socket.socket, timeout: float = 5.0) -> None:
    sock.settimeout(timeout)
    with pytest.raises(ConnectionResetError):
        while sock.recv(65536):
            pass  # drain anything delivered before the reset
        pytest.fail("connection closed with FIN, expected RST")


def assert_reset_on_connect(addr: tuple[str, int]) -> None:
    """Connect and expect an RST; it may beat connect() itself back to the caller."""
    try:
        sock = connect(addr)
    except ConnectionResetError:
        return
    with sock:
        assert_reset(sock)


def stats(fab: Running, name: str) -> dict:
    (entry,) = fab.client.stats(name)
    return entry


def wait_for(predicate: collections.abc.Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --------------------------------------------------------------------------- routing


def test_first_route_switch_and_drop(fab: Running, upstreams) -> None:
    a, b = upstreams("writer-a"), upstreams("writer-b")
    addr = listen(fab, "cluster", route(a, b))
    old = connect(addr)
    assert read_line(old) == "writer-a"
    assert echo(old, b"hello") == b"hello"

    fab.client.set_route("cluster", route(b))
    new = connect(addr)
    assert read_line(new) == "writer-b"
    assert echo(old, b"still-a") == b"still-a"  # existing connection stays on the old target

    before = stats(fab, "cluster")
    assert (before["active"], before["accepted"]) == (2, 2)
    assert before["by_target"] == {"writer-a": 1, "writer-b": 1}
    assert before["bytes_up"] == len(b"hello") + len(b"still-a")
    assert before["bytes_down"] == len("writer-a\nwriter-b\n") + len(b"hello") + len(b"still-a")

    assert fab.client.drop("writer-a") == 1
    assert_reset(old)
    assert echo(new, b"unharmed") == b"unharmed"
    after = stats(fab, "cluster")
    assert (after["active"], after["by_target"]) == (1, {"writer-b": 1})
    assert fab.client.drop("writer-a") == 0
    old.close(), new.close()


def test_drop_can_be_scoped_to_one_listener(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    one, two = listen(fab, "one", route(a)), listen(fab, "two", route(a))
    s1, s2 = connect(one), connect(two)
    assert read_line(s1) == read_line(s2) == "writer-a"
    assert fab.client.drop("writer-a", listener="one") == 1
    assert_reset(s1)
    assert echo(s2, b"x") == b"x"
    s1.close(), s2.close()


def test_round_robin_spreads_new_connections(fab: Running, upstreams) -> None:
    a, b = upstreams("reader-a"), upstreams("reader-b")
    addr = listen(fab, "reader", route(a, b, policy="round_robin"))
    socks = [connect(addr) for _ in range(10)]
    landed = collections.Counter(read_line(s) for s in socks)
    assert landed == {"reader-a": 5, "reader-b": 5}
    assert stats(fab, "reader")["by_target"] == {"reader-a": 5, "reader-b": 5}
    for s in socks:
        s.close()


def test_stale_route_keeps_old_target_for_the_dns_ttl(fab: Running, upstreams) -> None:
    old, new = upstreams("writer-old"), upstreams("writer-new")
    addr = listen(fab, "cluster", route(old))
    assert who(addr) == "writer-old"
    changed_at = time.monotonic()
    fab.client.set_route("cluster", route(new, stale={"targets": [old.target], "seconds": 1.0}))
    assert who(addr) == "writer-old"  # cached DNS still points at the old writer
    while (answer := who(addr)) == "writer-old":
        assert time.monotonic() - changed_at < 5, "stale route never expired"
        time.sleep(0.05)
    assert answer == "writer-new"
    assert time.monotonic() - changed_at >= 0.95


def test_unix_socket_target(fab: Running, upstreams) -> None:
    path = Path(fab.control).parent / ".s.PGSQL.5432"
    inst = upstreams("instance-1", unix=str(path))
    addr = listen(fab, "instance-1", route(inst))
    with connect(addr) as sock:
        assert read_line(sock) == "instance-1"
        assert echo(sock, b"over unix") == b"over unix"


def test_rebind_moves_listener_and_keeps_connections(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    addr = listen(fab, "cluster", route(a))
    live = connect(addr)
    assert read_line(live) == "writer-a"
    new_host = fresh_host()
    new_port = fab.client.set_listener("cluster", new_host, 0, route(a))
    assert who((new_host, new_port)) == "writer-a"
    with pytest.raises(ConnectionRefusedError):
        connect(addr)
    assert echo(live, b"survived") == b"survived"
    live.close()


def test_large_transfer_is_intact_and_counted(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    payload = os.urandom(4 << 20)
    with connect(addr) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()  # echo both ways at once exercises backpressure
        assert recv_exact(sock, len(payload)) == payload
        sender.join()
    entry = stats(fab, "cluster")
    assert entry["bytes_up"] == entry["bytes_down"] == len(payload)


@pytest.mark.parametrize("case", ["no-target", "dead-upstream"])
def test_unroutable_connection_is_reset_quickly(fab: Running, case: str) -> None:
    if case == "no-target":
        rt = route()
    else:
        probe = socket.socket()
        probe.bind((fresh_host(), 0))
        host, port = probe.getsockname()
        probe.close()  # nothing listens there: connection refused
        rt = route({"id": "gone", "host": host, "port": port})
    addr = listen(fab, "cluster", rt)
    started = time.monotonic()
    assert_reset_on_connect(addr)
    assert time.monotonic() - started < 1.0  # the connect timeout is 2 s
    entry = stats(fab, "cluster")
    assert (entry["accepted"], entry["active"]) == (1, 0)


def test_remove_listener_resets_its_connections(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    addr = listen(fab, "cluster", route(a))
    live = connect(addr)
    assert read_line(live) == "writer-a"
    fab.client.remove_listener("cluster")
    assert_reset(live)
    with pytest.raises(ConnectionRefusedError):
        connect(addr)
    with pytest.raises(FabricError, match="no listener named 'cluster'"):
        fab.client.stats("cluster")
    live.close()


# --------------------------------------------------------------------------- toxics


def round_trip(sock: socket.socket) -> float:
    started = time.monotonic()
    assert echo(sock, b"!") == b"!"
    return time.monotonic() - started


def test_latency_toxic_delays_in_order_and_stops_when_removed(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    sock = connect(addr)
    round_trip(sock)
    fab.client.add_toxic("cluster", "slow", "latency", stream="upstream",
                         attributes={"latency_ms": 200, "jitter_ms": 0})
    assert round_trip(sock) >= 0.2  # applies to an existing connection

    messages = [b"%05d;" % i for i in range(400)]
    for message in messages[:200]:
        sock.sendall(message)
    # A control round trip after the bytes reached the proxy's socket guarantees the
    # proxy has read (and queued) them before the toxic goes away.
    fab.client.ping()
    fab.client.remove_toxic("cluster", "slow")
    assert b"00000;" not in a.received, "precondition: the first chunks are still queued in the proxy"
    for message in messages[200:]:
        sock.sendall(message)  # undelayed now, yet must stay behind the queued ones
    expected = b"".join(messages)
    assert recv_exact(sock, len(expected)) == expected
    assert round_trip(sock) < 0.2
    assert fab.client.list_toxics("cluster") == []
    sock.close()


def test_blackhole_downstream_swallows_replies_until_removed(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    fab.client.add_toxic("cluster", "hole", "blackhole", stream="downstream")
    sock = connect(addr)  # a connection made while the toxic exists
    sock.sendall(b"request")
    assert a.wait_received(b"request")  # upstream got it and echoed it...
    sock.settimeout(SILENCE_S)
    with pytest.raises(socket.timeout):
        sock.recv(100)  # ...but the reply vanished; the connection is still open
    fab.client.remove_toxic("cluster", "hole")
    sock.settimeout(5)
    assert echo(sock, b"again") == b"again"
    sock.close()


def test_reset_toxic_resets_existing_and_new_connections(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    existing = connect(addr)
    assert echo(existing, b"ok") == b"ok"
    fab.client.add_toxic("cluster", "rst", "reset", attributes={"timeout_ms": 100})
    assert_reset(existing)
    assert_reset_on_connect(addr)
    fab.client.reset_toxics("cluster")
    with connect(addr) as healthy:
        assert echo(healthy, b"fine") == b"fine"
    existing.close()


def test_bandwidth_zero_holds_bytes_until_removed(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    fab.client.add_toxic("cluster", "choke", "bandwidth", stream="upstream",
                         attributes={"rate_kbps": 0})
    sock = connect(addr)
    sock.sendall(b"held")
    assert not a.wait_received(b"held", timeout=SILENCE_S)
    fab.client.remove_toxic("cluster", "choke")
    assert recv_exact(sock, 4) == b"held"  # held, not discarded
    sock.close()


def test_throttled_link_still_delivers_everything(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = listen(fab, "cluster", route(a))
    fab.client.add_toxic("cluster", "thin", "bandwidth", attributes={"rate_kbps": 800})
    payload = os.urandom(10_000)
    with connect(addr) as sock:
        assert echo(sock, payload) == payload


def test_toxic_validation_and_listing(fab: Running, upstreams) -> None:
    listen(fab, "cluster", route(upstreams("writer-a")))
    with pytest.raises(FabricError, match="unknown toxic type 'slowish'"):
        fab.client.add_toxic("cluster", "x", "slowish")
    with pytest.raises(FabricError, match="needs attribute 'latency_ms'"):
        fab.client.add_toxic("cluster", "x", "latency")
    with pytest.raises(FabricError, match="no listener named 'nope'"):
        fab.client.add_toxic("nope", "x", "blackhole")
    fab.client.add_toxic("cluster", "hole", "blackhole", stream="upstream", toxicity=0.5)
    with pytest.raises(FabricError, match="already exists"):
        fab.client.add_toxic("cluster", "hole", "blackhole")
    assert fab.client.list_toxics("cluster") == [
        {"name": "hole", "type": "blackhole", "stream": "upstream", "toxicity": 0.5, "attributes": {}}
    ]
    with pytest.raises(FabricError, match="no toxic named 'other'"):
        fab.client.remove_toxic("cluster", "other")
    fab.client.reset_toxics()
    assert fab.client.list_toxics("cluster") == []


# --------------------------------------------------------------------------- control plane


def test_bind_conflict_names_the_address(fab: Running, upstreams) -> None:
    host, port = listen(fab, "one", route(upstreams("writer-a")))
    with pytest.raises(FabricError) as info:
        fab.client.set_listener("two", host, port, route())
    assert str(info.value) == f"cannot bind {host}:{port}: address already in use"
    assert [s["name"] for s in fab.client.stats()] == ["one"]


def test_unknown_op_and_garbage_do_not_hurt_the_server(fab: Running) -> None:
    with pytest.raises(FabricError, match="unknown op 'frobnicate'"):
        fab.client.request("frobnicate")
    garbage = [
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'{"op": 5}',
        b'{"op": "set_listener"}',
        b'{"op": "set_listener", "name": "x", "host": "127.77.0.1", "port": 0, "route": {"policy": "random"}}',
        b'{"op": "drop"}',
    ]
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(5)
        raw.connect(str(fab.control))
        replies = raw.makefile("rb")
        for line in garbage:
            raw.sendall(line + b"\n")
            reply = json.loads(replies.readline())
            assert reply["ok"] is False and reply["error"], line
        try:
            raw.sendall(b"x" * (2 << 20) + b"\n")  # over the line limit: error, then hang-up
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up before reading it all
        assert json.loads(replies.readline()) == {"ok": False, "error": "request line too long"}
    assert fab.client.ping() == fab.proc.pid


def test_client_reconnects_after_fabric_restart(fab: Running) -> None:
    fab.client.ping()  # the client now holds a persistent connection
    fab.client.request("shutdown")
    fab.proc.wait(5)
    fab.proc, fresh = start_fabric(fab.control, fab.log)
    fresh.close()
    assert fab.client.ping() == fab.proc.pid  # the stale connection was replaced


def test_shutdown_op_stops_the_process(fab: Running, upstreams) -> None:
    addr = listen(fab, "cluster", route(upstreams("writer-a")))
    live = connect(addr)
    assert read_line(live) == "writer-a"
    fab.client.shutdown()
    assert fab.proc.wait(5) == 0
    assert fab.proc.poll() is not None
    assert not fab.control.exists()
    live.settimeout(5)
    with pytest.raises(ConnectionResetError):
        while live.recv(100):
            pass
    with pytest.raises(ConnectionRefusedError):
        connect(addr)
    live.close()


def test_sigterm_stops_the_process(fab: Running) -> None:
    fab.proc.send_signal(signal.SIGTERM)
    assert fab.proc.wait(5) == 0
    assert fab.proc.poll() is not None
    assert not fab.control.exists()
    assert "shutting down" in fab.log.read_text()


def test_fabric_exits_when_its_parent_dies() -> None:
    """A crashed harness must not leave an orphaned fabric holding endpoint ports."""
    workdir = Path(tempfile.mkdtemp(prefix="fab-"))
    log = workdir / "fabric.log"
    script = (
        "import sys; from pathlib import Path; from harness.emulator.fabric import start_fabric\n"
        "proc, _ = start_fabric(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "print(proc.pid)\n"  # ...and exit without stopping the fabric
    )
    parent = subprocess.run(
        [sys.executable, "-c", script, str(workdir / "fabric.sock"), str(log)],
        capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert parent.returncode == 0, parent.stderr
    orphan = int(parent.stdout)
    try:
        wait_for(lambda: not _alive(orphan))
        assert "parent" in log.read_text() and "shutting down" in log.read_text()
    finally:
        if _alive(orphan):
            os.kill(orphan, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie (re-parented orphans are reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
