"""The fabric's fast path end to end: fast listeners, the C pump, and the fallback without it.

Same ground rules as ``test_fabric.py`` (whose fixtures and helpers these reuse):
real fabric process, real sockets on 127.77.x.y, waits on observable state.
The pump is built into the usual cache on first use (a second or so, once).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fabric import (  # noqa: F401  (fab and upstreams are fixtures)
    Running,
    _alive,
    assert_reset,
    assert_reset_on_connect,
    connect,
    echo,
    fab,
    fresh_host,
    read_line,
    recv_exact,
    route,
    stats,
    upstreams,
    wait_for,
    who,
)

from harness.emulator.fabric import FabricError, pump, start_fabric


def fast_listen(fab: Running, name: str, rt: dict) -> tuple[str, int]:
    host = fresh_host()
    return host, fab.client.set_listener(name, host, 0, rt, fast=True)


def pump_pid(fab: Running) -> int | None:
    return fab.client.request("ping")["pump_pid"]


def idle(fab: Running, name: str) -> bool:
    return stats(fab, name)["active"] == 0


@pytest.fixture
def fab_without_pump() -> Iterator[Running]:
    workdir = Path(tempfile.mkdtemp(prefix="fab-"))
    control, log = workdir / "fabric.sock", workdir / "fabric.log"
    running = Running(*start_fabric(control, log, env={pump.SWITCH_ENV: "off"}), control, log)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.client.shutdown()
            running.proc.wait(5)
        running.client.close()
        shutil.rmtree(workdir, ignore_errors=True)


class SummingUpstream:
    """Reads until the client half-closes, then answers ``got <n>`` and closes: a half-close probe."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((fresh_host(), 0))
        self.sock.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def target(self) -> dict[str, object]:
        host, port = self.sock.getsockname()
        return {"id": "summer", "host": host, "port": port}

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            total = 0
            while data := conn.recv(65536):
                total += len(data)
            conn.sendall(b"got %d" % total)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- forwarding


