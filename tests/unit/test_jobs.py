"""Background jobs with plain functions: a failing job calls its error handler, a hanging one is
handled once its deadline passes and shows as overdue, and a failing handler stays contained."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from harness.emulator.jobs import Jobs


def test_a_job_that_returns_calls_no_handler() -> None:
    jobs, seen, errors = Jobs(), [], []
    job = jobs.start("add", seen.append, 42, on_error=errors.append, deadline_s=5)
    job.thread.join(5)
    assert seen == [42] and errors == []
    assert jobs.running() == []


def test_a_job_that_raises_hands_its_exception_to_the_handler_in_its_own_thread() -> None:
    jobs, handled = Jobs(), []

    def fail() -> None:
        raise RuntimeError("promotion failed")

    def on_error(exc: BaseException) -> None:
        handled.append((exc, threading.current_thread().name))

    jobs.start("failover c1", fail, on_error=on_error).thread.join(5)
    [(exc, thread)] = handled
    assert isinstance(exc, RuntimeError) and str(exc) == "promotion failed"
    assert thread == "failover c1"


def test_a_job_past_its_deadline_is_handled_once_and_shows_as_overdue() -> None:
    jobs, handled, release = Jobs(), [], threading.Event()
    job = jobs.start("reboot i1", release.wait, 10, on_error=handled.append, deadline_s=0.05)
    try:
        deadline = time.monotonic() + 5
        while not handled and time.monotonic() < deadline:
            time.sleep(0.01)
        [exc] = handled
        assert isinstance(exc, TimeoutError) and "'reboot i1' did not finish within 0.05 s" in str(exc)
        assert job.overdue
        [shown] = jobs.running()
        assert shown.startswith("reboot i1 (overdue: running ") and shown.endswith("deadline 0.05 s)")
        time.sleep(0.1)
        assert len(handled) == 1, "the deadline's handler runs once"
    finally:
        release.set()
        job.thread.join(5)
    assert jobs.running() == [] and len(handled) == 1, "returning after the deadline calls no handler"


def test_a_job_done_before_its_deadline_is_never_handled() -> None:
    jobs, handled = Jobs(), []
    job = jobs.start("quick", lambda: None, on_error=handled.append, deadline_s=0.05)
    job.thread.join(5)
    time.sleep(0.15)
    assert handled == [] and not job.overdue


def test_a_failing_handler_is_logged_and_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    jobs = Jobs()

    def fail() -> None:
        raise ValueError("create failed")

    def broken_handler(exc: BaseException) -> None:
        raise KeyError("the cluster is gone")

    with caplog.at_level(logging.ERROR, logger="harness.emulator"):
        job = jobs.start("create i1", fail, on_error=broken_handler)
        job.thread.join(5)
    messages = [record.getMessage() for record in caplog.records]
    assert "job 'create i1' failed" in messages
    assert "the error handler of job 'create i1' failed" in messages
    assert not job.thread.is_alive()


def test_wait_joins_every_job() -> None:
    jobs, done = Jobs(), []
    for index in range(3):
        jobs.start(f"job {index}", lambda i=index: (time.sleep(0.05), done.append(i)))
    jobs.wait(5)
    assert sorted(done) == [0, 1, 2] and jobs.running() == []
