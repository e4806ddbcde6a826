"""Client behaviours: how an application's database client copes when the cluster changes under it.

A game day asks "what did my application see?", and the answer depends on the client as much as
on Aurora. A scenario picks one of two behaviours, so the report shows what a careful client buys:

- **naive**: what a plain driver with no retry layer does. It resolves the endpoint's name once,
  when it first connects, and keeps that address for life (as a JVM caching DNS forever does);
  after any failed request it drops the connection and reconnects at once, on the next request,
  without retrying the one that failed. Every failed request is an error the application sees.
  On real Aurora the cached address is the old writer's, so after a failover such a client can
  keep reaching a demoted writer long after the cluster endpoint moved.
- **resilient**: what the Aurora guides recommend. A request that fails for a transient reason
  (the connection or server went away, a timeout, the session is on a reader) is retried on a
  new connection, with exponential backoff and jitter, until a time budget runs out; every
  reconnect resolves the endpoint afresh; and a connection through the cluster endpoint is used
  only after the session has checked it reached the writer. The application sees an error only
  when the budget is spent; the outage shows up as latency instead. Retries are at-least-once:
  an INSERT whose COMMIT was lost with the connection may commit twice, as in real applications.

Engine-agnostic: the driver, the role check and which errors are transient come from a
`WorkloadDialect`, so the psycopg and PyMySQL users share this logic. Clock, sleep, randomness and
name resolution are looked up when a session is made, so unit tests can drive them and Locust's
processes get gevent's cooperative versions (Locust patches them before this module is used).
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.dialects.base import Credentials, WorkloadDialect

T = TypeVar("T")
Resolver = Callable[[str, int], str]


@dataclass(frozen=True)
class Endpoint:
    """A client-facing endpoint; `writer` when sessions through it must be on the writer."""

    name: str
    host: str
    port: int
    writer: bool


class WrongRole(Exception):
    """The session landed on a reader though the endpoint promises the writer (stale DNS)."""


def resolve(host: str, port: int) -> str:
    """The first TCP address the name resolves to, as a driver would connect to it."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]


