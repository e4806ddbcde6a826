"""The load's per-second history, recorded inside Locust and written where the harness reads it.

Why not Locust's own `_stats_history.csv`: its response-time percentiles cover a rolling 10 s
window, its requests per second are a lagged 10 s average, and a master updates it only as
workers report (every 3 s), so it cannot say which second a failure happened in. This records
each request as Locust reports it (its `request` event) into exact per-second aggregates:
request and failure counts per request name, a response-time histogram of the successful
requests, and failures grouped by (request type, name, error) with the exact time of the first
and last of each group. Workers ship their aggregates to the master on Locust's own report
messages (`report_to_master` / `worker_report`), so one file holds the merged result however
many workers, on however many machines, ran the load.

The master (or the only process) writes a JSON line four times a second to `$GAMEDAY_LOAD_HISTORY`:
`{"until": wall time the history is complete up to, "users": running now, "seconds": [...]}`,
plus `"stopped"` (when the users were told to stop) once they were, and `"final": true` last,
each second complete when written: a second is released only once every worker has reported
past its end. `harness.load.history` turns the lines into timeline records.

This module runs in Locust's processes: it is imported after Locust (see `harness.load.users`).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, TextIO

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.load.history import Second
from harness.load.settings import HISTORY

REPORT_KEY = "gameday_history"
FLUSH_INTERVAL_S = 0.25  # a second is written within a quarter second of its end


class Recorder:
    """Per-second aggregates in one Locust process; ships them to the master or writes them out."""

    def __init__(self, environment: Environment, path: str | None):
        self.environment = environment
        self.seconds: dict[int, Second] = {}
        self.reported_until: dict[str, float] = {}  # master: worker id → its history is complete up to
        self.stopped_at: float | None = None  # when the users were told to stop: the history's end
        self.file: TextIO | None = open(path, "a", buffering=1, encoding="utf-8") if path else None

    # --- every process that runs users ------------------------------------------------------------
    def on_request(self, request_type: str, name: str, response_time: float, exception: BaseException | None,
                   **_: Any) -> None:
        end = time.time()
        error = None if exception is None else str(exception)
        self.seconds.setdefault(int(end), Second()).observe(request_type, name, response_time, error, end,
                                                            self.environment.runner.user_count)

    # --- a worker ---------------------------------------------------------------------------------
    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        """Ship everything so far: every request that ended before now has fired its event."""
        until = time.time()
        seconds, self.seconds = self.seconds, {}
        data[REPORT_KEY] = {"until": until, "seconds": [s.as_dict(second) for second, s in sorted(seconds.items())]}

    # --- the master -------------------------------------------------------------------------------
    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if report is None:
            return  # a worker without this recorder: a locustfile that does not use harness.load.users
        for entry in report["seconds"]:
            self.seconds.setdefault(entry["second"], Second()).absorb(entry, client_id)
        self.reported_until[client_id] = report["until"]

    def complete_until(self) -> float:
        """Every request that ended before this wall time is in `self.seconds`."""
        runner = self.environment.runner
        if not isinstance(runner, MasterRunner):
            return time.time()
        live = [worker.id for worker in runner.clients.all]
        if any(worker not in self.reported_until for worker in live):
            return 0.0  # a worker has not reported yet: nothing is known to be complete
        return min((self.reported_until[w] for w in live), default=time.time())

    def await_reports(self, after: float, timeout: float) -> bool:
        """Wait (cooperatively) until every worker has reported past `after`; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.complete_until() < after:
            if time.monotonic() > deadline:
                return False
            gevent.sleep(0.1)
        return True

    # --- the master or the only process: the history file -----------------------------------------
    def flush(self, final: bool = False) -> None:
        if self.file is None or self.file.closed:
            return
        until = float("inf") if final else self.complete_until()
        done = sorted(second for second in self.seconds if second + 1 <= until)
        runner = self.environment.runner
        line: dict[str, Any] = {"until": time.time() if final else until,
                                "users": runner.user_count if runner else 0,
                                "seconds": [self.seconds.pop(second).as_dict(second) for second in done]}
        if self.stopped_at is not None:
            line["stopped"] = self.stopped_at
        if final:
            line["final"] = True
        self.file.write(json.dumps(line, separators=(",", ":")) + "\n")

    def flush_every_second(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush()

    def on_quitting(self, **_: Any) -> None:
        """Last line, with every second left (workers have sent their final reports by now)."""
        if self.file is not None and not self.file.closed:
            self.flush(final=True)
            self.file.close()


def install(environment: Environment) -> Recorder:
    """Wire a recorder to this process's events according to its role in the run."""
    runner = environment.runner
    path = os.environ.get(HISTORY) if not isinstance(runner, WorkerRunner) else None
    recorder = Recorder(environment, path)
    if not isinstance(runner, MasterRunner):
        environment.events.request.add_listener(recorder.on_request)
    if isinstance(runner, WorkerRunner):
        environment.events.report_to_master.add_listener(recorder.on_report_to_master)
    if isinstance(runner, MasterRunner):
        environment.events.worker_report.add_listener(recorder.on_worker_report)
    if path:
        gevent.spawn(recorder.flush_every_second)
        environment.events.quitting.add_listener(recorder.on_quitting)
    return recorder