def test_fast_listener_forwards_through_the_pump(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    addr = fast_listen(fab, "cluster", route(a))
    assert pump_pid(fab) is not None
    with connect(addr) as sock:
        sock.sendall(b"early")  # sent before the greeting: waits in the kernel, not in Python
        assert read_line(sock) == "writer-a"
        assert recv_exact(sock, 5) == b"early"
        assert echo(sock, b"both ways") == b"both ways"
        entry = stats(fab, "cluster")
        assert (entry["fast"], entry["active"], entry["accepted"]) == (True, 1, 1)
        assert entry["by_target"] == {"writer-a": 1}
    wait_for(lambda: idle(fab, "cluster"))
    entry = stats(fab, "cluster")
    assert entry["bytes_up"] == len(b"early") + len(b"both ways")  # counted when the pair ends
    assert entry["bytes_down"] == len(b"writer-a\n") + len(b"early") + len(b"both ways")


def test_large_transfer_is_intact_and_counted(fab: Running, upstreams) -> None:
    a = upstreams("writer-a", greet=False)
    addr = fast_listen(fab, "cluster", route(a))
    payload = os.urandom(8 << 20)
    with connect(addr) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()  # echo both ways at once: partial writes and EPOLLOUT in the pump
        assert recv_exact(sock, len(payload)) == payload
        sender.join()
    wait_for(lambda: idle(fab, "cluster"))
    entry = stats(fab, "cluster")
    assert entry["bytes_up"] == entry["bytes_down"] == len(payload)


def test_half_close_passes_through(fab: Running) -> None:
    summer = SummingUpstream()
    addr = fast_listen(fab, "cluster", route(summer.target))
    try:
        with connect(addr) as sock:
            sock.sendall(b"x" * 100_000)
            sock.shutdown(socket.SHUT_WR)  # our FIN must reach the upstream...
            answer = bytearray()
            while chunk := sock.recv(100):  # ...while its reply still reaches us, then its FIN
                answer += chunk
        assert answer == b"got 100000"
        wait_for(lambda: idle(fab, "cluster"))
        assert stats(fab, "cluster")["bytes_up"] == 100_000
    finally:
        summer.close()


def test_unix_socket_target(fab: Running, upstreams) -> None:
    inst = upstreams("instance-1", unix=str(Path(fab.control).parent / ".s.PGSQL.5432"))
    addr = fast_listen(fab, "instance-1", route(inst))
    with connect(addr) as sock:
        assert read_line(sock) == "instance-1"
        assert echo(sock, b"over unix") == b"over unix"


# --------------------------------------------------------------------------- routing before the handoff


def test_round_robin_and_route_switch(fab: Running, upstreams) -> None:
    a, b = upstreams("reader-a"), upstreams("reader-b")
    addr = fast_listen(fab, "reader", route(a, b, policy="round_robin"))
    assert sorted(who(addr) for _ in range(4)) == ["reader-a", "reader-a", "reader-b", "reader-b"]
    fab.client.set_listener("reader", addr[0], addr[1], route(b), fast=True)
    assert who(addr) == "reader-b"


@pytest.mark.parametrize("case", ["no-target", "dead-upstream"])
def test_unroutable_connection_is_reset_quickly(fab: Running, case: str) -> None:
    if case == "no-target":
        rt = route()
    else:
        probe = socket.socket()
        probe.bind((fresh_host(), 0))
        host, port = probe.getsockname()
        probe.close()
        rt = route({"id": "gone", "host": host, "port": port})
    addr = fast_listen(fab, "cluster", rt)
    started = time.monotonic()
    assert_reset_on_connect(addr)
    assert time.monotonic() - started < 1.0
    entry = stats(fab, "cluster")
    assert (entry["accepted"], entry["active"]) == (1, 0)


# --------------------------------------------------------------------------- resets of pump-held connections


def test_drop_resets_pump_held_connections(fab: Running, upstreams) -> None:
    a, b = upstreams("writer-a"), upstreams("writer-b")
    addr = fast_listen(fab, "cluster", route(a))
    old = connect(addr)
    assert read_line(old) == "writer-a"
    fab.client.set_route("cluster", route(b))
    new = connect(addr)
    assert read_line(new) == "writer-b"
    assert stats(fab, "cluster")["by_target"] == {"writer-a": 1, "writer-b": 1}

    assert fab.client.drop("writer-a") == 1
    started = time.monotonic()
    assert_reset(old)
    assert time.monotonic() - started < 1.0
    entry = stats(fab, "cluster")
    assert (entry["active"], entry["by_target"]) == (1, {"writer-b": 1})
    assert echo(new, b"unharmed") == b"unharmed"
    assert fab.client.drop("writer-a") == 0
    old.close(), new.close()


def test_drop_while_the_upstream_connects(fab: Running) -> None:
    with socket.socket() as stuck:
        stuck.bind((fresh_host(), 0))
        stuck.listen(0)  # never accepted: once its queue is full, further SYNs go unanswered
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(stuck.getsockname())
        host, port = stuck.getsockname()
        addr = fast_listen(fab, "cluster", route({"id": "stuck", "host": host, "port": port}))
        with connect(addr) as sock:
            wait_for(lambda: stats(fab, "cluster")["by_target"] == {"stuck": 1})
            assert fab.client.drop("stuck") == 1
            assert_reset(sock, timeout=1.0)  # well before the 2 s connect timeout
        assert idle(fab, "cluster")
        for filler in fillers:
            filler.close()


def test_remove_listener_resets_pump_held_connections(fab: Running, upstreams) -> None:
    addr = fast_listen(fab, "cluster", route(upstreams("writer-a")))
    live = connect(addr)
    assert read_line(live) == "writer-a"
    fab.client.remove_listener("cluster")
    assert_reset(live)
    with pytest.raises(ConnectionRefusedError):
        connect(addr)
    live.close()


def test_upstream_reset_is_mirrored_to_the_client(fab: Running) -> None:
    with socket.socket() as upstream:
        upstream.bind((fresh_host(), 0))
        upstream.listen(1)
        host, port = upstream.getsockname()
        addr = fast_listen(fab, "cluster", route({"id": "raw", "host": host, "port": port}))
        with connect(addr) as sock:
            server_side, _ = upstream.accept()
            sock.sendall(b"hi")
            assert server_side.recv(2) == b"hi"  # the pump holds the pair now
            server_side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            server_side.close()
            assert_reset(sock)
    wait_for(lambda: idle(fab, "cluster"))


# --------------------------------------------------------------------------- the pump's life


def test_toxics_are_refused_and_fast_is_fixed(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    host, port = fast_listen(fab, "cluster", route(a))
    refused = "'cluster' is a fast-path client endpoint; toxics go on replication links"
    with pytest.raises(FabricError, match=refused):
        fab.client.add_toxic("cluster", "slow", "latency", attributes={"latency_ms": 10})
    with pytest.raises(FabricError, match="exists with fast=true"):
        fab.client.set_listener("cluster", host, port, route(a))


def test_pump_exits_with_the_fabric(fab: Running, upstreams) -> None:
    addr = fast_listen(fab, "cluster", route(upstreams("writer-a")))
    pid = pump_pid(fab)
    assert pid is not None and _alive(pid)
    live = connect(addr)
    assert read_line(live) == "writer-a"
    fab.proc.kill()  # no goodbye: only the control socket's EOF tells the pump
    fab.proc.wait()
    wait_for(lambda: not _alive(pid))
    assert_reset(live)  # its sessions die with it, as behind a crashed proxy
    live.close()


def test_shutdown_stops_the_pump(fab: Running, upstreams) -> None:
    addr = fast_listen(fab, "cluster", route(upstreams("writer-a")))
    pid = pump_pid(fab)
    assert pid is not None
    live = connect(addr)
    assert read_line(live) == "writer-a"
    fab.client.shutdown()
    assert fab.proc.wait(5) == 0
    assert not _alive(pid)  # reaped by the fabric before it exited
    assert_reset(live)
    live.close()


def test_fabric_survives_the_pump_dying(fab: Running, upstreams) -> None:
    a = upstreams("writer-a")
    addr = fast_listen(fab, "cluster", route(a))
    pid = pump_pid(fab)
    assert pid is not None
    live = connect(addr)
    assert read_line(live) == "writer-a"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pump_pid(fab) is None and idle(fab, "cluster"))
    with connect(addr) as sock:  # the same listening socket, now forwarded in Python
        assert read_line(sock) == "writer-a"
        assert echo(sock, b"still served") == b"still served"
    assert "pump" in fab.log.read_text() and "lost" in fab.log.read_text()
    live.close()


def test_without_the_pump_fast_listeners_forward_in_python(fab_without_pump: Running, upstreams) -> None:
    fab = fab_without_pump
    a = upstreams("writer-a")
    addr = fast_listen(fab, "cluster", route(a))
    assert pump_pid(fab) is None
    with connect(addr) as sock:
        assert read_line(sock) == "writer-a"
        assert echo(sock, b"in python") == b"in python"
        assert stats(fab, "cluster")["bytes_up"] == len(b"in python")  # Python counts as it goes
        assert fab.client.drop("writer-a") == 1
        assert_reset(sock)
    with pytest.raises(FabricError, match="fast-path client endpoint"):
        fab.client.add_toxic("cluster", "hole", "blackhole")
    assert f"{pump.SWITCH_ENV}" in fab.log.read_text()


# --------------------------------------------------------------------------- building


def test_build_is_cached_by_source_and_atomic(tmp_path: Path) -> None:
    first = pump.build_pump(tmp_path)
    built_at = first.stat().st_mtime_ns
    assert pump.build_pump(tmp_path) == first and first.stat().st_mtime_ns == built_at  # reused
    edited = tmp_path / "pump.c"
    edited.write_bytes(pump.SOURCE.read_bytes() + b"/* an edit */\n")
    second = pump.build_pump(tmp_path, edited)
    assert second != first and os.access(second, os.X_OK)  # an edit rebuilds
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name, "pump.c"])


