"""Backtrack end to end: `features/backtrack.feature` as `gameday run` runs it (Aurora MySQL, and
the refusal on Aurora PostgreSQL), its negative control checked against the probe's own record of
which writes it was told were committed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import assert_names_the_writes_missed, gameday, home_of, scenario

EARLY_S = 2.0  # the negative control's backtrack lands this much early
IN_FLIGHT = 2  # orders a load can commit in the instant between the backtrack point and the DELETE's snapshot


def within_in_flight(deleted: int, back: int) -> bool:
    """The orders back after a backtrack to just before the bad change: every one it deleted, less
    at most the few committed in the millisecond between the point and the DELETE's snapshot (the
    DELETE saw them; the point is before them)."""
    return deleted - IN_FLIGHT <= back <= deleted


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp_path = tmp_path_factory.mktemp("backtrack")
    try:
        done = gameday(["run", "features/backtrack.feature", "--reports", str(tmp_path), "--run-id", "bt"],
                       tmp_path, net=66, timeout=1200)
        assert done.returncode == 1, "the negative control breaches: " + done.stdout[-3000:] + done.stderr[-2000:]
        yield tmp_path / "bt"
    finally:
        shutil.rmtree(home_of(tmp_path), ignore_errors=True)  # the run's emulator state (the daemon has stopped)


def test_a_backtrack_to_just_before_a_bad_change_is_exact_in_place(run: Path) -> None:
    verdict, records = scenario(run, "Backtrack to just before a bad change on Aurora MySQL")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    rewind = verdict["measurements"]["restore"]
    assert rewind["kind"] == "backtrack" and rewind["present"] > 100
    assert rewind["restore_lost_count"] == rewind["restore_leaked_count"] == 0 and rewind["ambiguous"] <= 2
    (change,) = [r for r in records if r["kind"] == "bad-change"]
    asked = change["server_start"] - 0.001
    assert rewind["requested_point"] == pytest.approx(asked, abs=1e-6)
    assert asked - 0.001 < rewind["boundary_low"] <= asked, "BacktrackTo carries milliseconds"
    (read,) = [r for r in records if r["kind"] == "restore-ledger"]
    assert change["rows"] > 0 and within_in_flight(change["rows"], read["orders_before_bad_change"]), \
        "the orders the bad change deleted are back"
    topologies = [r for r in records if r["kind"] == "topology"]
    assert topologies[0]["writer"] == topologies[-1]["writer"], "the same writer after the backtrack"
    assert 0 < rewind["restore_duration_s"] < 60
    drivers = verdict["measurements"]["by_driver"]["drivers"]
    assert drivers["plain"]["rto"]["recovered"], "the plain driver's writes came back"
    assert {"oltp/naive", "oltp/resilient"} <= set(drivers["plain"]["loads"])
    assert "oltp/aws-wrapper" in drivers["aws-wrapper"]["loads"]
    assert verdict["measurements"]["rto"]["first_failure_after_fault_s"] < 1.0, "connections close at once"


def test_back_and_forth_finds_the_bad_change_again(run: Path) -> None:
    verdict, records = scenario(run, "Back and forth to find the bad change on Aurora MySQL")
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    rewinds = [r for r in records if r["kind"] == "restore" and r["how"] == "backtrack"]
    (change,) = [r for r in records if r["kind"] == "bad-change"]
    assert len(rewinds) == 2 and rewinds[1]["boundary_low"] == pytest.approx(change["server_start"] + 1, abs=0.001)
    before, after = [r for r in records if r["kind"] == "restore-ledger"]
    assert within_in_flight(change["rows"], before["orders_before_bad_change"])
    assert after["orders_before_bad_change"] == 0
    assert verdict["measurements"]["restore"]["restore_lost_count"] == 0


@pytest.mark.parametrize(("name", "code"), [
    ("A backtrack outside the window is refused on Aurora MySQL", "InvalidParameterValue"),
    ("Aurora PostgreSQL has no Backtrack on Aurora PostgreSQL", "InvalidParameterCombination"),
])
def test_refused_backtracks_change_nothing(run: Path, name: str, code: str) -> None:
    verdict, records = scenario(run, name)
    assert verdict["status"] == "PolicyMet", verdict["verdicts"]
    (refusal,) = [r for r in records if r["kind"] == "refusal"]
    assert refusal["code"] == code
    assert not [r for r in records if r["kind"] == "restore"], "nothing was rewound"
    assert verdict["measurements"]["data_loss"]["lost_count"] == 0


def test_the_negative_control_names_exactly_the_writes_the_early_backtrack_missed(run: Path) -> None:
    """What the probe itself was told was committed in the 2 s before the point is what is named."""
    verdict, records = scenario(run, "A backtrack that lands early misses acknowledged writes on Aurora MySQL")
    assert_names_the_writes_missed(verdict, records, EARLY_S)
