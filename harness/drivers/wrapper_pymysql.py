"""PyMySQL as a target driver of the AWS Advanced Python Wrapper (synchronous API).

The wrapper's synchronous API knows two target drivers: psycopg and mysql-connector-python.
For any other connect function it falls back to a generic driver dialect whose `is_closed`,
`is_in_transaction` and `abort_connection` raise UnsupportedOperationError, and its MySQL
exception handler imports `mysql.connector` (so without that package no error is ever seen as
a network error and failover never starts). It offers two hooks for other drivers, used here:
`DriverDialectManager.set_custom_dialect` and `ExceptionManager.set_custom_handler`.

`install()` registers both; call it once in the process, before `AwsWrapperConnection.connect`
with `pymysql.connect` as the target. Only for processes whose every wrapper connection is
PyMySQL: the exception handler is process-wide.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, ClassVar

import pymysql
from aws_advanced_python_wrapper.driver_dialect import DriverDialect
from aws_advanced_python_wrapper.driver_dialect_codes import DriverDialectCodes
from aws_advanced_python_wrapper.driver_dialect_manager import DriverDialectManager
from aws_advanced_python_wrapper.errors import (
    AwsConnectError,
    QueryTimeoutError,
)
from aws_advanced_python_wrapper.exception_handling import ExceptionManager
from aws_advanced_python_wrapper.hostinfo import HostInfo
from aws_advanced_python_wrapper.pep249_methods import DbApiMethod
from aws_advanced_python_wrapper.utils.properties import (
    Properties,
    PropertiesUtils,
    WrapperProperties,
)
from pymysql.constants import SERVER_STATUS

# MySQL client errors that mean the connection is gone (the list the wrapper uses for
# mysql-connector-python), plus 0: PyMySQL's InterfaceError(0, '') on a closed connection.
NETWORK_ERRORS = frozenset({0, 2001, 2002, 2003, 2004, 2006, 2012, 2013, 2026, 2055})
LOGIN_ERRORS = frozenset({1044, 1045})
READ_ONLY_ERRORS = frozenset({1290, 1836})
PING_TIMEOUT_S = 3.0


def _is_pymysql_connection(conn: object) -> bool:
    return isinstance(conn, pymysql.connections.Connection)


def _sock(conn: object) -> socket.socket | None:
    return getattr(conn, "_sock", None)


class PyMySqlDriverDialect(DriverDialect):
    """What the wrapper needs to know about a PyMySQL connection."""

    _driver_name = "PyMySQL"
    # The database-dialect manager picks the MySQL family of dialects (MySQL, RDS MySQL,
    # Aurora MySQL) only for this code; PyMySQL speaks the same protocol.
    _dialect_code = DriverDialectCodes.MYSQL_CONNECTOR_PYTHON
    _executor_name = "PyMySqlDriverDialectExecutor"
    _network_bound_methods: ClassVar[set[str]] = {
        DbApiMethod.CONNECTION_COMMIT.method_name,
        DbApiMethod.CONNECTION_AUTOCOMMIT.method_name,
        DbApiMethod.CONNECTION_AUTOCOMMIT_SETTER.method_name,
        DbApiMethod.CONNECTION_IS_READ_ONLY.method_name,
        DbApiMethod.CONNECTION_SET_READ_ONLY.method_name,
        DbApiMethod.CONNECTION_ROLLBACK.method_name,
        DbApiMethod.CONNECTION_CURSOR.method_name,
        DbApiMethod.CURSOR_CLOSE.method_name,
        DbApiMethod.CURSOR_EXECUTE.method_name,
        DbApiMethod.CURSOR_FETCHONE.method_name,
        DbApiMethod.CURSOR_FETCHMANY.method_name,
        DbApiMethod.CURSOR_FETCHALL.method_name,
    }

    def is_dialect(self, connect_func: Callable) -> bool:
        return (getattr(connect_func, "__module__", "") or "").startswith("pymysql")

    def is_closed(self, conn: Any) -> bool:
        if not _is_pymysql_connection(conn):
            return True
        if not conn.open:
            return True
        # Like the wrapper's mysql-connector dialect: a ping on the calling thread, bounded by a
        # temporary socket timeout (PyMySQL connections must not be used from two threads).
        sock = _sock(conn)
        previous = sock.gettimeout() if sock is not None else None
        try:
            if sock is not None:
                sock.settimeout(PING_TIMEOUT_S)
            conn.ping(reconnect=False)
            return False
        except Exception:  # noqa: BLE001 - any failure of the ping means the connection is unusable
            return True
        finally:
            current = _sock(conn)
            if current is not None and current is sock:
                try:
                    current.settimeout(previous)
                except OSError:
                    pass

    def ping(self, conn: Any) -> bool:
        return not self.is_closed(conn)

    def abort_connection(self, conn: Any) -> None:
        # Interrupt an operation in flight on another thread without freeing the connection.
        sock = _sock(conn)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def supports_abort_connection(self) -> bool:
        return True

    def supports_connect_timeout(self) -> bool:
        return True

    def is_in_transaction(self, conn: Any) -> bool:
        if not _is_pymysql_connection(conn):
            return False
        return bool(conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    def get_autocommit(self, conn: Any) -> bool:
        return bool(conn.get_autocommit()) if _is_pymysql_connection(conn) else self._autocommit

    def set_autocommit(self, conn: Any, autocommit: bool) -> None:
        if _is_pymysql_connection(conn):
            conn.autocommit(autocommit)
        self._autocommit = autocommit

    def transfer_session_state(self, from_conn: Any, to_conn: Any) -> None:
        if _is_pymysql_connection(from_conn) and _is_pymysql_connection(to_conn):
            to_conn.autocommit(from_conn.get_autocommit())

    def get_connection_from_obj(self, obj: object) -> Any:
        if _is_pymysql_connection(obj):
            return obj
        if isinstance(obj, pymysql.cursors.Cursor):
            return getattr(obj, "connection", None)
        return None

    def prepare_connect_info(self, host_info: HostInfo, original_props: Properties) -> Properties:
        props = Properties(original_props.copy())
        PropertiesUtils.remove_wrapper_props(props)
        props["host"] = host_info.host
        if host_info.is_port_specified():
            props["port"] = int(host_info.port)
        elif "port" in props:
            props["port"] = int(props["port"])
        database = WrapperProperties.DATABASE.get(original_props)
        if database is not None:
            props["database"] = database
        connect_timeout = WrapperProperties.CONNECT_TIMEOUT_SEC.get(original_props)
        if connect_timeout is not None:
            props["connect_timeout"] = float(connect_timeout)
        return props


def _errno(error: BaseException) -> int | None:
    args = getattr(error, "args", None)
    return args[0] if args and isinstance(args[0], int) else None


def _causes(error: BaseException | None):
    """The error, the driver error a wrapper error carries, and their causes."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [getattr(current, "driver_error", None), current.__cause__, current.__context__]


