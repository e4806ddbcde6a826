"""Locust as its own process(es): started headless by the harness, fed through the environment,
stopped in order, its per-second history joined to the scenario timeline as it runs.

Why out of process: `import locust` monkey-patches a process for gevent, and the harness's
probes, boto3 and pytest must stay unpatched threads. Why the CLI rather than Locust as a
library: the same locustfiles then serve a game day, a hand-run load and a master with
workers on other machines (Locust's own distributed mode), unchanged.

One `LoadRun` is one Locust run: a single process, or a master with N local workers (and any
workers started by hand on other machines: README, "Load"). Each process:

- runs in its own process group, so a Ctrl-C at the terminal reaches only the harness, which
  then stops the load in order;
- learns the cluster from its environment (`harness.load.settings`) and, if it runs users, the
  password too; its command line holds only Locust's own options;
- has as stdin a pipe whose other end only the harness holds: closing it stops the process in
  order, and the harness's death (SIGKILL included) closes it too (`harness.load.control`).

Everything lands in the load's directory: the per-second history, Locust's CSV files and HTML
report, and one log per process.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.drivers import AWS_WRAPPER, DRIVERS, PLAIN
from harness.load.behaviours import BEHAVIOURS
from harness.load.history import HistoryFeed
from harness.load.settings import (HISTORY, PASSWORD, PREFIX, STOP_ON_EOF,
                                   LoadConfigurationError, LoadSettings, locustfile)
from harness.timeline import Timeline

log = logging.getLogger("harness.load")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 20


class LoadError(RuntimeError):
    """The load did not start or stop as it should; the message carries Locust's own last words."""


@dataclass(frozen=True)
class LoadSpec:
    """What a scenario asks for: a workload from `load/`, a number of users, a client behaviour."""

    workload: str
    users: int
    behaviour: str = "naive"
    driver: str = PLAIN  # or AWS_WRAPPER: the AWS Advanced Python Wrapper instead of the behaviour's retry logic

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise LoadConfigurationError(f"unknown client behaviour {self.behaviour!r}; "
                                         f"choose {' or '.join(BEHAVIOURS)}")
        if self.driver not in DRIVERS:
            raise LoadConfigurationError(f"unknown driver {self.driver!r}; choose {' or '.join(DRIVERS)}")
        if self.users < 1:
            raise LoadConfigurationError(f"a load needs at least one user, not {self.users}")
        locustfile(self.workload)

    @property
    def name(self) -> str:
        """`oltp/naive`, `oltp/aws-wrapper`: the workload (a locustfile's stem when given by path) and the client."""
        workload = Path(self.workload).stem if self.workload.endswith(".py") else self.workload
        return f"{workload}/{self.client}"

    @property
    def client(self) -> str:
        """What the application's client is: the behaviour on a plain driver, or `aws-wrapper`."""
        return AWS_WRAPPER if self.driver == AWS_WRAPPER else self.behaviour


@dataclass(frozen=True)
class Distribution:
    """Where the users run: one process (no workers), or a master with workers.

    `remote_workers` are started by hand on other machines (`locust -f - --worker --master-host
    ...`); the master waits for them too, and must then bind an address they can reach.
    """

    workers: int = 0
    remote_workers: int = 0
    bind_host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (remote workers need a fixed one)

    VARIABLES = {"workers": f"{PREFIX}WORKERS", "remote_workers": f"{PREFIX}REMOTE_WORKERS",
                 "bind_host": f"{PREFIX}MASTER_BIND", "port": f"{PREFIX}MASTER_PORT"}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Distribution:
        """`gameday run --load-workers N` sets GAMEDAY_LOAD_WORKERS; the rest are set by hand."""
        values = {name: environ[variable] for name, variable in cls.VARIABLES.items() if environ.get(variable)}
        try:
            return cls(**{name: value if name == "bind_host" else int(value) for name, value in values.items()})
        except ValueError as exc:
            raise LoadConfigurationError(f"bad load distribution in the environment {values}: {exc}") from None

    @property
    def distributed(self) -> bool:
        return self.workers + self.remote_workers > 0


@dataclass
class LocustProcess:
    role: str  # "locust" (alone), "master" or "worker-N"
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def close_stdin(self) -> None:
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()

    def tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"  {self.role}: {line}" for line in lines[-LOG_TAIL_LINES:])


