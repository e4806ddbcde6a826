"""The emulator as a background daemon, and the lifecycle the CLI drives: up, down, status, logs.

    python -m harness.emulator.daemon --state-dir D --port P --net N --dns-ttl S

serves one `Emulator` until SIGTERM or SIGINT. One daemon per state directory: the daemon
holds an exclusive lock on `D/daemon.pid` for its whole life, so "does a daemon serve D?" is
answered by the kernel. A SIGKILLed daemon's lock is released at once and a reused pid cannot
fool the check, which is what lets `up` treat whatever a dead daemon left (`emulator.json`,
engines) as stale. `D/emulator.json`, written once the API listens, says how to reach it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any, TextIO

from harness.emulator.controls import EmulatorControlClient
from harness.emulator.emulator import Emulator, default_state_dir
from harness.emulator.processes import check_engine_access, owned_processes, sweep_orphans, wait_until

log = logging.getLogger("harness.emulator.daemon")

DEFAULT_PORT = 4590
DEFAULT_NET = 42
DEFAULT_DNS_TTL = 5.0
PID_FILE = "daemon.pid"
CONNECTION_FILE = "emulator.json"
LOG_FILE = "emulator.log"
API_HOST = "127.0.0.1"
LOCK_WAIT_S = 2.0
POLL_S = 0.05
KILL_WAIT_S = 10.0
REDACTED = "********"


class DaemonError(RuntimeError):
    """An expected failure of a lifecycle command, reported to the user without a traceback."""


class NotRunning(DaemonError):
    """No live daemon serves the state directory (the user most likely named the wrong one)."""

    def __init__(self, state_dir: Path, what: str = "no emulator is running"):
        super().__init__(f"{what} for state dir {state_dir}; start one with `gameday emulator up`")


# --- the daemon process ------------------------------------------------------------------------------
class RedactSecrets(logging.Filter):
    """Masks the daemon's own secrets in every record, tracebacks included.

    Nothing is supposed to log them; this makes a stray exception message unable to leak the
    control token or the engines' admin password into a log that ends up in game-day evidence.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg, record.args = self._mask(record.getMessage()), ()
        if record.exc_info:
            record.exc_text = self._mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True

    def _mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def _configure_logging(path: Path) -> RedactSecrets:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    redact = RedactSecrets()
    handler.addFilter(redact)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return redact


def _hold_lock(state_dir: Path) -> None:
    """Take the state directory's daemon lock for the rest of this process's life and record our pid.

    The descriptor is never closed: the kernel releases the lock only as the process exits, so
    "lock free" means "daemon gone". Retries briefly because a CLI probing the lock holds it for
    an instant.
    """
    fd = os.open(state_dir / PID_FILE, os.O_RDWR | os.O_CREAT, 0o644)

    def locked() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    try:
        wait_until(locked, LOCK_WAIT_S, interval=POLL_S, what="the daemon lock")
    except TimeoutError:
        holder = os.pread(fd, 32, 0).decode().strip() or "?"
        os.close(fd)
        raise DaemonError(f"another emulator daemon (pid {holder}) already serves {state_dir}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _check_port_free(port: int) -> None:
    """Fail before starting anything when the API port is taken, with a message that says so."""
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the API server binds
        try:
            probe.bind((API_HOST, port))
        except OSError as exc:
            raise DaemonError(f"cannot listen on {API_HOST}:{port}: {exc.strerror} "
                              "(another emulator? choose a port with --port)") from None


def _stop_when_closed(fd: int, stop_requested: threading.Event) -> None:
    """A tied daemon stops when the pipe from the process that started it closes (it exited)."""
    def watch() -> None:
        while os.read(fd, 1):
            pass
        log.info("the process this daemon is tied to has gone")
        stop_requested.set()

    threading.Thread(target=watch, name="tie", daemon=True).start()


def serve(state_dir: Path, port: int, net: int, dns_ttl: float, tie_fd: int | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT (or its tie closes), then stop it cleanly."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    redact = _configure_logging(state_dir / LOG_FILE)
    stop_requested = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_requested.set())
    if tie_fd is not None:
        _stop_when_closed(tie_fd, stop_requested)
    try:
        _hold_lock(state_dir)
        _check_port_free(port)
        emulator = Emulator(state_dir, net=net, api_host=API_HOST, api_port=port, dns_ttl=dns_ttl)
        redact.secrets.update([emulator.control_token, *emulator.credentials.values()])
        log.info("daemon pid %d starting for %s (net 127.%d.x.y, DNS TTL %g s)", os.getpid(), state_dir, net, dns_ttl)
        emulator.start()
        redact.secrets.add(emulator.admin_password)
    except Exception as exc:
        log.error("the emulator daemon could not start: %s", exc, exc_info=not isinstance(exc, DaemonError))
        return 1
    stop_requested.wait()
    log.info("stop requested; stopping the emulator")
    emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator.daemon",
                                     description="Serve the Aurora emulator until SIGTERM (use `gameday emulator up`).")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--net", type=int, default=DEFAULT_NET)
    parser.add_argument("--dns-ttl", type=float, default=DEFAULT_DNS_TTL)
    parser.add_argument("--tie-fd", type=int, default=None,
                        help="stop when this pipe closes (the starting process exited)")
    args = parser.parse_args(argv)
    return serve(args.state_dir or default_state_dir(), args.port, args.net, args.dns_ttl, args.tie_fd)


