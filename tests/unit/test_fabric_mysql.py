"""The MySQL side of the fabric on hand-made packets: the query rewriter, Aurora's SQL surface and
fault-injection statements in a session (with a fake connection and emulator), the write quorum."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from harness.emulator.fabric.controller import Controller
from harness.emulator.fabric.mysql_protocol import (
    CLIENT_PROTOCOL_41,
    CLIENT_SSL,
    COM_QUERY,
    MAX_PACKET,
)
from harness.emulator.fabric.mysql_quorum import node_acknowledges, quorum_wait
from harness.emulator.fabric.mysql_session import MySqlSession
from harness.emulator.fabric.mysql_settings import parse_rewrite
from harness.emulator.fabric.mysql_surface import (
    QueryRewriter,
    replica_host_status_sql,
    show_variables,
    substitute_replica_host_status,
)
from harness.emulator.fabric.toxics import parse_toxic

VALUES = {"@@aurora_server_id": "'db-2'", "@@aurora_version": "'3.05.2'", "@@innodb_read_only": "1"}


def packet(payload: bytes, seq: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def query(sql: str, seq: int = 0) -> bytes:
    return packet(bytes([COM_QUERY]) + sql.encode(), seq)


def test_aurora_variables_in_a_query_are_replaced_and_the_length_fixed() -> None:
    out = QueryRewriter(VALUES).feed(query("SELECT @@aurora_server_id, @@AURORA_VERSION, @@innodb_read_only"))
    assert out == query("SELECT 'db-2' AS `@@aurora_server_id`, '3.05.2' AS `@@AURORA_VERSION`, "
                        "1 AS `@@innodb_read_only`")


def test_a_variable_keeps_its_name_as_the_column_only_where_it_is_a_whole_select_item() -> None:
    rewriter = QueryRewriter(VALUES)
    assert rewriter.rewrite(b"SELECT @@aurora_server_id AS sid") == b"SELECT 'db-2' AS sid"
    assert rewriter.rewrite(b"SELECT 1 FROM t WHERE @@aurora_server_id = 'x'") == b"SELECT 1 FROM t WHERE 'db-2' = 'x'"
    assert rewriter.rewrite(b"SELECT CONCAT(@@aurora_version, 'x')") == b"SELECT CONCAT('3.05.2', 'x')"
    assert (rewriter.rewrite(b"select distinct @@global.aurora_version from dual;")
            == b"select distinct '3.05.2' AS `@@global.aurora_version` from dual;")


def test_other_queries_and_other_packets_pass_unchanged() -> None:
    rewriter = QueryRewriter(VALUES)
    plain = query("SELECT @@version, @@aurora_server_id_x")
    handshake = packet(b"\x8d\xa6\x0f\x00" + b"@@aurora_server_id", seq=1)
    ping = packet(b"\x0e")
    assert rewriter.feed(plain + handshake + ping) == plain + handshake + ping


def test_a_packet_split_across_reads_is_held_until_complete() -> None:
    rewriter = QueryRewriter(VALUES)
    whole = query("SELECT @@aurora_server_id")
    assert rewriter.feed(whole[:2]) == b""
    assert rewriter.feed(whole[2:9]) == b""
    assert rewriter.feed(whole[9:] + query("SELECT 1")[:3]) == query("SELECT 'db-2' AS `@@aurora_server_id`")
    assert rewriter.feed(query("SELECT 1")[3:]) == query("SELECT 1")


def test_an_oversized_packet_streams_through_untouched() -> None:
    rewriter = QueryRewriter(VALUES)
    big = bytes([COM_QUERY]) + b"@@aurora_server_id" + b"x" * (MAX_PACKET - 19)
    first = MAX_PACKET.to_bytes(3, "little") + b"\x00" + big
    tail = packet(b"end", seq=1)
    out = rewriter.feed(first[:1000]) + rewriter.feed(first[1000:]) + rewriter.feed(tail)
    assert out == first + tail


# --- Aurora's SQL surface and fault-injection statements ------------------------------------------------------

SETTINGS = {"region": "us-east-1", "cluster": "db", "instance": "db-1", "master_user": "master", "writer": "db-1",
            "members": ["db-1", "db-2", "db-3"], "version": "3.05.2",
            "storage_links": [f"sn{i}" for i in range(6)], "quorum": 4}


def test_show_variables_lists_aurora_variables_and_leaves_other_patterns_alone() -> None:
    ours = {"aurora_version": "3.05.2", "aurora_server_id": "db-1", "innodb_read_only": "OFF"}
    sql = show_variables("SHOW VARIABLES LIKE 'aurora_version'", ours)
    assert sql is not None and "UNION ALL SELECT 'aurora_version', '3.05.2'" in sql
    assert "information_schema.SESSION_VARIABLES" in sql and sql.endswith("ORDER BY Variable_name")
    assert "GLOBAL_VARIABLES" in show_variables("show global variables like 'innodb_read%';", ours)
    assert "WHERE Variable_name = 'x'" in show_variables("SHOW VARIABLES WHERE Variable_name = 'x'", ours)
    assert show_variables("SHOW VARIABLES LIKE 'max_connections'", ours) is None
    assert show_variables("SELECT 'SHOW VARIABLES'", ours) is None


def test_replica_host_status_becomes_a_derived_table_keeping_an_alias() -> None:
    table = replica_host_status_sql([{"server_id": "db-1", "is_writer": True},
                                     {"server_id": "db-2", "is_writer": False, "replica_lag_ms": 12.5}])
    assert "'MASTER_SESSION_ID' AS SESSION_ID" in table and "CAST(12.5 AS DOUBLE) AS REPLICA_LAG_IN_MILLISECONDS" in table
    plain = substitute_replica_host_status("SELECT * FROM information_schema.replica_host_status WHERE 1", table)
    assert plain == f"SELECT * FROM {table} AS replica_host_status WHERE 1"
    aliased = substitute_replica_host_status("SELECT r.SERVER_ID FROM `INFORMATION_SCHEMA`.`REPLICA_HOST_STATUS` r",
                                             table)
    assert aliased == f"SELECT r.SERVER_ID FROM {table} r"


def test_rewrite_settings_are_validated_and_kept_hashable() -> None:
    parsed = parse_rewrite({"@@aurora_server_id": "'db-1'", "aurora": SETTINGS}, "db-1")
    assert dict(parsed)["aurora"] == json.dumps(SETTINGS, sort_keys=True)
    hash(parsed)
    with pytest.raises(ValueError, match="Aurora settings"):
        parse_rewrite({"aurora": {"region": "x"}}, "db-1")
    with pytest.raises(ValueError, match="SQL literals"):
        parse_rewrite({"aurora_server_id": "'db-1'"}, "db-1")


def toxic(kind: str, **attributes: float) -> Any:
    return parse_toxic({"name": kind, "type": kind, "attributes": attributes})


def test_the_write_quorum_is_four_of_six_storage_nodes() -> None:
    rng, now = random.Random(1), 100.0
    down = [toxic("stall", percent=100)]
    assert quorum_wait([down, down] + [[]] * 4, 4, now, rng) == (now, 0.0), "two nodes lost: writes go on"
    held, _ = quorum_wait([down] * 3 + [[]] * 3, 4, now, rng)
    assert held == float("inf"), "three lost: held until a toxic goes"
    slow = [toxic("congestion", min_ms=40, max_ms=80)]
    assert quorum_wait([slow] * 2 + [[]] * 4, 4, now, rng) == (now, 0.0), "the fast four answer"
    for _ in range(50):
        held, delay = quorum_wait([slow] * 3 + [[]] * 3, 4, now, rng)
        assert held == now and 0.040 <= delay <= 0.080
    assert node_acknowledges([toxic("blackhole")], now, rng)[0] == float("inf")
    assert node_acknowledges([toxic("latency", latency_ms=5)], now, rng) == (now, 0.005)


class FakeIO:
    """The connection a session lives in, recorded."""

    def __init__(self, loop: asyncio.AbstractEventLoop, toxics: dict[str, list[Any]] | None = None):
        self.loop = loop
        self.server, self.client = bytearray(), bytearray()
        self.held, self.closed, self.resets = False, False, []
        self.node_toxics = toxics or {}

    def to_server(self, data: bytes) -> None:
        self.server += data

    def to_client(self, data: bytes) -> None:
        self.client += data

    def hold_client(self, held: bool) -> None:
        self.held = held

    def close(self) -> None:
        self.closed = True

    def toxics(self, listener: str) -> list[Any]:
        return self.node_toxics.get(listener, [])

    def reset_link(self, listener: str) -> int:
        self.resets.append(listener)
        return 1


class FakeController(Controller):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, action: str, timeout: float, **arguments: Any) -> Any:
        self.calls.append((action, arguments))
        if action == "aurora_surface":
            return {"volume_status": {"disks": 6, "nodes": 6},
                    "replica_status": [{"server_id": "db-1", "session_id": "MASTER_SESSION_ID", "cpu": 1.5},
                                       {"server_id": "db-2", "session_id": "u2", "replica_lag_in_msec": 250.0}]}
        return {"message": "ok", "fault": {"links": ["rd-db-2"]}}


def greeting(status: int = 2) -> bytes:
    caps = 0xF7FF | (0x81BF << 16)
    rest = b"\x01\x00\x00\x00" + b"12345678" + b"\x00" + (caps & 0xFFFF).to_bytes(2, "little") + b"\x2d" + \
        status.to_bytes(2, "little") + (caps >> 16).to_bytes(2, "little") + b"\x15" + b"\x00" * 10 + b"x" * 13
    return packet(b"\x0a" + b"10.11.19-MariaDB\x00" + rest)


def login(user: str, caps: int = CLIENT_PROTOCOL_41 | 0x8000) -> bytes:
    return packet(caps.to_bytes(4, "little") + b"\x00\x00\x00\x01" + b"\x2d" + b"\x00" * 23 + user.encode() + b"\x00"
                  + b"\x14" + b"x" * 20, seq=1)


def session(user: str = "master", toxics: dict[str, list[Any]] | None = None
            ) -> tuple[MySqlSession, FakeIO, FakeController, asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    io, controller = FakeIO(loop, toxics), FakeController()
    rewrite = {"@@aurora_server_id": "'db-1'", "aurora": json.dumps(SETTINGS)}
    sess = MySqlSession(rewrite, io, controller)
    sess.from_server(greeting())
    sess.from_client(login(user))
    io.server.clear()
    return sess, io, controller, loop


def settle(loop: asyncio.AbstractEventLoop, sess: MySqlSession) -> None:
    while sess.busy is not None:
        loop.run_until_complete(asyncio.sleep(0.001))


def err_of(data: bytes) -> tuple[int, str, str]:
    assert data[4] == 0xFF and data[3] == 1, data
    return int.from_bytes(data[5:7], "little"), data[8:13].decode(), data[13:].decode()


def test_the_handshake_names_the_user_and_ordinary_queries_pass_rewritten() -> None:
    sess, io, _, loop = session()
    assert sess.user == "master"
    sess.from_client(query("SELECT @@aurora_server_id"))
    assert bytes(io.server) == query("SELECT 'db-1' AS `@@aurora_server_id`") and not io.client
    loop.close()


def test_errors_answer_in_mysql_words_and_the_session_goes_on() -> None:
    sess, io, _, loop = session()
    sess.from_client(query("ALTER SYSTEM CRASH SOON"))
    settle(loop, sess)
    assert err_of(bytes(io.client))[:2] == (1064, "42000") and not io.server and not io.held
    io.client.clear()
    sess.from_client(query("SELECT 1"))
    assert bytes(io.server) == query("SELECT 1")
    loop.close()


def test_only_the_master_user_injects_faults() -> None:
    sess, io, controller, loop = session(user="app")
    sess.from_client(query("ALTER SYSTEM CRASH"))
    settle(loop, sess)
    code, state, message = err_of(bytes(io.client))
    assert (code, state) == (1227, "42000") and "master user" in message
    assert not controller.calls and not io.server
    loop.close()


def test_a_simulated_failure_goes_to_the_emulator_and_answers_ok() -> None:
    sess, io, controller, loop = session()
    sess.from_client(query("ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE FOR INTERVAL 2 SECOND"))
    settle(loop, sess)
    assert controller.calls == [("inject", {"region": "us-east-1", "instance": "db-1", "fault": {
        "type": "replica_failure", "percent": 100.0, "seconds": 2.0, "replica": None}})]
    assert io.client[4] == 0x00 and io.client[3] == 1, "an OK packet"
    controller.calls.clear()
    sess.from_client(query("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE FOR INTERVAL 2 SECOND"))
    settle(loop, sess)
    assert [c[1]["fault"]["index"] for c in controller.calls] == list(range(6)), "the whole volume: every node"
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


def test_show_volume_status_and_replica_host_status_are_answered_by_mariadb_from_the_emulator() -> None:
    sess, io, _, loop = session()
    sess.from_client(query("SHOW VOLUME STATUS"))
    settle(loop, sess)
    assert b"SELECT 'Disks' AS Variable_name, '6' AS Value UNION ALL SELECT 'Nodes', '6'" in io.server
    io.server.clear()
    sess.from_client(query("SELECT SERVER_ID, REPLICA_LAG_IN_MILLISECONDS FROM information_schema.replica_host_status"))
    settle(loop, sess)
    sent = bytes(io.server[5:]).decode()
    assert "CAST(250.0 AS DOUBLE) AS REPLICA_LAG_IN_MILLISECONDS" in sent, "the live topology, with its lag"
    assert "'db-3' AS SERVER_ID" not in sent, "an instance the emulator does not list is not up"
    loop.close()


def test_replica_host_status_falls_back_to_the_published_members_when_the_emulator_is_silent() -> None:
    class Silent(FakeController):
        async def call(self, action: str, timeout: float, **arguments: Any) -> Any:
            raise ConnectionError("busy")

    sess, io, _, loop = session()
    sess.controller = Silent()
    sess.from_client(query("SELECT * FROM information_schema.replica_host_status"))
    settle(loop, sess)
    sent = bytes(io.server[5:]).decode()
    assert all(f"'{m}' AS SERVER_ID" in sent for m in SETTINGS["members"])
    assert sent.count("'MASTER_SESSION_ID' AS SESSION_ID") == 1
    loop.close()


def test_commits_wait_for_the_storage_quorum_reads_do_not() -> None:
    down = [toxic("stall", percent=100)]
    sess, io, _, loop = session(toxics={"sn0": down, "sn1": down, "sn2": down})
    sess.from_client(query("SELECT 1"))
    assert bytes(io.server) == query("SELECT 1"), "reads go on"
    io.server.clear()
    sess.from_client(query("INSERT INTO t VALUES (1)"))
    sess.from_client(query("SELECT 2"))
    loop.run_until_complete(asyncio.sleep(0.12))
    assert not io.server, "an autocommit write waits while 3 of 6 nodes are down, and what follows it"
    io.node_toxics.clear()
    settle(loop, sess)
    assert bytes(io.server) == query("INSERT INTO t VALUES (1)") + query("SELECT 2")
    loop.close()


def test_a_tls_session_passes_untouched() -> None:
    loop = asyncio.new_event_loop()
    io = FakeIO(loop)
    sess = MySqlSession({"@@aurora_server_id": "'db-1'", "aurora": json.dumps(SETTINGS)}, io, FakeController())
    sess.from_server(greeting())
    ssl_request = packet((CLIENT_PROTOCOL_41 | CLIENT_SSL).to_bytes(4, "little") + b"\x00" * 28, seq=1)
    sess.from_client(ssl_request + b"\x16\x03\x01 tls bytes")
    assert bytes(io.server) == ssl_request + b"\x16\x03\x01 tls bytes" and sess.raw
    loop.close()
