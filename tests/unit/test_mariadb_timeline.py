"""The timeline backtracks leave on Aurora MySQL (MariaDB): which branch holds the data as of a
moment, and which writer histories belong to which branch. Files only, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.emulator.engines.mariadb_timeline import Timeline


def timeline(tmp_path: Path, *lines: str) -> Timeline:
    path = tmp_path / "epochs"
    if lines:
        path.write_text("".join(f"{line}\n" for line in lines))
    return Timeline(path)


def test_without_backtracks_every_moment_is_the_first_epochs(tmp_path: Path) -> None:
    line = timeline(tmp_path)
    assert [e.index for e in line.epochs()] == [0]
    (link,) = line.chain(123)
    assert (link.epoch.index, link.until_ns) == (0, 123)


def test_a_moment_resolves_through_every_backtrack_before_it(tmp_path: Path) -> None:
    # At 100 the cluster was rewound to 40 (GTID 0-1-4); at 200 to 150, a moment of that first branch.
    line = timeline(tmp_path, "100 40 0-1-4", "200 150 0-1-9")
    assert [(link.epoch.index, link.until_ns) for link in line.chain(250)] == [(0, 40), (1, 150), (2, 250)]
    assert [(link.epoch.index, link.until_ns) for link in line.chain(120)] == [(0, 40), (1, 120)]
    assert [(link.epoch.index, link.until_ns) for link in line.chain(80)] == [(0, 80)], "the branch passed over"
    assert line.epochs()[2].fork == "0-1-9"


def test_backtracking_forward_into_a_branch_passed_over(tmp_path: Path) -> None:
    # At 100 back to 40; at 200 forward again to 90 (the first branch, which the first backtrack left).
    line = timeline(tmp_path, "100 40 0-1-4", "200 90 0-1-8")
    assert [(link.epoch.index, link.until_ns) for link in line.chain(210)] == [(0, 90), (2, 210)]


def test_begin_appends_an_epoch_starting_now(tmp_path: Path) -> None:
    line = timeline(tmp_path)
    epoch = line.begin(40, "0-1-4")
    assert (epoch.index, epoch.target_ns, epoch.fork) == (1, 40, "0-1-4") and epoch.began_ns > 40
    assert line.begin(41, "").fork == "", "a rewind to before any GTID"
    assert len(Timeline(line.path).epochs()) == 3


def test_writer_histories_belong_to_the_epoch_they_first_wrote_in(tmp_path: Path) -> None:
    line = timeline(tmp_path, "100 40 0-1-4")
    since = {"w-1": 10, "w-2": 60, "w-1.2": 101}  # a failover at 60, the backtrack's new writer at 101
    epochs = line.epochs()
    assert line.histories(epochs[0], since) == ["w-1", "w-2"]
    assert line.histories(epochs[1], since) == ["w-1.2"]


def test_a_target_after_its_backtrack_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not before it"):
        timeline(tmp_path, "100 150 0-1-4").chain(200)
