"""End-to-end helpers: `gameday` as users run it, each test's emulator state on tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
GAMEDAY = [sys.executable, "-m", "harness.cli"]


def home_of(tmp_path: Path) -> Path:
    """Where the game-day emulator of the test owning `tmp_path` keeps its state."""
    return Path("/dev/shm") / f"gd-test-run-{tmp_path.name}"


def gameday_environment(tmp_path: Path, net: int, **env: str) -> dict[str, str]:
    return {**os.environ, "GAMEDAY_EMULATOR_NET": str(net), "GAMEDAY_EMULATOR_HOME": str(home_of(tmp_path)), **env}


def gameday(args: list[str], tmp_path: Path, net: int, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `gameday ARGS` to its end on loopback network 127.`net`.x.y."""
    return subprocess.run(GAMEDAY + args, cwd=PROJECT, env=gameday_environment(tmp_path, net, **env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def emulator_home(tmp_path: Path) -> Iterator[Path]:
    """Each test's game-day emulator keeps its state on tmpfs; removed afterwards."""
    home = home_of(tmp_path)
    yield home
    shutil.rmtree(home, ignore_errors=True)
