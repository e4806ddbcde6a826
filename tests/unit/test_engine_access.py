"""The engines' account reaching the state directory, checked before the emulator starts."""

from __future__ import annotations

import os
from pathlib import Path

from harness.emulator.processes import EngineUser


def test_directories_the_emulator_has_yet_to_make_are_not_in_the_way(tmp_path: Path) -> None:
    """`make gameday` on a fresh machine: the run's state directory and its parent do not exist yet."""
    owner = EngineUser("owner", os.getuid(), os.getgid())
    assert owner.blocked_by(tmp_path / "aurora-gameday-0" / "run-1") is None


def test_a_parent_the_account_cannot_enter_is_named(tmp_path: Path) -> None:
    shut = tmp_path / "shut"
    shut.mkdir(mode=0o700)
    stranger = EngineUser("stranger", os.getuid() + 4242, os.getgid() + 4242)
    blocked = stranger.blocked_by(shut / "state")
    assert blocked is not None and blocked in (shut, *shut.parents)  # the first 0700 on the way (pytest's own, here)
