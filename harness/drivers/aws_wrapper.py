"""The write probe on the AWS Advanced Python Wrapper: a child process, and its settings.

The parent (`harness.probes.WrapperWriteProbe`) starts `python -m harness.drivers.aws_wrapper`
(on the emulator inside `harness.drivers.names.namespace_command`, so the cluster's Aurora-style
names resolve) and writes its settings as one JSON line on its stdin, the password included
(never on disk or in argv). The child then appends to the ledger through the wrapper (plugin
"failover") at the same pace as the plain write probe, and reports every attempt as
one JSON line on stdout:

    {"event": "write", "seq": 1, "start": <monotonic>, "end": <monotonic>, "outcome": ..., ...}

CLOCK_MONOTONIC is system-wide on Linux (a mount namespace does not change it), so `start` and
`end` are on the timeline's clock. Other events: `ready` (the wrapper loaded), `note`, and
`crashed`. Another line on stdin, or its end (the parent went away), stops the loop; the child
exits without waiting for the wrapper's monitor threads.

Outcomes: an attempt that failed before its INSERT was sent is `failed`; once sent, any wrapper
error (FailoverSuccessError: the wrapper reconnected to the new writer, the statement's fate is
unknown; TransactionResolutionUnknownError; FailoverFailedError) is `unknown`, and a driver error
is classified by the dialect as for the plain probe.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import closing
from typing import Any

from harness.drivers import wrapper_connection

STARTUP_TIMEOUT_S = 180.0  # interpreter, the wrapper's imports and first connection, on 2 busy cores

LEDGER = "gameday_ledger"
INSERT = {
    "aurora-postgresql": f"INSERT INTO {LEDGER} (run_id, seq, writer) "
                         f"VALUES (%s, %s, aurora_db_instance_identifier()) RETURNING writer",
    "aurora-mysql": f"INSERT INTO {LEDGER} (run_id, seq, writer) VALUES (%s, %s, @@aurora_server_id)",
}
MYSQL_IDENTITY = "SELECT @@aurora_server_id"


def probe_settings(*, engine: str, host: str, port: int, user: str, password: str, database: str, run_id: str,
                   connect_timeout: float, statement_timeout: float, retry_pause: float, write_pause: float,
                   instance_pattern: str | None = None, cluster_id: str | None = None) -> dict[str, Any]:
    """The child's settings (one JSON line on its stdin)."""
    wrapper = wrapper_connection.properties(instance_pattern, cluster_id)
    return {"engine": engine, "host": host, "port": port, "user": user, "password": password, "database": database,
            "run_id": run_id, "connect_timeout": connect_timeout, "statement_timeout": statement_timeout,
            "retry_pause": retry_pause, "write_pause": write_pause, "wrapper": wrapper}


_out_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        sys.stdout.flush()


class _Child:
    def __init__(self, settings: dict[str, Any]):
        from harness.dialects import dialect_for

        self.s = settings
        self.mysql = settings["engine"] == "aurora-mysql"
        self.dialect = dialect_for(settings["engine"])
        self.halt = threading.Event()

    def connect(self) -> Any:
        s = self.s
        return wrapper_connection.connect(s["engine"], host=s["host"], port=s["port"], user=s["user"],
                                          password=s["password"], database=s["database"], wrapper=s["wrapper"],
                                          statement_timeout=s["statement_timeout"],
                                          application_name="gameday-wrapper-write-probe")

    def watch_stdin(self) -> None:
        sys.stdin.readline()  # a command or EOF: either way, stop
        self.halt.set()

    def insert(self, conn: Any, seq: int) -> str | None:
        with closing(conn.cursor()) as cursor:
            cursor.execute(INSERT[self.s["engine"]], (self.s["run_id"], seq))
            if not self.mysql:
                row = cursor.fetchone()
                return row[0] if row else None
            cursor.execute(MYSQL_IDENTITY)
            row = cursor.fetchone()
            return row[0] if row else None

    def classify(self, error: BaseException, sent: bool) -> str:
        from aws_advanced_python_wrapper.errors import AwsWrapperError

        if not sent:
            return "failed"
        if isinstance(error, AwsWrapperError) and getattr(error, "driver_error", None) is None:
            return "unknown"
        cause = getattr(error, "driver_error", None) or error
        return self.dialect.classify(cause, sent).value

    def describe(self, error: BaseException) -> str:
        try:
            text = self.dialect.describe_error(error)
        except Exception:  # noqa: BLE001
            text = ""
        return text or f"{type(error).__name__}: {error}"

    def run(self) -> int:
        from aws_advanced_python_wrapper.errors import FailoverSuccessError

        threading.Thread(target=self.watch_stdin, daemon=True).start()
        emit("ready")
        conn, seq = None, 0
        while not self.halt.is_set():
            seq += 1
            start, sent = time.monotonic(), False
            try:
                if conn is None:
                    conn = self.connect()
                sent = True
                server = self.insert(conn, seq)
            except FailoverSuccessError as error:  # the wrapper is on the new writer; this statement's fate is unknown
                emit("write", seq=seq, start=start, end=time.monotonic(), outcome="unknown",
                     error=self.describe(error))
                continue
            except Exception as error:  # noqa: BLE001 - every failure is an observation
                emit("write", seq=seq, start=start, end=time.monotonic(), outcome=self.classify(error, sent),
                     error=self.describe(error))
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001, S110 - closing a broken connection
                        pass
                conn = None
                self.halt.wait(self.s["retry_pause"])
                continue
            emit("write", seq=seq, start=start, end=time.monotonic(), outcome="acknowledged", server=server)
            if self.s["write_pause"]:
                self.halt.wait(self.s["write_pause"])
        return 0


def main() -> int:
    settings = json.loads(sys.stdin.readline())
    try:
        return _Child(settings).run()
    except Exception as exc:  # noqa: BLE001
        import traceback

        emit("crashed", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        return 2


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # the wrapper leaves monitor threads behind: do not wait for them
