"""An application on the AWS Advanced Python Wrapper, run as a child process by test_aws_wrapper.

Run inside the private /etc/hosts of `harness.drivers.names`, so the cluster's Aurora-style names
resolve. Reads its settings as JSON from argv[1]; writes one JSON event per line to stdout,
and reads commands, one per line, from stdin:

1. `detected`: a wrapper connection to the cluster endpoint's *address* (no Aurora-looking
   name, so the wrapper must recognise Aurora from SQL), with the dialect it settled on and
   the topology it read.
2. `connected`: the failover connection through the cluster endpoint's name: dialect, host
   list provider, topology, and the instance it reached.
3. `looping`: the query loop (the instance's identity, as Aurora answers it) is running.
   The test fails the cluster over now, then writes "failover <new writer>" on stdin so the
   loop knows which instance to wait for.
4. `error` for every exception a query raised, `failover_success` for FailoverSuccessError.
5. `after`: the first query answered after the failover (by which instance), `wrote` once a
   write succeeded on the new writer, then `done`, and exit 0. At the deadline, `timeout`
   and exit 1.
6. Last, `sql`: every distinct statement sent through the driver's cursors (the wrapper's
   own queries and the loop's), for the record.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
from contextlib import closing
from typing import Any

from aws_advanced_python_wrapper import AwsWrapperConnection
from aws_advanced_python_wrapper.errors import FailoverError, FailoverSuccessError

PG_IDENTITY = "SELECT pg_catalog.aurora_db_instance_identifier()"
MYSQL_IDENTITY = "SELECT @@aurora_server_id"

_out_lock = threading.Lock()
_t0 = time.monotonic()


def emit(event: str, **fields: Any) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps({"event": event, "t": round(time.monotonic() - _t0, 3), **fields},
                                    default=str) + "\n")
        sys.stdout.flush()


def describe(conn: AwsWrapperConnection) -> dict[str, Any]:
    service = conn._plugin_service  # the wrapper keeps no public accessor for these
    current = service.current_host_info
    return {
        "dialect": type(service.database_dialect).__name__,
        "driver_dialect": type(service.driver_dialect).__name__,
        "host_list_provider": type(service.host_list_provider).__name__,
        "current_host": current.host if current else None,
        "topology": [{"host": h.host, "port": h.port, "host_id": h.host_id, "role": h.role.name}
                     for h in (service.all_hosts or ())],
    }


class SqlTrace:
    """Every distinct statement sent through the driver's cursors, in first-seen order."""

    def __init__(self) -> None:
        self.statements: dict[str, None] = {}
        self.lock = threading.Lock()

    def install(self, cursor_class: type) -> None:
        original = cursor_class.execute
        trace = self

        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query if isinstance(query, str) else getattr(query, "as_string", lambda _: str(query))(None)
            with trace.lock:
                trace.statements.setdefault(" ".join(str(text).split()), None)
            return original(self, query, *args, **kwargs)

        cursor_class.execute = execute  # type: ignore[method-assign]