class Session:
    """One user's connection to one endpoint, kept across requests."""

    behaviour = ""
    connect_timeout_s = 10.0
    statement_timeout_s = 0.0  # none

    def __init__(self, dialect: WorkloadDialect, endpoint: Endpoint, credentials: Credentials,
                 application_name: str, resolver: Resolver | None = None):
        self.dialect, self.endpoint, self.credentials = dialect, endpoint, credentials
        self.application_name = application_name
        self.resolver = resolver or resolve
        self.conn: Any = None
        self.connects = 0  # connections opened, for tests and curious readers

    def execute(self, operation: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def open(self) -> None:
        """Connect ahead of the first request, as an application opens its pool when it starts (so the
        steady state does not pay for first connections); a failure is left for that request to meet."""
        try:
            self._connected()
        except Exception:
            self.close()

    def _connected(self) -> Any:
        """The session's connection, opened as this behaviour opens connections."""
        raise NotImplementedError

    def _connect(self, address: str) -> Any:
        self.connects += 1
        return self.dialect.connect(self.endpoint.host, self.endpoint.port, self.credentials,
                                    connect_timeout=self.connect_timeout_s,
                                    statement_timeout=self.statement_timeout_s,
                                    application_name=self.application_name, hostaddr=address)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass  # already broken: closing is only tidying up


class NaiveSession(Session):
    """Resolve once, reconnect at once after any failure, never retry (see the module docstring)."""

    behaviour = "naive"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.address: str | None = None

    def execute(self, operation: Callable[[Any], T]) -> T:
        try:
            return operation(self._connected())
        except Exception:
            self.close()
            raise

    def _connected(self) -> Any:
        if self.conn is None:
            if self.address is None:
                self.address = self.resolver(self.endpoint.host, self.endpoint.port)
            self.conn = self._connect(self.address)
        return self.conn


class ResilientSession(Session):
    """Retry transient failures with backoff, resolve on every reconnect, check the writer role."""

    behaviour = "resilient"
    connect_timeout_s = 2.0  # libpq's smallest
    statement_timeout_s = 5.0
    budget_s = 15.0  # longer than a failover with a 5 s DNS TTL, shorter than a user's patience
    first_backoff_s = 0.05
    max_backoff_s = 1.0

    def __init__(self, *args: Any, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None, jitter: Callable[[], float] | None = None,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.jitter = jitter or random.random
        self.retries = 0

    def execute(self, operation: Callable[[Any], T]) -> T:
        deadline = self.clock() + self.budget_s
        backoff = self.first_backoff_s
        while True:
            try:
                return operation(self._connected())
            except Exception as error:
                self.close()
                if not isinstance(error, WrongRole) and not self.dialect.is_transient(error):
                    raise
                pause = backoff * (0.5 + self.jitter() / 2)  # "equal jitter": spread, yet never ~0
                if self.clock() + pause >= deadline:
                    raise
                self.retries += 1
                self.sleep(pause)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _connected(self) -> Any:
        """Resolve afresh, connect, and through the cluster endpoint check the session is on the writer."""
        if self.conn is None:
            conn = self._connect(self.resolver(self.endpoint.host, self.endpoint.port))
            self.conn = conn
            if self.endpoint.writer and self.dialect.is_read_only(conn):
                raise WrongRole(f"the {self.endpoint.name} led to a reader")
        return self.conn


class WrapperSession(Session):
    """The application on the AWS Advanced Python Wrapper (plugin "failover"), doing what the
    wrapper's documentation asks of it and nothing more.

    The wrapper recognises Aurora, reads the topology and, when a request meets a connection
    failure, fails over by itself: it reconnects the same connection object to the new writer
    (or a reader, through the reader endpoint) and raises FailoverSuccessError, meaning "the
    connection is usable again, the statement's fate is unknown". The application then retries
    the request once on that connection. Any other error (FailoverFailedError,
    TransactionResolutionUnknownError, a driver error) is the application's: the connection is
    dropped and the next request opens a new one. No resolver (the wrapper resolves names and
    builds instance names itself), no backoff, no role check of our own.

    `connector(endpoint, credentials, application_name, statement_timeout)` opens a wrapper
    connection; `success` is the exception type meaning "failed over, retry" (both injected so the
    logic is testable without the wrapper; the defaults come from `harness.drivers.wrapper_connection`).
    """

    behaviour = "aws-wrapper"
    statement_timeout_s = 5.0

    def __init__(self, *args: Any, connector: Callable[..., Any] | None = None,
                 success: type[BaseException] | None = None, wrapper: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.wrapper = wrapper or {}
        self.connector = connector or self._wrapper_connect
        if success is None:
            from aws_advanced_python_wrapper.errors import FailoverSuccessError

            success = FailoverSuccessError
        self.success = success
        self.failovers = 0  # FailoverSuccessError seen, each followed by one retry

    def execute(self, operation: Callable[[Any], T]) -> T:
        conn = self._connected()
        try:
            return operation(conn)
        except self.success:
            self.failovers += 1
        except Exception:
            self.close()
            raise
        try:  # the wrapper reconnected this connection: the same request, once more
            return operation(conn)
        except Exception:
            self.close()
            raise

    def _connected(self) -> Any:
        if self.conn is None:
            self.connects += 1
            self.conn = self.connector(self.endpoint, self.credentials, self.application_name,
                                       self.statement_timeout_s)
        return self.conn

    def _wrapper_connect(self, endpoint: Endpoint, credentials: Credentials, application_name: str,
                         statement_timeout: float) -> Any:
        from harness.drivers import wrapper_connection

        return wrapper_connection.connect(self.dialect.engine, host=endpoint.host, port=endpoint.port,
                                          user=credentials.user, password=credentials.password,
                                          database=credentials.database, wrapper=self.wrapper,
                                          statement_timeout=statement_timeout, application_name=application_name)


SESSIONS: dict[str, type[Session]] = {"naive": NaiveSession, "resilient": ResilientSession}
BEHAVIOURS = tuple(SESSIONS)
