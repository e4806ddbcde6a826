"""Client behaviours against a scripted database (and real drivers failing to connect).

The naive and resilient sessions are engine-agnostic: the same logic serves psycopg and PyMySQL.
No MySQL endpoint exists until the emulator serves Aurora MySQL, so PyMySQL is exercised as far
as it goes without one: its errors, classified by the MySQL dialect, drive the shared logic, and
real connection attempts to a closed port fail the way an unreachable writer does.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymysql
import pytest

from harness.dialects.base import Credentials
from harness.dialects.mysql import MySQLDialect
from harness.dialects.postgres import PostgresDialect
from harness.load.behaviours import Endpoint, NaiveSession, ResilientSession

CREDENTIALS = Credentials("app", "s3cret-pw", "app")
WRITER_ENDPOINT = Endpoint("cluster endpoint", "orders.cluster-x.example", 5432, writer=True)
READER_ENDPOINT = Endpoint("reader endpoint", "orders.cluster-ro-x.example", 5432, writer=False)


class Transient(Exception):
    """What the scripted dialect calls a connection lost."""


@dataclass
class Conn:
    address: str
    read_only: bool = False
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedDialect:
    """Connects as scripted: each entry is a Conn's role ("writer"/"reader") or an exception to raise."""

    script: list[Any] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    engine: str = "scripted"

    def connect(self, host: str, port: int, credentials: Credentials, *, connect_timeout: float,
                statement_timeout: float, application_name: str, hostaddr: str | None = None) -> Conn:
        self.connects.append(hostaddr or host)
        step = self.script.pop(0) if self.script else "writer"
        if isinstance(step, Exception):
            raise step
        return Conn(hostaddr or host, read_only=step == "reader")

    def is_read_only(self, conn: Conn) -> bool:
        return conn.read_only

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, Transient)

    def describe_error(self, error: BaseException) -> str:
        return f"{type(error).__name__}: {error}"


class Clock:
    """A fake clock that only moves when the session sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def resolver(*answers: str) -> Any:
    """Resolves the endpoint to each answer in turn (the last one from then on), counting lookups."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> str:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]
    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def resilient(dialect: Any, clock: Clock, endpoint: Endpoint = WRITER_ENDPOINT, resolve: Any = None,
              jitter: float = 1.0) -> ResilientSession:
    return ResilientSession(dialect, endpoint, CREDENTIALS, "test", resolver=resolve or resolver("10.0.0.1"),
                            clock=clock, sleep=clock.sleep, jitter=lambda: jitter)


def failing(times: int, error: Exception) -> Iterator[Any]:
    """An operation that raises `error` its first `times` calls, then returns the connection's address."""
    calls = {"n": 0}

    def operation(conn: Conn) -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return conn.address
    operation.calls = calls  # type: ignore[attr-defined]
    return operation  # type: ignore[return-value]


# --------------------------------------------------------------------------- naive


def test_naive_resolves_once_reconnects_at_once_and_never_retries() -> None:
    dialect = ScriptedDialect()
    resolve = resolver("10.0.0.1", "10.0.0.2")  # the endpoint moves after the first lookup
    session = NaiveSession(dialect, WRITER_ENDPOINT, CREDENTIALS, "test", resolver=resolve)
    operation = failing(1, Transient("server closed the connection"))
    with pytest.raises(Transient):
        session.execute(operation)
    assert operation.calls["n"] == 1 and session.conn is None, "the failed request is lost, the connection dropped"
    assert session.execute(operation) == "10.0.0.1", "reconnected at once, to the address it resolved first"
    assert dialect.connects == ["10.0.0.1", "10.0.0.1"] and len(resolve.calls) == 1


def test_naive_keeps_a_session_on_a_reader_it_reached_through_the_cluster_endpoint() -> None:
    dialect = ScriptedDialect(["reader"])
    session = NaiveSession(dialect, WRITER_ENDPOINT, CREDENTIALS, "test", resolver=resolver("10.0.0.1"))
    assert session.execute(lambda conn: conn.read_only) is True  # it never checks where it landed


# --------------------------------------------------------------------------- resilient


def test_resilient_retries_with_growing_backoff_and_resolves_on_every_reconnect() -> None:
    dialect = ScriptedDialect(["writer", Transient("refused"), Transient("refused"), "writer"])
    clock = Clock()
    resolve = resolver("10.0.0.1", "10.0.0.2", "10.0.0.3")
    session = resilient(dialect, clock, resolve=resolve)
    operation = failing(1, Transient("server closed the connection"))
    assert session.execute(operation) == "10.0.0.3"
    assert dialect.connects == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3"]
    assert len(resolve.calls) == 4, "a fresh lookup for every connection"
    assert clock.sleeps == [0.05, 0.1, 0.2] and session.retries == 3


