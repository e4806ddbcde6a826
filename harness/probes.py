"""Probes: background observers that write what clients saw to the timeline.

- the write probe appends to the ledger through the cluster endpoint, an attempt every 5 ms or so,
  recording every attempt with its outcome (acknowledged / failed / unknown);
- optionally a second write probe does the same through the AWS Advanced Python Wrapper, in a
  child process (`harness.drivers.aws_wrapper`) whose attempts are recorded here with
  `driver: aws-wrapper` and its own run id (`<run id>-wrapper`), so each is judged on its own;
- a read probe per reader (and one on the reader endpoint) reads the highest ledger seq it
  can see, which is how visibility lag is measured;
- the topology probe polls the RDS API for the cluster's status, writer and events;
- the surface probe asks Aurora's SQL (through the cluster endpoint) for the writer and each
  reader's replica lag, as Aurora-aware drivers do; after a failover it may disagree with the API.

Each probe reconnects with short timeouts, like a careful application. Probes never judge:
the checkers in `harness.measure` do that afterwards from the timeline.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.cluster import AuroraCluster
from harness.dialects.base import Credentials, Dialect, Outcome
from harness.drivers import AWS_WRAPPER, PLAIN
from harness.timeline import Timeline, to_ranges

log = logging.getLogger("harness.probes")


@dataclass(frozen=True)
class ProbeSettings:
    connect_timeout: float = 1.0
    statement_timeout: float = 2.0
    # Between write attempts: one every 5 ms or so keeps the RTO's resolution within a few ms (the
    # target is 20 ms) for a fraction of the machine (and of a production cluster) that writing
    # back to back takes; on the emulator a commit wakes the engine, six storage nodes and the readers.
    write_pause: float = 0.004
    read_pause: float = 0.01
    retry_pause: float = 0.005  # after a failed attempt: the probe's blind spot, so keep it short
    topology_interval: float = 0.5
    events_interval: float = 2.0


@dataclass(frozen=True)
class Target:
    """Where a probe connects: a named endpoint."""

    name: str
    host: str
    port: int


class Probe(threading.Thread):
    """A daemon thread that loops until stopped."""

    def __init__(self, name: str, timeline: Timeline, settings: ProbeSettings):
        super().__init__(name=f"probe-{name}", daemon=True)
        self.timeline, self.settings = timeline, settings
        self.halt = threading.Event()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.join(timeout)
        self.reap()

    def request_stop(self) -> None:
        self.halt.set()

    def reap(self) -> None:
        """After the join: end whatever the probe started (a child process)."""


class WriteProbe(Probe):
    """Small INSERTs through the cluster endpoint; every attempt recorded with its outcome."""

    driver = PLAIN

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials, run_id: str):
        super().__init__("write", timeline, settings)
        self.dialect, self.target, self.credentials, self.run_id = dialect, target, credentials, run_id
        self.seqs = itertools.count(1)
        self.acknowledged = 0
        self.refused = 0  # attempts not acknowledged (failed or unknown): what waiting on an outage watches
        self.last_server = ""  # the instance that acknowledged the latest write (which Region writes now)

    def run(self) -> None:
        conn = None
        while not self.halt.is_set():
            seq, start, sent = next(self.seqs), time.monotonic(), False
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-write-probe")
                sent = True
                server = self.dialect.insert(conn, self.run_id, seq)
            except Exception as error:  # any failure is an observation, never a crash of the probe
                outcome = self.dialect.classify(error, sent)
                self.timeline.record("write", seq=seq, start=start, end=time.monotonic(), outcome=outcome.value,
                                     endpoint=self.target.name, driver=self.driver,
                                     error=self.dialect.describe_error(error))
                conn = _close(conn)
                self.refused += 1
                self.halt.wait(self.settings.retry_pause)
                continue
            self.acknowledged += 1
            self.last_server = server
            self.timeline.record("write", seq=seq, start=start, end=time.monotonic(),
                                 outcome=Outcome.ACKNOWLEDGED.value, endpoint=self.target.name, driver=self.driver,
                                 server=server)
            if self.settings.write_pause:
                self.halt.wait(self.settings.write_pause)
        _close(conn)


class WrapperWriteProbe(Probe):
    """The write probe through the AWS Advanced Python Wrapper: a child process reporting JSON lines.

    `command` runs `python -m harness.drivers.aws_wrapper` (on the emulator inside a private
    mount namespace with the cluster's names in /etc/hosts); `settings` go to its stdin. Each
    attempt it reports becomes a `write` record with `driver: aws-wrapper`. Stopping writes a
    line to its stdin; a child that has not exited by the join is killed with its process group.
    """

    driver = AWS_WRAPPER

    def __init__(self, timeline: Timeline, settings: ProbeSettings, command: list[str], child_settings: dict[str, Any],
                 run_id: str, directory: Path, cwd: Path, env: dict[str, str] | None = None):
        super().__init__("write-aws-wrapper", timeline, settings)
        self.command, self.child_settings, self.run_id = command, child_settings, run_id
        self.directory, self.cwd, self.env = directory, cwd, env
        self.acknowledged = 0
        self.ready = threading.Event()  # the child reported its first acknowledged write (or ended)
        self.failure: str | None = None  # why the child ended early, if it did
        self.process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stderr_path = self.directory / "stderr.txt"
        try:
            with self._lock:
                if self.halt.is_set():
                    return
                with stderr_path.open("w") as stderr:
                    self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                    stderr=stderr, text=True, cwd=self.cwd, env=self.env,
                                                    start_new_session=True)
                assert self.process.stdin is not None and self.process.stdout is not None
                self.process.stdin.write(json.dumps(self.child_settings) + "\n")
                self.process.stdin.flush()
            for line in self.process.stdout:
                self._observe(line)
            code = self.process.wait()
            if code != 0 and not self.halt.is_set():
                self.failure = self.failure or f"the wrapper probe exited with {code}: {_tail(stderr_path)}"
            if self.failure:
                self.timeline.record("note", text=f"aws-wrapper write probe: {self.failure}")
        except Exception as error:  # the probe's failure is a fact for the timeline, never a crash
            self.failure = f"{type(error).__name__}: {error}"
            self.timeline.record("note", text=f"aws-wrapper write probe: {self.failure}")
        finally:
            self.ready.set()

    def _observe(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            self.timeline.record("note", text=f"aws-wrapper write probe said: {line.strip()[:200]}")
            return
        kind = event.pop("event", None)
        if kind == "write":
            self.timeline.record("write", endpoint="cluster-endpoint", driver=self.driver, **event)
            if event["outcome"] == Outcome.ACKNOWLEDGED.value:
                self.acknowledged += 1
                self.ready.set()
        elif kind == "crashed":
            self.failure = f"crashed: {event.get('type')}: {event.get('message')}"
            log.error("the aws-wrapper write probe crashed: %s", event.get("traceback"))
        elif kind == "note":
            self.timeline.record("note", text=f"aws-wrapper write probe: {event.get('text')}")

    def request_stop(self) -> None:
        self.halt.set()
        with self._lock:
            process = self.process
        if process is not None and process.stdin is not None:
            try:
                process.stdin.write("stop\n")
                process.stdin.close()
            except (OSError, ValueError):
                pass

    def reap(self) -> None:
        process = self.process
        if process is None:
            return
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(30)
        self.join(5)


class ReadProbe(Probe):
    """Reads the highest visible ledger seq on one endpoint, to measure visibility lag."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials, run_id: str):
        super().__init__(f"read-{target.name}", timeline, settings)
        self.dialect, self.target, self.credentials, self.run_id = dialect, target, credentials, run_id

    def run(self) -> None:
        conn, server = None, None
        while not self.halt.is_set():
            start = time.monotonic()
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-read-probe")
                    server = self.dialect.instance_name(conn)
                max_seq = self.dialect.max_seq(conn, self.run_id)
            except Exception as error:
                self.timeline.record("read", probe=self.target.name, start=start, end=time.monotonic(),
                                     outcome="failed", error=self.dialect.describe_error(error))
                conn = _close(conn)
                self.halt.wait(self.settings.retry_pause)
                continue
            self.timeline.record("read", probe=self.target.name, start=start, end=time.monotonic(), outcome="ok",
                                 max_seq=max_seq, server=server)
            self.halt.wait(self.settings.read_pause)
        _close(conn)


class TopologyProbe(Probe):
    """The cluster as the RDS API reports it: status and writer changes, and RDS events."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, cluster: AuroraCluster):
        super().__init__("topology", timeline, settings)
        self.cluster = cluster
        self.since = datetime.now(timezone.utc)
        self.seen_events: set[tuple[str, str, str]] = set()

    def run(self) -> None:
        last, next_events = None, 0.0
        while not self.halt.is_set():
            try:
                topology = self.cluster.topology()
                if topology != last:
                    self.timeline.record("topology", **topology)
                    last = topology
                if time.monotonic() >= next_events:
                    self.poll_events()
                    next_events = time.monotonic() + self.settings.events_interval
            except Exception as error:  # an API hiccup is worth noting, not fatal
                self.timeline.record("note", text=f"topology probe: {type(error).__name__}: {error}")
            self.halt.wait(self.settings.topology_interval)
        try:
            self.poll_events()
        except Exception as error:
            self.timeline.record("note", text=f"topology probe: {type(error).__name__}: {error}")

    def poll_events(self) -> None:
        for event in self.cluster.events(self.since):
            key = (event["Date"].isoformat(), event["SourceIdentifier"], event["Message"])
            if key in self.seen_events:
                continue
            self.seen_events.add(key)
            self.timeline.record("event", date=event["Date"].timestamp(), source=event["SourceIdentifier"],
                                 source_type=event["SourceType"], message=event["Message"],
                                 categories=event.get("EventCategories", []))


class SurfaceProbe(Probe):
    """The topology as Aurora's own SQL reports it: `aurora_replica_status()` on PostgreSQL,
    `information_schema.replica_host_status` on MySQL, read through the cluster endpoint."""

    def __init__(self, timeline: Timeline, settings: ProbeSettings, dialect: Dialect, target: Target,
                 credentials: Credentials):
        super().__init__("surface", timeline, settings)
        self.dialect, self.target, self.credentials = dialect, target, credentials

    def run(self) -> None:
        conn, last_error = None, None
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = self.dialect.connect(self.target.host, self.target.port, self.credentials,
                                                connect_timeout=self.settings.connect_timeout,
                                                statement_timeout=self.settings.statement_timeout,
                                                application_name="gameday-surface-probe")
                rows = self.dialect.replica_status(conn)
                writers = [sid for sid, is_writer, _ in rows if is_writer]
                self.timeline.record("surface", writer=writers[0] if len(writers) == 1 else None,
                                     lag_ms={sid: lag for sid, is_writer, lag in rows if not is_writer})
                last_error = None
            except Exception as error:  # noted once per distinct error: a failover makes several
                described = self.dialect.describe_error(error)
                if described != last_error:
                    self.timeline.record("note", text=f"surface probe: {described}")
                last_error = described
                conn = _close(conn)
            self.halt.wait(self.settings.topology_interval)
        _close(conn)


class ProbeSet:
    """All probes of a scenario, started and stopped together."""

    def __init__(self, probes: list[Probe]):
        self.probes = probes

    @property
    def write_probe(self) -> WriteProbe | None:
        return next((p for p in self.probes if isinstance(p, WriteProbe)), None)

    @property
    def write_probes(self) -> list[WriteProbe | WrapperWriteProbe]:
        """Every write probe, one per driver."""
        return [p for p in self.probes if isinstance(p, WriteProbe | WrapperWriteProbe)]

    def start(self) -> ProbeSet:
        for probe in self.probes:
            probe.start()
        return self

    def stop(self) -> None:
        for probe in self.probes:
            probe.request_stop()
        for probe in self.probes:
            probe.join(15)
        for probe in self.probes:
            probe.reap()


def record_ledger(timeline: Timeline, dialect: Dialect, target: Target, credentials: Credentials,
                  run_id: str, driver: str = PLAIN) -> dict[int, int]:
    """The final read after recovery: which seqs the writer holds, and any duplicates."""
    conn = dialect.connect(target.host, target.port, credentials, connect_timeout=5, statement_timeout=60,
                           application_name="gameday-ledger-check")
    try:
        counts = dialect.ledger_counts(conn, run_id)
        server = dialect.instance_name(conn)
    finally:
        conn.close()
    timeline.record("ledger", ranges=to_ranges(counts), duplicates={str(s): c for s, c in counts.items() if c > 1},
                    rows=sum(counts.values()), server=server, run_id=run_id, driver=driver)
    return counts


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no output)"


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
    return None
