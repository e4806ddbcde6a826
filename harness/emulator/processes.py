"""Every process the emulator starts, and how they are all taken down again.

Why this module exists: engines, storage nodes and proxies are real processes, and a game day
must never leave one behind. Three layers make that hold even when the owner is SIGKILLed:

1. each child runs in its own process group and carries the owner's marker in its environment;
2. a watchdog process holds the read end of a pipe from the owner: when the owner dies, the
   pipe closes and the watchdog kills every process that carries the marker;
3. `sweep_orphans()` (run by every new emulator) kills marked processes whose owner is gone.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARKER_ENV = "AURORA_GAMEDAY_OWNER"
PR_SET_CHILD_SUBREAPER = 36


class CommandError(RuntimeError):
    """A short-lived engine command (initdb, pg_basebackup, pg_rewind...) failed."""


@dataclass(frozen=True)
class EngineUser:
    """The unprivileged account engines run as (PostgreSQL and MariaDB refuse to run as root)."""

    name: str
    uid: int
    gid: int

    @staticmethod
    def resolve() -> EngineUser | None:
        """None when we are not root: engines then simply run as the current user."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return EngineUser(name, entry.pw_uid, entry.pw_gid)
        raise RuntimeError("running as root, but there is no 'postgres' or 'nobody' account to run engines as")

    def blocked_by(self, path: Path) -> Path | None:
        """The first directory on the way to `path` (its ancestors) this account may not enter."""
        for directory in reversed(Path(path).resolve().parents):
            if not directory.exists():
                break  # made by the emulator itself, for the engines to reach
            mode = directory.stat()
            if mode.st_uid == self.uid:
                allowed = mode.st_mode & stat.S_IXUSR
            elif mode.st_gid == self.gid:
                allowed = mode.st_mode & stat.S_IXGRP
            else:
                allowed = mode.st_mode & stat.S_IXOTH
            if not allowed:
                return directory
        return None


def check_engine_access(state_dir: Path) -> None:
    """Fail at once, in one line, when the engines' account cannot reach the state directory
    (root runs engines as another account: a 0700 parent such as `mktemp -d` shuts them out)."""
    user = EngineUser.resolve()
    blocked = user.blocked_by(state_dir) if user else None
    if user is not None and blocked is not None:
        raise PermissionError(f"the engines run as the {user.name!r} account, which cannot enter {blocked} "
                              f"(mode {blocked.stat().st_mode & 0o777:04o}): choose a state directory it can reach "
                              f"(under /tmp or /dev/shm, say) or `chmod o+x {blocked}`")


def owner_marker(state_dir: Path) -> str:
    """Identifies this owner process for life: pid, its start time (guards pid reuse), state dir."""
    return f"{os.getpid()}:{_start_time(os.getpid())}:{state_dir}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(marker: str) -> bool:
    pid, started, _ = marker.split(":", 2)
    return pid.isdigit() and _start_time(int(pid)) == started and started != ""


def marked_processes() -> dict[int, str]:
    """pid -> marker for every live process that carries an emulator owner marker."""
    found: dict[int, str] = {}
    prefix = f"{MARKER_ENV}=".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                found[int(entry.name)] = item[len(prefix):].decode(errors="replace")
                break
    return found


def owned_processes(state_dir: Path) -> list[int]:
    """Live processes working for the emulator of `state_dir`.

    Engines, storage nodes and the fabric carry the owner marker (whose last part is the
    state dir) in their environment; the watchdog carries it as its last argument.
    """
    state_dir = str(Path(state_dir).resolve())
    pids = {pid for pid, marker in marked_processes().items() if marker.split(":", 2)[-1] == state_dir}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").rstrip("\0").split("\0")
        except OSError:
            continue
        if "harness.emulator.watchdog" in argv and argv[-1].split(":", 2)[-1] == state_dir:
            pids.add(int(entry.name))
    return sorted(pids)


def kill_marked(select: callable) -> list[int]:  # type: ignore[valid-type]
    """SIGKILL every marked process (and its process group) whose marker `select` accepts."""
    victims = [pid for pid, marker in marked_processes().items() if pid != os.getpid() and select(marker)]
    for pid in victims:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return victims


OWNER_FILE = "owner"  # in a running emulator's state directory: its owner's marker


def claim_state_dir(state_dir: Path) -> None:
    """Mark `state_dir` as this process's while its emulator runs (`release_state_dir` at a clean stop)."""
    (state_dir / OWNER_FILE).write_text(owner_marker(state_dir))


def release_state_dir(state_dir: Path) -> None:
    (state_dir / OWNER_FILE).unlink(missing_ok=True)


def sweep_abandoned_state(parent: Path, keep: Path) -> list[Path]:
    """Remove the `gd-*` state directories in `parent` whose owner died while its emulator ran
    (SIGKILL, the OOM killer) and so never removed them: on tmpfs they hold memory until reboot.
    Directories stopped cleanly carry no owner marker and are their owners' to remove; `keep` (the
    one about to be used) is reused, not removed."""
    removed = []
    for candidate in parent.glob("gd-*"):
        try:
            marker = (candidate / OWNER_FILE).read_text()
        except OSError:
            continue
        if candidate == keep or not marker.endswith(f":{candidate}") or _owner_alive(marker):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def sweep_orphans() -> list[int]:
    """Kill what a SIGKILLed emulator left behind; returns the pids killed."""
    return kill_marked(lambda marker: not _owner_alive(marker))


