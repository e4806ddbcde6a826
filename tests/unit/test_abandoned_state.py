"""A state directory whose emulator's owner died (SIGKILL, the OOM killer) is removed by the next
emulator that starts beside it; everything else is left alone (pure file logic)."""

from __future__ import annotations

from pathlib import Path

from harness.emulator.processes import (
    OWNER_FILE,
    claim_state_dir,
    release_state_dir,
    sweep_abandoned_state,
)


def _state(parent: Path, name: str) -> Path:
    directory = parent / name
    (directory / "regions").mkdir(parents=True)
    return directory


def test_only_directories_abandoned_by_a_dead_owner_are_removed(tmp_path: Path) -> None:
    dead = _state(tmp_path, "gd-soak-dead")
    (dead / OWNER_FILE).write_text(f"999999999:12345:{dead}")  # no such process
    alive = _state(tmp_path, "gd-test-alive")
    claim_state_dir(alive)  # this very process
    stopped = _state(tmp_path, "gd-bench-stopped")
    claim_state_dir(stopped)
    release_state_dir(stopped)  # a clean stop: its owner removes it, or keeps it on purpose
    reused = _state(tmp_path, "gd-test-run-reused")
    (reused / OWNER_FILE).write_text(f"999999999:12345:{reused}")
    foreign = _state(tmp_path, "other-dead")
    (foreign / OWNER_FILE).write_text(f"999999999:12345:{foreign}")

    removed = sweep_abandoned_state(tmp_path, keep=reused)

    assert removed == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gd-bench-stopped", "gd-test-alive", "gd-test-run-reused",
                                                          "other-dead"]
