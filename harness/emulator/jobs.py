"""Background jobs: the asynchronous half of long RDS operations.

An operation answers at once with a transitional status (`failing-over`, `rebooting`,
`creating`, `deleting`) and a job finishes it. A job that raises, or hangs, must not leave that
status behind for ever: clients poll for it to change. So each job can name an error handler
(`on_error`) that puts the resources back into a truthful state, and a deadline after which
that handler runs even though the job has not returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("harness.emulator")

ErrorHandler = Callable[[BaseException], None]


@dataclass
class Job:
    """One running (or finished) job."""

    name: str
    on_error: ErrorHandler | None = None
    deadline_s: float | None = None
    started: float = field(default_factory=time.monotonic)
    overdue: bool = False  # still running past its deadline (its handler has run)
    thread: threading.Thread = field(init=False, repr=False)
    timer: threading.Timer | None = field(default=None, repr=False)

    def describe(self) -> str:
        """How `running()` and `gameday emulator status` show it."""
        if not self.overdue:
            return self.name
        return f"{self.name} (overdue: running {time.monotonic() - self.started:.0f} s, deadline {self.deadline_s:g} s)"


class Jobs:
    """Runs each long operation in its own thread and can wait for all of them."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._lock = threading.Lock()

    def start(self, name: str, fn: Callable[..., Any], *args: Any, on_error: ErrorHandler | None = None,
              deadline_s: float | None = None) -> Job:
        """Run `fn(*args)` in a thread named `name`.

        If it raises, `on_error(exc)` runs in that thread. If it is still running after
        `deadline_s`, `on_error(TimeoutError(...))` runs once (from a timer thread, while the job
        goes on) and the job shows as overdue. A failing handler is logged, never raised.
        """
        job = Job(name, on_error, deadline_s)
        job.thread = threading.Thread(target=self._run, args=(job, fn, args), name=name, daemon=True)
        if deadline_s is not None:
            job.timer = threading.Timer(deadline_s, self._deadline_passed, args=(job,))
            job.timer.daemon = True
        with self._lock:
            self._jobs = [j for j in self._jobs if j.thread.is_alive()]
            self._jobs.append(job)
        job.thread.start()
        if job.timer is not None:
            job.timer.start()
        return job

    def _run(self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.exception("job %r failed", job.name)
            self._handle(job, exc)
        finally:
            if job.timer is not None:
                job.timer.cancel()

    def _deadline_passed(self, job: Job) -> None:
        if not job.thread.is_alive():
            return
        job.overdue = True
        log.error("job %r is still running after its deadline of %g s", job.name, job.deadline_s)
        self._handle(job, TimeoutError(f"job {job.name!r} did not finish within {job.deadline_s:g} s"))

    @staticmethod
    def _handle(job: Job, exc: BaseException) -> None:
        if job.on_error is None:
            return
        try:
            job.on_error(exc)
        except Exception:
            log.exception("the error handler of job %r failed", job.name)

    def running(self) -> list[str]:
        """The jobs still running, overdue ones marked as such."""
        with self._lock:
            return [j.describe() for j in self._jobs if j.thread.is_alive()]

    def wait(self, timeout: float = 60.0) -> None:
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.thread.join(timeout)
