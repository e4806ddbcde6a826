"""The MySQL query rewriter, on hand-made packets."""

from __future__ import annotations

from harness.emulator.fabric.mysql import COM_QUERY, MAX_PACKET, QueryRewriter

VALUES = {"@@aurora_server_id": "'db-2'", "@@aurora_version": "'3.05.2'", "@@innodb_read_only": "1"}


def packet(payload: bytes, seq: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def query(sql: str, seq: int = 0) -> bytes:
    return packet(bytes([COM_QUERY]) + sql.encode(), seq)


def test_aurora_variables_in_a_query_are_replaced_and_the_length_fixed() -> None:
    out = QueryRewriter(VALUES).feed(query("SELECT @@aurora_server_id, @@AURORA_VERSION, @@innodb_read_only"))
    assert out == query("SELECT 'db-2', '3.05.2', 1")


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
    assert rewriter.feed(whole[9:] + query("SELECT 1")[:3]) == query("SELECT 'db-2'")
    assert rewriter.feed(query("SELECT 1")[3:]) == query("SELECT 1")


def test_an_oversized_packet_streams_through_untouched() -> None:
    rewriter = QueryRewriter(VALUES)
    big = bytes([COM_QUERY]) + b"@@aurora_server_id" + b"x" * (MAX_PACKET - 19)
    first = MAX_PACKET.to_bytes(3, "little") + b"\x00" + big
    tail = packet(b"end", seq=1)
    out = rewriter.feed(first[:1000]) + rewriter.feed(first[1000:]) + rewriter.feed(tail)
    assert out == first + tail