def test_resilient_backoff_is_jittered_and_capped() -> None:
    clock = Clock()
    session = resilient(ScriptedDialect([Transient("refused")] * 8), clock, jitter=0.0)
    session.execute(lambda conn: None)
    assert clock.sleeps == [0.025, 0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]  # half the backoff at least, 1 s at most


def test_resilient_gives_up_when_the_budget_is_spent_and_raises_the_last_error() -> None:
    clock = Clock()
    session = resilient(ScriptedDialect([Transient(f"refused {n}") for n in range(100)]), clock)
    with pytest.raises(Transient, match="refused"):
        session.execute(lambda conn: None)
    assert clock.now <= ResilientSession.budget_s and clock.now > ResilientSession.budget_s - 2 * 1.0


def test_resilient_does_not_retry_an_error_that_a_new_connection_cannot_fix() -> None:
    clock = Clock()
    session = resilient(ScriptedDialect(), clock)
    operation = failing(5, ValueError("syntax error"))
    with pytest.raises(ValueError):
        session.execute(operation)
    assert operation.calls["n"] == 1 and clock.sleeps == []


def test_resilient_checks_it_reached_the_writer_through_the_cluster_endpoint() -> None:
    """Stale DNS: the cluster endpoint still leads to the demoted writer, now a reader."""
    dialect = ScriptedDialect(["reader", "reader", "writer"])
    clock = Clock()
    session = resilient(dialect, clock)
    assert session.execute(lambda conn: conn.read_only) is False
    assert len(dialect.connects) == 3 and session.retries == 2
    readers = resilient(ScriptedDialect(["reader"]), Clock(), endpoint=READER_ENDPOINT)
    assert readers.execute(lambda conn: conn.read_only) is True, "the reader endpoint is meant to reach readers"


def test_opening_a_session_connects_ahead_and_leaves_a_failure_to_the_first_request() -> None:
    clock = Clock()
    session = resilient(ScriptedDialect([Transient("refused"), "writer"]), clock)
    session.open()
    assert session.conn is None and clock.sleeps == [], "open() tries once, never waits, never raises"
    session.open()
    assert session.conn is not None and session.connects == 2
    naive = NaiveSession(ScriptedDialect([Transient("refused")]), WRITER_ENDPOINT, CREDENTIALS, "test",
                         resolver=resolver("10.0.0.1"))
    naive.open()
    assert naive.conn is None and naive.address == "10.0.0.1", "the address is resolved, and kept"


# --------------------------------------------------------------------------- real drivers, no server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once the socket is closed


@pytest.mark.parametrize(("error", "transient"), [
    (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), True),
    (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), True),
    (pymysql.err.OperationalError(1290, "The MySQL server is running with the --read-only option"), True),
    (pymysql.err.InterfaceError(0, ""), True),
    (pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax"), False),
    (pymysql.err.IntegrityError(1062, "Duplicate entry"), False),
    (ValueError("not a driver error"), False),
])
def test_mysql_errors_a_resilient_client_retries(error: BaseException, transient: bool) -> None:
    assert MySQLDialect().is_transient(error) is transient


def test_pymysql_sessions_share_the_behaviour_logic_against_an_unreachable_endpoint() -> None:
    endpoint = Endpoint("cluster endpoint", "127.0.0.1", closed_port(), writer=True)
    naive = NaiveSession(MySQLDialect(), endpoint, CREDENTIALS, "test")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        naive.execute(MySQLDialect().select_one)
    assert MySQLDialect().describe_error(refused.value).startswith("2003: Can't connect to MySQL server")
    clock = Clock()
    session = ResilientSession(MySQLDialect(), endpoint, CREDENTIALS, "test", clock=clock, sleep=clock.sleep)
    with pytest.raises(pymysql.err.OperationalError):
        session.execute(MySQLDialect().select_one)
    assert session.connects > 10 and clock.now <= ResilientSession.budget_s


def test_psycopg_errors_a_resilient_client_retries() -> None:
    dialect = PostgresDialect()
    assert dialect.is_transient(psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT"))
    assert dialect.is_transient(psycopg.errors.AdminShutdown("terminating connection"))
    assert dialect.is_transient(psycopg.errors.QueryCanceled("statement timeout"))
    assert not dialect.is_transient(psycopg.errors.SyntaxError("syntax error"))
    assert not dialect.is_transient(ValueError("not a driver error"))
    with pytest.raises(psycopg.OperationalError) as refused:
        dialect.connect("127.0.0.1", closed_port(), CREDENTIALS, connect_timeout=2, statement_timeout=1,
                        application_name="test")
    assert dialect.is_transient(refused.value)
