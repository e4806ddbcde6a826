"""MySQL endpoints on the fabric's C pump: plain packets stay in C, Aurora's statements go to Python.

Same ground rules as ``test_fabric.py`` (whose fixtures and helpers these reuse): a real fabric
process and real sockets. The upstream is a small fake MySQL server that answers every command
with an OK packet whose info text is the query it received, so a test sees what reached it.
Whether the pump still carries a connection is read from the pump's open file descriptors.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from test_fabric import Running, fab, fresh_host, recv_exact, wait_for  # noqa: F401  (fab is a fixture)

STORAGE = [f"sn{n}" for n in range(6)]
GREETING = (b"\x0a" + b"10.11.0-fake\0" + struct.pack("<I", 7) + b"abcdefgh\0" + struct.pack("<H", 0xF7FF)
            + b"\x21" + struct.pack("<H", 0x0002) + struct.pack("<H", 0x81BF) + b"\x15" + b"\0" * 10
            + b"ijklmnopqrst\0" + b"mysql_native_password\0")
CLIENT_CAPS = 0x200 | 0x8000  # PROTOCOL_41, SECURE_CONNECTION: no TLS, no compression


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = recv_exact(sock, 4)
    return header[3], recv_exact(sock, int.from_bytes(header[:3], "little"))


def query(text: bytes) -> bytes:
    return packet(0, b"\x03" + text)


def ok_info(payload: bytes) -> bytes:
    """The info text of the fake server's OK packet: what it received."""
    assert payload[:1] == b"\x00", payload
    return payload[7:]


