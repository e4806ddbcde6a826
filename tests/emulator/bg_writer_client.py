"""An application writing through blue's cluster endpoint name during a Blue/Green switchover.

Run by test_blue_green_wrapper in a child process inside the emulator's DNS (`namespace_command`
over the emulator's hosts file), once with the plain driver (psycopg / PyMySQL) and once with the
AWS Advanced Python Wrapper and its Blue/Green plugin (`plugins="bg"`, the rest as it ships).

Reads its settings as JSON from argv[1]. Writes `INSERT INTO bg_ledger (id, client)` rows, one
autocommit statement each, as fast as it can; after a failed request (a connection that could not
be opened, or a statement that failed) it closes the connection, waits `retry_s` and opens another.
One JSON event per line on stdout: `ack` (an id whose COMMIT returned), `failed` (every failed
request, with the error), `phase` and `roles` (the wrapper's: each Blue/Green phase its plugin moves
to and the names it knows as blue's or green's, as the plugin publishes them to the wrapper's status
storage), and at the end `summary`. Stops when stdin says `stop` or at the deadline.
"""

from __future__ import annotations

import faulthandler
import json
import signal
import sys
import threading
import time
import traceback
from typing import Any

_t0 = time.monotonic()
_out = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    with _out:
        sys.stdout.write(json.dumps({"event": event, "t": round(time.monotonic() - _t0, 3), **fields},
                                    default=str) + "\n")
        sys.stdout.flush()


def connect(s: dict[str, Any]) -> Any:
    if s["client"] == "wrapper":
        from harness.drivers.wrapper_connection import connect as wrapper_connect

        return wrapper_connect(s["engine"], host=s["host"], port=s["port"], user=s["user"], password=s["password"],
                               database=s["database"], wrapper=s["wrapper"], statement_timeout=s["timeout_s"],
                               application_name="bg-writer")
    if s["engine"] == "aurora-mysql":
        import pymysql

        return pymysql.connect(host=s["host"], port=s["port"], user=s["user"], password=s["password"],
                               database=s["database"], autocommit=True, connect_timeout=s["timeout_s"],
                               read_timeout=s["timeout_s"], write_timeout=s["timeout_s"])
    import psycopg

    return psycopg.connect(host=s["host"], port=s["port"], user=s["user"], password=s["password"],
                           dbname=s["database"], autocommit=True, connect_timeout=s["timeout_s"],
                           options=f"-c statement_timeout={int(s['timeout_s'] * 1000)}")


def insert(conn: Any, row_id: int, client: str) -> None:
    cursor = conn.cursor()
    try:
        cursor.execute("INSERT INTO bg_ledger (id, client) VALUES (%s, %s)", (row_id, client))
    finally:
        cursor.close()


def close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - a dropped connection may not close cleanly
        pass


def watch_phases(stop: threading.Event, bg_id: str) -> None:
    """Report each phase the wrapper's Blue/Green plugin moves to (it keeps its status per `bg_id`
    in the wrapper's process-wide storage, where its routings read it)."""
    from aws_advanced_python_wrapper.blue_green_plugin import BlueGreenStatus
    from aws_advanced_python_wrapper.utils import services_container

    last, last_roles = None, None
    while not stop.wait(0.01):
        status = services_container.get_storage_service().get(BlueGreenStatus, bg_id)
        phase = status.phase.name if status is not None and status.phase is not None else None
        if phase != last:
            emit("phase", phase=phase)
            last = phase
        roles = {} if status is None else {host: role.name for host, role in status.roles_by_endpoint.items()}
        if roles != last_roles:
            emit("roles", roles=roles)
            last_roles = roles


def run(s: dict[str, Any]) -> None:
    stop = threading.Event()
    if s["client"] == "wrapper":
        threading.Thread(target=watch_phases, args=(stop, s["wrapper"].get("bg_id", "1")), daemon=True).start()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_commands, daemon=True).start()
    deadline = time.monotonic() + s["deadline_s"]
    conn, row_id, acknowledged, failed = None, s["first_id"], 0, 0
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if conn is None:
                conn = connect(s)
            insert(conn, row_id, s["client"])
            acknowledged += 1
            emit("ack", id=row_id)
        except Exception as exc:  # noqa: BLE001 - every failed request counts
            failed += 1
            emit("failed", id=row_id, connected=conn is not None, type=type(exc).__name__, message=str(exc)[:300])
            if conn is not None:
                close(conn)
            conn = None
            time.sleep(s["retry_s"])
        row_id += 1
    if conn is not None:
        close(conn)
    emit("summary", acknowledged=acknowledged, failed=failed)


def main() -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1`: every thread's stack on stderr
    with open(sys.argv[1]) as f:
        settings = json.load(f)
    if settings.get("log_file"):
        import logging

        logging.basicConfig(filename=settings["log_file"], level=logging.DEBUG,
                            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
    try:
        run(settings)
        return 0
    except Exception as exc:  # noqa: BLE001
        emit("crashed", type=type(exc).__name__, message=str(exc), traceback=traceback.format_exc())
        return 2


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    import os

    os._exit(code)  # the wrapper leaves monitor threads behind; do not wait for them