class PyMySqlExceptionHandler:
    """The wrapper's MySQL exception handler, for PyMySQL's error shapes."""

    def is_network_exception(self, error: Exception | None = None, sql_state: str | None = None) -> bool:
        for current in _causes(error):
            if isinstance(current, (AwsConnectError, QueryTimeoutError)):
                return True
            if isinstance(current, (pymysql.err.OperationalError, pymysql.err.InterfaceError)) \
                    and _errno(current) in NETWORK_ERRORS:
                return True
            if isinstance(current, (ConnectionError, socket.timeout, BrokenPipeError)):
                return True
        return bool(sql_state and sql_state.startswith("08"))

    def is_login_exception(self, error: Exception | None = None, sql_state: str | None = None) -> bool:
        if sql_state == "28000":
            return True
        return any(isinstance(c, pymysql.err.OperationalError) and _errno(c) in LOGIN_ERRORS for c in _causes(error))

    def is_read_only_connection_exception(self, error: Exception | None = None,
                                          sql_state: str | None = None) -> bool:
        return any(isinstance(c, pymysql.err.MySQLError) and _errno(c) in READ_ONLY_ERRORS for c in _causes(error))


def install(props: dict[str, Any] | None = None) -> None:
    """Make `AwsWrapperConnection.connect(pymysql.connect, ...)` work in this process.

    `props` (the wrapper properties the connections will use) give the dialect its
    `socket_timeout`, which bounds the driver calls the wrapper runs.
    """
    DriverDialectManager.set_custom_dialect(PyMySqlDriverDialect(Properties(props or {})))
    ExceptionManager.set_custom_handler(PyMySqlExceptionHandler())


__all__ = ["PyMySqlDriverDialect", "PyMySqlExceptionHandler", "install"]