# --- finding a daemon -----------------------------------------------------------------------------------
def daemon_pid(state_dir: Path) -> int | None:
    """The pid of the live daemon serving `state_dir`, or None when nobody holds its lock."""
    try:
        pid_file = open(Path(state_dir) / PID_FILE)
    except FileNotFoundError:
        return None
    with pid_file:
        try:
            fcntl.flock(pid_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # nobody holds it; closing the file releases our probe
        except BlockingIOError:
            pass

        def recorded() -> str:
            pid_file.seek(0)
            return pid_file.read().strip()

        # The daemon writes its pid right after locking; wait out that instant.
        wait_until(recorded, LOCK_WAIT_S, interval=POLL_S, what=f"the daemon pid in {pid_file.name}")
        return int(recorded())


def _read_connection_file(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / CONNECTION_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # absent, or being written


def connection_info(state_dir: Path) -> dict[str, Any]:
    """How to reach the daemon serving `state_dir` (endpoint, region, credentials, control token)."""
    state_dir = Path(state_dir).resolve()
    pid = daemon_pid(state_dir)
    info = _read_connection_file(state_dir) if pid is not None else None
    if info is None or info.get("pid") != pid:
        raise NotRunning(state_dir)
    return info


def control_client(state_dir: Path) -> EmulatorControlClient:
    """The emulator-only controls of the daemon serving `state_dir`."""
    info = connection_info(state_dir)
    return EmulatorControlClient(info["endpoint_url"], info["control_token"])


# --- lifecycle commands ------------------------------------------------------------------------------
def up(state_dir: Path, port: int = DEFAULT_PORT, net: int = DEFAULT_NET, dns_ttl: float = DEFAULT_DNS_TTL,
       timeout: float = 60.0, tied: bool = False) -> dict[str, Any]:
    """Start a daemon for `state_dir`, or find the one already serving it, and return how to reach it.

    The answer is `emulator.json` plus `already_running`. Leftovers of a killed daemon need no
    special care here: its lock is gone, so its files are stale, and the new emulator sweeps
    its orphaned engines and wipes its clusters as it starts.

    `tied`: the daemon lives only as long as this process (a game day's own emulator): it stops
    when the pipe whose write end is returned as `tie_fd` closes, also when we are SIGKILLed.
    """
    state_dir = Path(state_dir).resolve()
    try:
        check_engine_access(state_dir)
    except PermissionError as exc:
        raise DaemonError(str(exc)) from None
    state_dir.mkdir(parents=True, exist_ok=True)
    if (pid := daemon_pid(state_dir)) is not None:
        if tied:
            raise DaemonError(f"an emulator daemon (pid {pid}) already serves {state_dir}; a tied daemon "
                              f"needs a state directory of its own")
        return {**_wait_until_ready(state_dir, pid, None, timeout), "already_running": True}
    (state_dir / CONNECTION_FILE).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "harness.emulator.daemon", "--state-dir", str(state_dir), "--port", str(port),
            "--net", str(net), "--dns-ttl", str(dns_ttl)]
    tie_read, tie_write = os.pipe() if tied else (None, None)
    if tie_read is not None:
        argv += ["--tie-fd", str(tie_read)]
    with open(state_dir / LOG_FILE, "ab") as log_file:
        daemon = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            cwd="/", pass_fds=(tie_read,) if tie_read is not None else ())
    if tie_read is not None:
        os.close(tie_read)
    try:
        info = {**_wait_until_ready(state_dir, daemon.pid, daemon, timeout), "already_running": False}
        return {**info, "tie_fd": tie_write} if tied else info
    except DaemonError:
        daemon.terminate()  # a half-started daemon helps nobody; its watchdog reaps what it started
        try:
            daemon.wait(KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        raise


def _wait_until_ready(state_dir: Path, pid: int, daemon: subprocess.Popen[bytes] | None,
                      timeout: float) -> dict[str, Any]:
    """Poll until the daemon `pid` has written emulator.json and its API answers."""
    deadline = time.monotonic() + timeout
    while True:
        exited = daemon.poll() is not None if daemon else daemon_pid(state_dir) != pid
        if exited:
            raise DaemonError(f"the emulator daemon (pid {pid}) exited during start; "
                              f"last lines of {state_dir / LOG_FILE}:\n{log_tail(state_dir)}")
        info = _read_connection_file(state_dir)
        if info and info.get("pid") == pid and _api_answers(info["endpoint_url"]):
            return info
        if time.monotonic() > deadline:
            raise DaemonError(f"the emulator daemon (pid {pid}) did not come up within {timeout:g} s; "
                              f"last lines of {state_dir / LOG_FILE}:\n{log_tail(state_dir)}")
        time.sleep(POLL_S)


def _api_answers(endpoint_url: str) -> bool:
    """Any HTTP answer (an unsigned GET earns an RDS error) means the API is serving."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        opener.open(f"{endpoint_url}/", timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def down(state_dir: Path, timeout: float = 30.0) -> str:
    """Stop the daemon serving `state_dir` and make sure nothing of it keeps running; say what was done."""
    state_dir = Path(state_dir).resolve()
    pid = daemon_pid(state_dir)
    report = (f"no emulator was running for state dir {state_dir}" if pid is None
              else f"stopped the emulator (pid {pid}){_stop_daemon(state_dir, pid, timeout)}")
    (state_dir / CONNECTION_FILE).unlink(missing_ok=True)
    swept = sweep_orphans()
    if swept:
        report += f"; killed {len(swept)} leftover process(es) of dead emulators: {', '.join(map(str, swept))}"
    try:
        wait_until(lambda: not owned_processes(state_dir), KILL_WAIT_S, interval=POLL_S,
                   what="the emulator's processes to exit")
    except TimeoutError:
        raise DaemonError(f"{report}; but these processes of {state_dir} are still running: "
                          f"{', '.join(map(str, owned_processes(state_dir)))}") from None
    return report


def _stop_daemon(state_dir: Path, pid: int, timeout: float) -> str:
    """SIGTERM (a clean stop of every cluster), SIGKILL after `timeout`; waits on the lock, not the pid,
    because a daemon that is our own child lingers as a zombie."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_WAIT_S)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return ""
        try:
            wait_until(lambda: daemon_pid(state_dir) != pid, wait, interval=POLL_S, what=f"daemon {pid} to exit")
            return "" if sig == signal.SIGTERM else f" (it ignored SIGTERM for {timeout:g} s and was killed)"
        except TimeoutError:
            continue
    raise DaemonError(f"the emulator daemon (pid {pid}) survived SIGKILL for {KILL_WAIT_S:g} s")


def status(state_dir: Path) -> dict[str, Any]:
    """Regions, clusters, instances, endpoints and storage nodes, as the running emulator sees them."""
    return control_client(state_dir).call("status")


def log_tail(state_dir: Path, lines: int = 20) -> str:
    try:
        with open(Path(state_dir) / LOG_FILE, encoding="utf-8", errors="replace") as log_file:
            return "".join(deque(log_file, maxlen=lines)).rstrip()
    except FileNotFoundError:
        return "(no log)"


def logs(state_dir: Path, lines: int = 50, follow: bool = False, out: TextIO | None = None) -> None:
    """Print the last `lines` of the daemon's log; with `follow`, go on printing until the daemon exits."""
    out = out or sys.stdout
    state_dir = Path(state_dir).resolve()
    try:
        log_file = open(state_dir / LOG_FILE, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise NotRunning(state_dir, "there is no emulator log") from None
    with log_file:
        out.writelines(deque(log_file, maxlen=lines))
        out.flush()
        while follow:
            running = daemon_pid(state_dir) is not None
            new = log_file.read()
            out.write(new)
            out.flush()
            if not running:
                return
            if not new:
                time.sleep(POLL_S * 4)


if __name__ == "__main__":
    sys.exit(main())