class FakeMySql:
    """Greets, accepts any login, and answers each command with OK + the query it got."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((fresh_host(), 0))
        self.sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def target(self, writer: bool = True) -> dict[str, object]:
        host, port = self.sock.getsockname()
        settings = {"region": "us-east-1", "cluster": "c", "instance": "w1", "master_user": "admin",
                    "writer": "w1" if writer else "w2", "members": ["w1", "w2"], "version": "3.05.2",
                    "storage_links": STORAGE}
        return {"id": "w1", "host": host, "port": port,
                "rewrite": {"@@aurora_server_id": "'w1'", "@@aurora_version": "'3.05.2'", "aurora": settings}}

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(packet(0, GREETING))
                read_packet(conn)
                conn.sendall(packet(2, b"\x00\x00\x00\x02\x00\x00\x00"))
                while True:
                    _, body = read_packet(conn)
                    conn.sendall(packet(1, b"\x00\x00\x00\x02\x00\x00\x00" + body[1:]))
            except (EOFError, OSError):  # the client hung up
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[FakeMySql]:
    fake = FakeMySql()
    yield fake
    fake.close()


def endpoint(fab: Running, server: FakeMySql, writer: bool = True) -> tuple[str, int]:
    for name in STORAGE:  # the volume's virtual storage nodes: listeners that carry no bytes
        fab.client.set_listener(name, fresh_host(), 0, {"targets": []})
    host = fresh_host()
    return host, fab.client.set_listener("cluster", host, 0, {"targets": [server.target(writer)]}, fast=True)


def login(addr: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(addr, timeout=5)
    read_packet(sock)
    sock.sendall(packet(1, struct.pack("<I", CLIENT_CAPS) + b"\0" * 28 + b"admin\0\0"))
    assert read_packet(sock)[1][:1] == b"\x00"
    return sock


def ask(sock: socket.socket, text: bytes) -> bytes:
    sock.sendall(query(text))
    return ok_info(read_packet(sock)[1])


def pumped(fab: Running) -> int:
    """How many connections the pump carries: its sockets, less its control socket, by two."""
    pid = fab.client.request("ping")["pump_pid"]
    assert pid, "these tests need the pump (a C compiler)"
    sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return (sockets - 1) // 2


def test_plain_queries_stay_on_the_pump_and_aurora_ones_are_answered_in_python(fab: Running, server) -> None:
    addr = endpoint(fab, server)
    sock = login(addr)
    wait_for(lambda: pumped(fab) == 1)
    assert ask(sock, b"SELECT 1") == b"SELECT 1"
    assert ask(sock, b"SELECT @@aurora_version") == b"SELECT '3.05.2' AS `@@aurora_version`"
    wait_for(lambda: pumped(fab) == 0)  # the pump handed the connection back
    assert ask(sock, b"select @@SESSION.Aurora_Server_Id + 0") == b"select 'w1' + 0"
    assert ask(sock, b"SELECT 2") == b"SELECT 2"
    sock.close()
    other = login(addr)
    assert ask(other, b"SELECT 3") == b"SELECT 3"
    wait_for(lambda: pumped(fab) == 1)
    other.close()
    wait_for(lambda: fab.client.request("stats", name="cluster")["listeners"][0]["active"] == 0)


def test_pipelined_and_split_packets_keep_their_order_across_the_handback(fab: Running, server) -> None:
    sock = login(endpoint(fab, server))
    sock.sendall(query(b"SELECT 1") + query(b"SELECT @@aurora_server_id") + query(b"SELECT 3"))
    assert [ok_info(read_packet(sock)[1]) for _ in range(3)] == [b"SELECT 1", b"SELECT 'w1' AS `@@aurora_server_id`",
                                                                  b"SELECT 3"]
    second = login(endpoint(fab, server))
    text = b"SELECT '" + b"x" * 300_000 + b"', @@aurora_version"
    whole = query(b"SELECT 4") + query(text)
    for at in range(0, len(whole), 65_536):  # a packet split over many reads, a needle at its end
        second.sendall(whole[at:at + 65_536])
        time.sleep(0.01)
    assert ok_info(read_packet(second)[1]) == b"SELECT 4"
    assert ok_info(read_packet(second)[1]) == text.replace(b"@@aurora_version", b"'3.05.2' AS `@@aurora_version`")
    sock.close()
    second.close()


def answered_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except TimeoutError:
        return False
    finally:
        sock.settimeout(5)


def test_a_toxic_on_the_writers_volume_takes_its_connections_back_to_hold_commits(fab: Running, server) -> None:
    addr = endpoint(fab, server)
    sock = login(addr)
    wait_for(lambda: pumped(fab) == 1)
    assert ask(sock, b"INSERT INTO t VALUES (1)") == b"INSERT INTO t VALUES (1)"
    for name in STORAGE[:3]:  # three of six nodes down: no write quorum
        fab.client.add_toxic(name, "down", "blackhole", stream="upstream")
    assert pumped(fab) == 0, "the toxic is in place only once the pump has let go"
    sock.sendall(query(b"INSERT INTO t VALUES (2)"))
    assert not answered_within(sock, 0.5), "the commit waits for the quorum"
    fab.client.remove_toxic(STORAGE[0], "down")
    assert ok_info(read_packet(sock)[1]) == b"INSERT INTO t VALUES (2)"
    late = login(addr)  # while the volume has toxics, a new writer connection starts in Python
    assert pumped(fab) == 0
    assert ask(late, b"SELECT 1") == b"SELECT 1"
    sock.close()
    late.close()


def test_change_user_goes_to_python_and_tls_sessions_pass_untouched(fab: Running, server) -> None:
    addr = endpoint(fab, server)
    sock = login(addr)
    wait_for(lambda: pumped(fab) == 1)
    sock.sendall(packet(0, b"\x11" + b"other\0" + b"\0"))  # COM_CHANGE_USER: Python notes the new user
    assert ok_info(read_packet(sock)[1]) == b"other\0\0"
    wait_for(lambda: pumped(fab) == 0)
    assert ask(sock, b"SELECT @@aurora_server_id") == b"SELECT 'w1' AS `@@aurora_server_id`"
    sock.close()
    tls = socket.create_connection(addr, timeout=5)  # an SSLRequest: nothing after it is understood
    read_packet(tls)
    tls.sendall(packet(1, struct.pack("<I", CLIENT_CAPS | 0x800) + b"\0" * 28))
    read_packet(tls)
    assert ask(tls, b"SELECT @@aurora_version") == b"SELECT @@aurora_version"
    assert pumped(fab) == 1
    tls.close()
    wait_for(lambda: pumped(fab) == 0)


def error_code(payload: bytes) -> int:
    assert payload[:1] == b"\xff", payload
    return int.from_bytes(payload[1:3], "little")


@pytest.mark.parametrize("user, code", [("admin", 1105), ("bob", 1227)])
def test_a_connection_goes_back_to_the_pump_after_plain_commands_and_keeps_its_user(fab: Running, server,
                                                                                      user: str, code: int) -> None:
    addr = endpoint(fab, server)
    sock = socket.create_connection(addr, timeout=5)
    read_packet(sock)
    sock.sendall(packet(1, struct.pack("<I", CLIENT_CAPS) + b"\0" * 28 + user.encode() + b"\0\0"))
    read_packet(sock)
    for round_ in range(2):
        assert ask(sock, b"SELECT @@aurora_server_id") == b"SELECT 'w1' AS `@@aurora_server_id`"
        wait_for(lambda: pumped(fab) == 0)
        for n in range(8):  # mysql_session.REPUMP_AFTER
            assert ask(sock, b"SELECT %d" % n) == b"SELECT %d" % n
        wait_for(lambda: pumped(fab) == 1)
    # Only the master user may inject faults (the one named in the handshake, carried through the pump):
    # admin gets past that check to the emulator, absent here.
    sock.sendall(query(b"ALTER SYSTEM CRASH INSTANCE"))
    assert error_code(read_packet(sock)[1]) == code
    assert ask(sock, b"SELECT 9") == b"SELECT 9"
    sock.close()
    wait_for(lambda: fab.client.request("stats", name="cluster")["listeners"][0]["active"] == 0)