class Client:
    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.mysql = settings["engine"] == "aurora-mysql"
        self.identity_sql = MYSQL_IDENTITY if self.mysql else PG_IDENTITY
        self.trace = SqlTrace()
        if self.mysql:
            import pymysql

            from harness.drivers import wrapper_pymysql

            wrapper_pymysql.install(settings["wrapper"])
            self.target = pymysql.connect
            self.trace.install(pymysql.cursors.Cursor)
        else:
            import psycopg

            self.target = psycopg.Connection.connect
            self.trace.install(psycopg.Cursor)
        self.commands: queue.Queue[str] = queue.Queue()

    def connect(self, host: str, **wrapper: Any) -> AwsWrapperConnection:
        s = self.settings
        params: dict[str, Any] = {"host": host, "port": s["port"], "user": s["user"], "password": s["password"]}
        if self.mysql:
            params.update(database=s["database"], autocommit=True, read_timeout=s["read_timeout"],
                          write_timeout=s["read_timeout"])
        else:
            params.update(dbname=s["database"], autocommit=True)
        params.update(s["wrapper"])
        params.update(wrapper)
        return AwsWrapperConnection.connect(self.target, **params)

    def scalar(self, conn: AwsWrapperConnection, sql: str) -> Any:
        with closing(conn.cursor()) as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
        return row[0] if row else None

    def write(self, conn: AwsWrapperConnection) -> None:
        with closing(conn.cursor()) as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS wrapper_probe (id INT PRIMARY KEY, note VARCHAR(64))")
            cursor.execute("DELETE FROM wrapper_probe WHERE id = 1")
            cursor.execute("INSERT INTO wrapper_probe (id, note) VALUES (1, 'written after failover')")

    def read_commands(self) -> None:
        for line in sys.stdin:
            self.commands.put(line.strip())

    def run(self) -> int:
        s = self.settings
        deadline = time.monotonic() + s["deadline_s"]
        threading.Thread(target=self.read_commands, daemon=True).start()

        # 1. Recognition from SQL alone: the endpoint's address, the instance pattern given.
        # Its own cluster_id: connections sharing one share the topology cache and monitor.
        probe = self.connect(s["cluster_address"], cluster_instance_host_pattern=s["instance_pattern"],
                             cluster_id=f"{s['cluster_id']}-by-address")
        try:
            emit("detected", instance=self.scalar(probe, self.identity_sql), **describe(probe))
        finally:
            probe.close()

        # 2. The application's connection: the cluster endpoint's name.
        conn = self.connect(s["cluster_endpoint"], cluster_id=s["cluster_id"])
        emit("connected", instance=self.scalar(conn, self.identity_sql), **describe(conn))

        # 3.-5. The query loop.
        expected: str | None = None
        failed_over = False
        answered = 0
        while time.monotonic() < deadline:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                command = ""
            if command.startswith("failover "):
                expected = command.split(" ", 1)[1]
                emit("expecting", writer=expected)
            try:
                instance = self.scalar(conn, self.identity_sql)
            except FailoverSuccessError as exc:
                failed_over = True
                emit("failover_success", message=str(exc), **describe(conn))
                continue
            except FailoverError as exc:
                emit("error", type=type(exc).__name__, message=str(exc), failover=True)
                time.sleep(0.2)
                continue
            except Exception as exc:  # noqa: BLE001 - every error is reported to the test
                emit("error", type=type(exc).__name__, message=str(exc),
                     cause=repr(getattr(exc, "driver_error", None) or exc.__cause__))
                time.sleep(0.2)
                continue
            answered += 1
            if answered == s["warmup_queries"]:
                emit("looping", instance=instance)
            if failed_over or (expected is not None and instance == expected):
                emit("after", instance=instance, failed_over=failed_over, **describe(conn))
                if expected is not None and instance == expected:
                    try:
                        self.write(conn)
                        emit("wrote", instance=self.scalar(conn, self.identity_sql))
                    except Exception as exc:  # noqa: BLE001
                        emit("error", type=type(exc).__name__, message=str(exc), writing=True)
                        failed_over = False  # keep looping: a later failover may still reach the writer
                        time.sleep(0.2)
                        continue
                    conn.close()
                    emit("done")
                    return 0
                failed_over = False
            time.sleep(s["interval_s"])
        emit("timeout", expected=expected)
        return 1


def main() -> int:
    with open(sys.argv[1]) as f:
        settings = json.load(f)
    if settings.get("log_file"):
        logging.basicConfig(filename=settings["log_file"], level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    client = Client(settings)
    try:
        return client.run()
    except Exception as exc:  # noqa: BLE001
        emit("crashed", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        return 2
    finally:
        with client.trace.lock:
            emit("sql", statements=list(client.trace.statements))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # The wrapper leaves monitor threads behind; do not wait for them.
    os._exit(code)