@dataclass
class Child:
    """A long-lived child process (engine, storage node, proxy fabric)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None
    expected_exit: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group: a postmaster and all its backends at once."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Ask the child to stop, escalate to SIGKILL after `timeout`, and reap it."""
        self.expected_exit = True
        self.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.popen.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ProcessRegistry:
    """Starts children for one emulator owner and guarantees they all go away."""

    state_dir: Path
    engine_user: EngineUser | None = field(default_factory=EngineUser.resolve)
    children: list[Child] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.marker = owner_marker(self.state_dir)
        self._lock = threading.Lock()
        self._watchdog_pipe: int | None = None
        _become_subreaper()
        OrphanReaper.watch(self)

    # --- lifecycle -------------------------------------------------------------------------
    def start_watchdog(self) -> None:
        """Start the process that reaps everything if this owner dies without cleaning up."""
        read_end, write_end = os.pipe()
        os.set_inheritable(read_end, True)
        subprocess.Popen(
            [sys.executable, "-m", "harness.emulator.watchdog", str(read_end), self.marker],
            pass_fds=(read_end,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(read_end)
        self._watchdog_pipe = write_end

    def close(self) -> None:
        """Stop every child (newest first), then release the watchdog."""
        with self._lock:
            children = list(reversed(self.children))
            self.children.clear()
        for child in children:
            child.stop(timeout=5.0)
        kill_marked(lambda marker: marker == self.marker)
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None

    # --- starting processes ----------------------------------------------------------------
    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
        env.update(extra or {})
        env[MARKER_ENV] = self.marker
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path | None,
        as_engine_user: bool = True,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(env),
                cwd=cwd,
                process_group=0,
                **self._user_kwargs(as_engine_user),
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        child = Child(name, popen, log_path)
        with self._lock:
            self.children = [c for c in self.children if c.alive() or not c.expected_exit]
            self.children.append(child)
        return child

    def forget(self, child: Child) -> None:
        with self._lock:
            if child in self.children:
                self.children.remove(child)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        as_engine_user: bool = True,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> str:
        """Run a short command to completion; raise CommandError with its output on failure."""
        try:
            done = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self.environment(env),
                cwd=cwd,
                timeout=timeout,
                process_group=0,
                **self._user_kwargs(as_engine_user),
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from exc
        output = (done.stdout + done.stderr).decode(errors="replace").strip()
        if done.returncode != 0:
            tail = "\n".join(output.splitlines()[-10:])
            raise CommandError(f"{Path(argv[0]).name} failed (exit {done.returncode}): {tail}")
        return output

    def _user_kwargs(self, as_engine_user: bool) -> dict[str, object]:
        if not as_engine_user or self.engine_user is None:
            return {}
        user = self.engine_user
        return {"user": user.uid, "group": user.gid, "extra_groups": []}

    # --- ownership -------------------------------------------------------------------------
    def give_to_engine_user(self, *paths: Path) -> None:
        """Directories engines write to must belong to the engine account."""
        if self.engine_user is None:
            return
        for path in paths:
            for root, dirs, files in os.walk(path):
                os.chown(root, self.engine_user.uid, self.engine_user.gid)
                for name in files:
                    os.chown(os.path.join(root, name), self.engine_user.uid, self.engine_user.gid)


def _become_subreaper() -> None:
    """Orphaned grandchildren (e.g. a postmaster's backends) are re-parented to us and reaped
    (`OrphanReaper`), so none outlives a killed engine, and none lingers as a zombie."""
    if sys.platform != "linux":
        return
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            OrphanReaper.start()
    except (OSError, AttributeError):
        pass


class OrphanReaper:
    """Reaps the engine processes re-parented to us when their parent died (a killed postmaster's
    backends). Unreaped, each stays a zombie holding a pid for as long as we run: a daemon that
    fails over for days would run out of pids (32,768 on many machines).

    Only zombies named as an engine's helper processes (`ORPHANS`) that no `Child` of ours owns
    are reaped: every other child of this process is waited for by whoever started it, and
    reaping it here would take its exit status away."""

    ORPHANS = frozenset({"postgres"})
    INTERVAL_S = 2.0
    _started = False
    _lock = threading.Lock()
    _registries: weakref.WeakValueDictionary[int, ProcessRegistry] = weakref.WeakValueDictionary()

    @classmethod
    def start(cls) -> None:
        with cls._lock:
            if cls._started:
                return
            cls._started = True
        threading.Thread(target=cls._run, name="orphan reaper", daemon=True).start()

    @classmethod
    def watch(cls, registry: ProcessRegistry) -> None:
        cls._registries[id(registry)] = registry

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(cls.INTERVAL_S)
            try:
                cls.reap()
            except Exception:  # noqa: BLE001 - a scan that fails is retried on the next turn
                pass

    @classmethod
    def reap(cls) -> list[int]:
        """Reap our zombie orphans now; returns their pids."""
        owned = {child.pid for registry in list(cls._registries.values()) for child in list(registry.children)}
        reaped = []
        for pid in zombie_children(os.getpid(), cls.ORPHANS):
            if pid in owned:
                continue
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
            except ChildProcessError:
                pass
        return reaped


def zombie_children(parent: int, names: frozenset[str]) -> list[int]:
    """The pids of `parent`'s children that have exited but not been waited for, named one of `names`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                line = stat_file.read().decode(errors="replace")
        except OSError:
            continue
        name, _, rest = line[line.find("(") + 1:].rpartition(")")
        fields = rest.split()
        if len(fields) > 1 and fields[0] == "Z" and fields[1] == str(parent) and name in names:
            found.append(int(entry.name))
    return found


def wait_until(predicate: callable, timeout: float, interval: float = 0.02, what: str = "condition") -> None:  # type: ignore[valid-type]
    """Poll a state predicate; raise TimeoutError naming what we waited for."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
