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
stuck, and if the orderly stop has not ended the process within `GRACE_S` it exits hard (status 3).
Once Locust has quit with everything written, a process that still cannot exit (the interpreter
waits for every thread pool's threads: the AWS wrapper's monitors after a failover) is ended with
Locust's own exit status. Either way the log then shows where the process was stuck. Only
processes started by the harness do this (`GAMEDAY_LOAD_STOP_ON_EOF=1`): a worker started by
hand on another machine has a terminal or /dev/null as stdin and must ignore it.

This module runs in Locust's processes: it is imported after Locust (see `harness.load.users`).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import time
from dataclasses import dataclass

import gevent
import gevent.util
from gevent import monkey
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC

from harness.load.recorder import Recorder
from harness.load.settings import STOP_ON_EOF

log = logging.getLogger("harness.load.control")
GRACE_S = 30.0
EXIT_GRACE_EXPIRED = 3
# Locust fires `quit` with its exit status once its stats, HTML and CSV files are written; what is
# left is the interpreter's exit. That waits for every thread pool's threads (a library's monitors,
# the AWS wrapper's after a failover) and has been seen to hang: past this, the process ends itself.
EXIT_AFTER_QUIT_S = 3.0


@dataclass
class Quit:
    """Locust's exit status and when it was decided (set on the hub, read by the watching thread)."""

    code: int | None = None
    at: float = 0.0


def install(environment: Environment, recorder: Recorder) -> None:
    if os.environ.get(STOP_ON_EOF) != "1":
        return
    hub = gevent.get_hub()
    real_sleep = monkey.get_original("time", "sleep")
    ended = Quit()

    def on_quit(exit_code: int, **_: object) -> None:
        ended.at, ended.code = time.monotonic(), exit_code

    environment.events.quit.add_listener(on_quit)

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        hub.loop.run_callback_threadsafe(gevent.spawn, stop_in_order, environment, recorder)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            if ended.code is not None and time.monotonic() - ended.at > EXIT_AFTER_QUIT_S:
                stuck(f"everything was written, but the process did not exit within {EXIT_AFTER_QUIT_S:.0f} s "
                      f"of Locust's quit: ending it with Locust's own exit status {ended.code}")
                os._exit(ended.code)
            real_sleep(0.1)
        stuck(f"the orderly stop did not end within {GRACE_S:.0f} s: exiting with status {EXIT_GRACE_EXPIRED}")
        os._exit(EXIT_GRACE_EXPIRED)

    monkey.get_original("_thread", "start_new_thread")(watch_stdin, ())


def stuck(why: str) -> None:
    """Say where the process was stuck before it is ended: its log is all that is left to read.

    Written straight to the file (logging's locks are gevent's, not to be taken from this thread)."""
    os.write(2, f"{why}; where it was:\n".encode())
    faulthandler.dump_traceback(all_threads=True)
    try:
        os.write(2, "\n".join(gevent.util.format_run_info()).encode(errors="replace") + b"\n")
    except Exception:  # the hub may change under this thread: the threads' stacks above stand
        pass


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
