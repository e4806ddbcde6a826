"""Point-in-time restore and snapshots end to end: `features/point_in_time_restore.feature` on both
engines, as `gameday run` runs it, and its negative control checked against the probe's own
record of which writes it was told were committed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_names_the_writes_missed, gameday, home_of, scenario

ENGINES = ("Aurora PostgreSQL", "Aurora MySQL")
EARLY_S = 2.0  # the negative control's restore lands this much early


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp_path = tmp_path_factory.mktemp("restore")
    try:
        done = gameday(["run", "features/point_in_time_restore.feature", "--reports", str(tmp_path), "--run-id",
                        "pitr"], tmp_path, net=65, timeout=1200)
        assert done.returncode == 1, "the negative control breaches: " + done.stdout[-3000:] + done.stderr[-2000:]
        yield tmp_path / "pitr"
    finally:
        shutil.rmtree(home_of(tmp_path), ignore_errors=True)  # the run's emulator state (the daemon has stopped)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_restore_to_just_before_a_bad_change_is_exact(run: Path, engine: str) -> None:
    verdict, records = scenario(run, f"Restore to just before a bad change on {engine}")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    restore = verdict["measurements"]["restore"]
    assert restore["present"] > 100 and restore["restore_lost_count"] == restore["restore_leaked_count"] == 0
    assert restore["ambiguous"] <= 2 and restore["tolerance_s"] < 0.01, "a sharp boundary"
    assert 0 < restore["restore_time_s"] < 120
    (change,) = [r for r in records if r["kind"] == "bad-change"]
    assert restore["boundary_low"] == pytest.approx(change["server_start"] - 0.001, abs=1e-6), "just before it"
    (read,) = [r for r in records if r["kind"] == "restore-ledger"]
    assert change["rows"] > 0 and read["orders"] > 0, "the orders the bad change deleted are back"
    assert [r["done"] for r in records if r["kind"] == "rollback"][0].startswith("deleted the restored cluster")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_latest_time_restore_and_a_snapshot_restore_lose_nothing_before_their_boundary(run: Path,
                                                                                          engine: str) -> None:
    for name in ("Restore to the latest restorable time", "Restore from a snapshot"):
        verdict, _ = scenario(run, f"{name} on {engine}")
        assert verdict["status"] == "PolicyMet", (name, verdict["verdicts"])
        restore = verdict["measurements"]["restore"]
        assert restore["present"] > 100 and restore["restore_lost_count"] == restore["restore_leaked_count"] == 0
    verdict, records = scenario(run, f"Restore from a snapshot on {engine}")
    (snapshot,) = [r for r in records if r["kind"] == "snapshot"]
    assert verdict["measurements"]["restore"]["boundary_low"] == snapshot["server_requested"]
    assert any(r.get("done", "").startswith("deleted snapshot") for r in records if r["kind"] == "rollback")


@pytest.mark.parametrize("engine", ENGINES)
def test_the_negative_control_names_exactly_the_writes_the_early_restore_missed(run: Path, engine: str) -> None:
    """What the probe itself was told was committed in the 2 s before the point is what is named."""
    verdict, records = scenario(run, f"A restore that lands early misses acknowledged writes on {engine}")
    assert_names_the_writes_missed(verdict, records, EARLY_S)
