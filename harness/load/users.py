"""Locust users that talk to an Aurora cluster: one per driver (psycopg, PyMySQL), one behaviour logic.

Import order is the whole trick: `import locust` monkey-patches the process for gevent, and
psycopg chooses how to wait for the server when it is first imported. Imported before the
patch, it picks its C wait function, which blocks the whole process on every query: 20 users
would then run one query at a time. So this module imports Locust first and refuses to load
if psycopg chose the blocking wait anyway (someone imported it earlier).

A user keeps one session per endpoint: writes go through the cluster endpoint, reads through
the reader endpoint, each with the client behaviour the load was started with (naive or
resilient, `harness.load.behaviours`). Every request is reported to Locust: request type = the
endpoint, name = the operation, its response time (retries included), and the error if it
failed, as one line naming the error (never the password).
"""

from __future__ import annotations

import locust  # noqa: F401, I001 - first: patches the process for gevent before any driver is imported

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg.waiting
from locust import User, events
from locust.env import Environment
from locust.runners import MasterRunner

from harness.dialects import workload_dialect_for
from harness.dialects.base import Credentials
from harness.drivers import AWS_WRAPPER, wrapper_connection
from harness.load import control, recorder
from harness.load.behaviours import SESSIONS, Endpoint, Session, WrapperSession
from harness.load.orders import Orders
from harness.load.settings import PREFIX, LoadSettings, take_password

if getattr(psycopg.waiting, "wait_c", None) is not None and psycopg.waiting.wait is psycopg.waiting.wait_c:
    raise ImportError("psycopg was imported before locust patched the process, so every query would block all "
                      "users: import locust before anything that imports psycopg")

__all__ = ["CLUSTER_ENDPOINT", "READER_ENDPOINT", "ClusterUser", "DatabaseUser", "MySQLUser", "PostgresUser"]

log = logging.getLogger("harness.load.users")
CLUSTER_ENDPOINT = "cluster endpoint"
READER_ENDPOINT = "reader endpoint"
_connection: tuple[LoadSettings, Credentials] | None = None


class LoadFailure(Exception):
    """A failed request as Locust shows it: the error's one-line description, nothing more."""

    def __repr__(self) -> str:  # Locust groups failures by repr
        return str(self)


def connection() -> tuple[LoadSettings, Credentials]:
    """The cluster and login, read from the environment once per process (the password then leaves it)."""
    global _connection
    if _connection is None:
        settings = LoadSettings.from_environment(os.environ)
        _connection = settings, Credentials(settings.user, take_password(os.environ), settings.database)
    return _connection


class DatabaseUser(User):
    """A simulated application: a session per endpoint and the OLTP workload's orders."""

    abstract = True
    engine = ""

    def __init__(self, environment: Environment):
        super().__init__(environment)
        settings, credentials = connection()
        self.sql = workload_dialect_for(self.engine)
        session: Callable[..., Session] = SESSIONS[settings.behaviour]
        application = f"gameday-load-{settings.behaviour}"
        if settings.driver == AWS_WRAPPER:
            wrapper_connection.cooperate_with_gevent()
            session = functools.partial(WrapperSession, wrapper=settings.wrapper_properties())
            application = "gameday-load-aws-wrapper"
        self.sessions: dict[str, Session] = {
            CLUSTER_ENDPOINT: session(self.sql, Endpoint(CLUSTER_ENDPOINT, settings.cluster_host,
                                                         settings.cluster_port, writer=True),
                                      credentials, application),
            READER_ENDPOINT: session(self.sql, Endpoint(READER_ENDPOINT, settings.reader_host,
                                                        settings.reader_port, writer=False),
                                     credentials, application),
        }
        self.orders = Orders(self.sql, settings.run_id)
        self._password = credentials.password

    def write(self, name: str, operation: Callable[[Any], Any]) -> Any:
        """Run `operation(connection)` through the cluster endpoint (the writer)."""
        return self.request(CLUSTER_ENDPOINT, name, operation)

    def read(self, name: str, operation: Callable[[Any], Any]) -> Any:
        """Run `operation(connection)` through the reader endpoint."""
        return self.request(READER_ENDPOINT, name, operation)

    def request(self, endpoint: str, name: str, operation: Callable[[Any], Any]) -> Any:
        """Run and report one request; a failure is reported, not raised (the user goes on)."""
        started = time.perf_counter()
        try:
            result = self.sessions[endpoint].execute(operation)
        except Exception as error:
            self._report(endpoint, name, started, LoadFailure(self._describe(error)))
            return None
        self._report(endpoint, name, started, None)
        return result

    def on_start(self) -> None:
        for session in self.sessions.values():
            session.open()

    def on_stop(self) -> None:
        for session in self.sessions.values():
            session.close()

    def _report(self, endpoint: str, name: str, started: float, failure: LoadFailure | None) -> None:
        self.environment.events.request.fire(request_type=endpoint, name=name, response_length=0,
                                             response_time=(time.perf_counter() - started) * 1000,
                                             exception=failure, context={})

    def _describe(self, error: BaseException) -> str:
        text = self.sql.describe_error(error)
        return text.replace(self._password, "***") if self._password else text


class PostgresUser(DatabaseUser):
    """Aurora PostgreSQL through psycopg 3 (gevent-cooperative once Locust has patched the process)."""

    abstract = True
    engine = "aurora-postgresql"


class MySQLUser(DatabaseUser):
    """Aurora MySQL through PyMySQL (pure Python, so cooperative under gevent)."""

    abstract = True
    engine = "aurora-mysql"


def _cluster_user() -> type[DatabaseUser]:
    """The user class for the engine the load was started for (PostgreSQL when none is named)."""
    engine = os.environ.get(f"{PREFIX}ENGINE", PostgresUser.engine)
    return MySQLUser if engine == MySQLUser.engine else PostgresUser


ClusterUser = _cluster_user()


@events.init.add_listener
def _record_and_obey_the_harness(environment: Environment, **_: Any) -> None:
    control.install(environment, recorder.install(environment))


@events.quitting.add_listener
def _release_the_wrapper(environment: Environment, **_: Any) -> None:
    """Users on the wrapper leave its monitors running; stop them so the process can exit."""
    if _connection is not None and _connection[0].driver == AWS_WRAPPER:
        try:
            wrapper_connection.release()
        except Exception:  # the load's results are written; a failed release only costs the exit time
            log.warning("the AWS wrapper's resources could not be released", exc_info=True)


@events.test_start.add_listener
def _create_orders_table(environment: Environment, **_: Any) -> None:
    """Once per process that runs users, before they start: the workloads' table."""
    if isinstance(environment.runner, MasterRunner) or not any(
            issubclass(c, DatabaseUser) for c in environment.user_classes):
        return
    settings, credentials = connection()
    user_class = next(c for c in environment.user_classes if issubclass(c, DatabaseUser))
    dialect = workload_dialect_for(user_class.engine)
    try:
        conn = dialect.connect(settings.cluster_host, settings.cluster_port, credentials, connect_timeout=5,
                               statement_timeout=30, application_name="gameday-load-setup")
        try:
            dialect.create_orders(conn)
        finally:
            conn.close()
    except Exception as error:  # the users will meet the same problem and report it, request by request
        log.error("could not create the orders table: %s", dialect.describe_error(error))