def test_build_failure_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump, "COMPILER", "no-such-cc")
    with pytest.raises(pump.PumpUnavailable, match="no-such-cc"):
        pump.build_pump(tmp_path)
    broken = tmp_path / "broken.c"
    broken.write_text("int main(void) { return }\n")
    monkeypatch.setattr(pump, "COMPILER", "cc")
    with pytest.raises(pump.PumpUnavailable, match="cc failed"):
        pump.build_pump(tmp_path, broken)
    assert [p.name for p in tmp_path.iterdir()] == ["broken.c"]  # no partial binary left


def test_pump_protocol_directly() -> None:
    """The wire protocol of pump.c without a fabric: Unix socketpairs stand in for TCP."""
    control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([str(pump.build_pump()), str(theirs.fileno())], pass_fds=(theirs.fileno(),))
    theirs.close()
    control.settimeout(5)
    client, client_end = socket.socketpair()
    upstream_end, upstream = socket.socketpair()
    try:
        socket.send_fds(control, [b"pair 7"], [client_end.fileno(), upstream_end.fileno()])
        client_end.close(), upstream_end.close()
        client.sendall(b"ping")
        assert recv_exact(upstream, 4) == b"ping"
        upstream.sendall(b"pong!")
        assert recv_exact(client, 5) == b"pong!"
        client.shutdown(socket.SHUT_WR)
        assert upstream.recv(10) == b""  # the half-close went through
        upstream.close()
        assert client.recv(10) == b""
        assert control.recv(100) == b"closed 7 4 5"

        control.send(b"pair 8")  # no fds: reported over at once, nothing leaks
        assert control.recv(100) == b"closed 8 0 0"
        control.send(b"close 7")  # already over: ignored
        control.close()  # the fabric "dies"
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        client.close(), upstream.close(), control.close()


def test_sends_the_control_socket_refuses_wait_in_order() -> None:
    """A stalled pump fills the control socket: later commands queue in Python, in order."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        closed: list[tuple[int, int, int]] = []
        lost: list[bool] = []
        driver = pump.Pump(loop, pump.build_pump(), lambda *report: closed.append(report),
                           lambda: lost.append(True))
        os.kill(driver.pid, signal.SIGSTOP)
        try:
            for conn_id in itertools.count(1000):
                driver.close(conn_id)  # unknown ids: ignored, but they fill the socket
                if driver.outbox:
                    break
            client, client_end = socket.socketpair()
            upstream_end, upstream = socket.socketpair()
            driver.hand_off(7, client_end, upstream_end)  # queued behind the closes
            assert driver.outbox[-1][1] == (client_end, upstream_end)
        finally:
            os.kill(driver.pid, signal.SIGCONT)
        while driver.outbox:
            await asyncio.sleep(0.01)
        assert client_end.fileno() == -1  # sent, so our copy is closed
        client.sendall(b"queued")
        assert await loop.run_in_executor(None, recv_exact, upstream, 6) == b"queued"
        client.close(), upstream.close()
        while not closed:
            await asyncio.sleep(0.01)
        assert closed == [(7, 6, 0)] and not lost
        driver.stop()
        assert driver.proc.returncode == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_pump_refuses_a_bad_command_line() -> None:
    binary = pump.build_pump()
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=5, check=False)
    assert done.returncode == 2 and "usage" in done.stderr
