"""Engine processes whose parent died (a killed postmaster's backends) are re-parented to the
emulator and reaped by it; the emulator's own children keep their exit status for whoever waits."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.emulator.processes import OrphanReaper, ProcessRegistry, wait_until, zombie_children

NAMES = frozenset({"postgres"})


@pytest.fixture
def registry(tmp_path: Path) -> ProcessRegistry:
    registry = ProcessRegistry(tmp_path, engine_user=None)
    yield registry
    registry.close()


def as_postgres(tool: str, directory: Path) -> str:
    """A copy of `tool` whose process is named "postgres", as a backend is."""
    path = directory / "postgres"
    shutil.copy(shutil.which(tool) or tool, path)
    return str(path)


def test_an_orphaned_backend_is_reaped_not_left_a_zombie(registry: ProcessRegistry, tmp_path: Path) -> None:
    backend, pid_file = as_postgres("sleep", tmp_path), tmp_path / "backend.pid"
    # the "postmaster" (sh) exits at once; its "backend" is re-parented to us and exits 0.2 s later
    registry.spawn("postmaster", ["sh", "-c", f'{backend} 0.2 & echo $! > {pid_file}; exit 0'], log_path=None,
                   as_engine_user=False)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10, what="the backend's pid")
    pid = int(pid_file.read_text())
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, what=f"orphan {pid} to be reaped")


def test_an_engine_the_emulator_started_keeps_its_exit_status(registry: ProcessRegistry, tmp_path: Path) -> None:
    child = registry.spawn("postmaster", [as_postgres("false", tmp_path)], log_path=None, as_engine_user=False)
    wait_until(lambda: child.pid in zombie_children(os.getpid(), NAMES), timeout=10, what="the engine to exit")
    assert child.pid not in OrphanReaper.reap(), "a child of ours is waited for by whoever started it"
    assert child.popen.wait(5) == 1