@dataclass
class LoadRun:
    """One Locust run feeding one scenario's timeline."""

    spec: LoadSpec
    settings: LoadSettings
    password: str = field(repr=False)
    directory: Path
    timeline: Timeline
    distribution: Distribution = field(default_factory=Distribution)
    processes: list[LocustProcess] = field(default_factory=list)
    feed: HistoryFeed | None = None
    exit_codes: dict[str, int] = field(default_factory=dict)
    # On the emulator, the AWS Advanced Python Wrapper needs Aurora-style names: every Locust
    # process then runs in a private mount namespace with this file as its /etc/hosts
    # (`harness.drivers.names.namespace_command`).
    hosts_file: Path | None = None

    @property
    def history_path(self) -> Path:
        return self.directory / "history.jsonl"

    @property
    def html_path(self) -> Path:
        return self.directory / "locust.html"

    # --- starting -----------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start Locust and return once every user is running and requests are on the timeline."""
        self.directory.mkdir(parents=True, exist_ok=True)
        common = ["-f", str(locustfile(self.spec.workload)), "--loglevel", "INFO", "--only-summary"]
        head = [*common, "--headless", "-u", str(self.spec.users), "-r", str(self.spec.users),
                "--csv", str(self.directory / "locust"), "--html", str(self.html_path), "--exit-code-on-error", "0"]
        dist = self.distribution
        if not dist.distributed:
            self._spawn("locust", head, users=True)
        else:
            port = dist.port or _free_port(dist.bind_host)
            self._spawn("master", [*head, "--master", "--master-bind-host", dist.bind_host, "--master-bind-port",
                                   str(port), "--expect-workers", str(dist.workers + dist.remote_workers),
                                   "--expect-workers-max-wait", str(int(timeout))], users=False)
            reach = "127.0.0.1" if dist.bind_host in ("*", "0.0.0.0") else dist.bind_host
            for index in range(1, dist.workers + 1):
                self._spawn(f"worker-{index}", [*common, "--worker", "--master-host", reach, "--master-port",
                                                str(port)], users=True)
        self.feed = HistoryFeed(self.history_path, self.timeline, self.spec.name, self.spec.driver)
        self.feed.start()
        users = self.spec.users
        if not self.feed.wait(lambda feed: feed.users >= users and feed.requests > 0, timeout, self._all_alive):
            tails = "\n".join(p.tail() for p in self.processes)
            self.stop()
            raise LoadError(f"the {self.spec.name} load did not get {users} users running within {timeout:.0f} s; "
                            f"Locust said:\n{tails}")

    def _spawn(self, role: str, arguments: list[str], users: bool) -> None:
        log_path = self.directory / f"{role}.log"
        with open(log_path, "ab") as output:
            popen = subprocess.Popen(self.command(arguments), stdin=subprocess.PIPE,
                                     stdout=output, stderr=subprocess.STDOUT, env=self._environment(role, users),
                                     cwd=self.directory, process_group=0)
        self.processes.append(LocustProcess(role, popen, log_path))

    def command(self, arguments: list[str]) -> list[str]:
        """`python -m locust ...`, inside the private /etc/hosts when there is one (the namespace
        wrapper execs Locust: the pid, process group and stdin stay the harness's to manage)."""
        argv = [sys.executable, "-m", "locust", *arguments]
        if self.hosts_file is None:
            return argv
        from harness.drivers.names import namespace_command

        return namespace_command(self.hosts_file, argv)

    def _environment(self, role: str, users: bool) -> dict[str, str]:
        """Ours, without Locust's and libpq's own variables (they would change the run behind our back),
        plus the cluster; the password only for processes that run users."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "PG", PREFIX))}
        environ.update(self.settings.environment())
        environ[STOP_ON_EOF] = "1"
        if users:
            environ[PASSWORD] = self.password
        if not role.startswith("worker"):
            environ[HISTORY] = str(self.history_path)
        return environ

    def _all_alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    # --- while running ------------------------------------------------------------------------------
    def wait_reported(self, until: float, timeout: float = 15.0) -> bool:
        """Wait until the timeline holds every request that ended before wall time `until`."""
        return self.feed is not None and self.feed.wait(lambda feed: feed.until >= until, timeout, self._all_alive)

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes]

    # --- stopping -----------------------------------------------------------------------------------
    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop in order (the master first: it collects the workers' last reports), reap everything,
        and join the rest of the history. Safe to call twice, and after a failed start."""
        if not self.processes or self.exit_codes:
            return
        head, *workers = self.processes
        head.close_stdin()
        _wait(head, timeout)
        for worker in workers:  # the master's quit message has stopped them; a closed stdin makes sure
            _wait(worker, 10)
            worker.close_stdin()
            _wait(worker, 10)
        for process in self.processes:
            if process.alive():
                log.warning("Locust %s did not stop in order: killing its process group", process.role)
                try:
                    os.killpg(process.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.exit_codes[process.role] = process.popen.wait()
        if self.feed is not None:
            self.feed.stop()


def _wait(process: LocustProcess, timeout: float) -> None:
    try:
        process.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1" if host in ("*", "0.0.0.0") else host, 0))
        return sock.getsockname()[1]
