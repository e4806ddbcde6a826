"""How the harness stops the Locust processes it started: it closes their stdin.

The harness holds the only write end of each process's stdin pipe. End of file therefore means
either "stop now" (the harness closed it) or "the harness is gone" (the kernel closed it when the
harness died, SIGKILL included). Either way the process stops in order:

- the master stops its workers' users, waits until every worker has reported its last requests,
  then quits (which sends the workers their quit message); a process running alone stops its
  users and quits. Both let Locust rewrite its CSV files once more first (it rewrites them every
  second, not at exit), so the history, the CSV files and the HTML report all hold every request;
- a worker quits and tells its master.

A native thread, not a greenlet, watches the pipe: it sees the end even if the gevent hub is
stuck, and if the orderly stop has not ended the process within `GRACE_S` it exits hard. Only
processes started by the harness do this (`GAMEDAY_LOAD_STOP_ON_EOF=1`): a worker started by
hand on another machine has a terminal or /dev/null as stdin and must ignore it.

This module runs in Locust's processes: it is imported after Locust (see `harness.load.users`).
"""

from __future__ import annotations

import logging
import os
import time

import gevent
from gevent import monkey
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from harness.load.recorder import Recorder
from harness.load.settings import STOP_ON_EOF

log = logging.getLogger("harness.load.control")
GRACE_S = 30.0
EXIT_GRACE_EXPIRED = 3


def install(environment: Environment, recorder: Recorder) -> None:
    if os.environ.get(STOP_ON_EOF) != "1":
        return
    hub = gevent.get_hub()
    real_sleep = monkey.get_original("time", "sleep")

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        hub.loop.run_callback_threadsafe(gevent.spawn, stop_in_order, environment, recorder)
        real_sleep(GRACE_S)
        os._exit(EXIT_GRACE_EXPIRED)

    monkey.get_original("_thread", "start_new_thread")(watch_stdin, ())


def stop_in_order(environment: Environment, recorder: Recorder) -> None:
    runner = environment.runner
    log.info("stdin closed: stopping")
    if not isinstance(runner, WorkerRunner):
        asked = recorder.stopped_at = time.time()
        runner.stop()
        if not recorder.await_reports(asked, timeout=2 * WORKER_REPORT_INTERVAL + 2):
            log.warning("not every worker reported its last requests before the stop")
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
    runner.quit()
