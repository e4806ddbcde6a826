"""A storage node resumes on a new writer's timeline after a promotion (pure file logic)."""

from __future__ import annotations

from pathlib import Path

from harness.emulator.engines.postgres_volume import WAL_PAGE_BYTES, WAL_SEGMENT_BYTES, follow_timeline, gather_catchup


def _segment(node: Path, name: str, size: int = WAL_SEGMENT_BYTES) -> None:
    with open(node / name, "wb") as segment:
        segment.truncate(size)


def _names(node: Path) -> list[str]:
    return sorted(entry.name for entry in node.iterdir())


def test_a_node_resuming_exactly_at_the_fork_moves_to_the_new_timeline(tmp_path: Path) -> None:
    # Segment 3 complete: pg_receivewal would resume at 0/4000000 on timeline 1, the fork itself.
    _segment(tmp_path, "000000010000000000000003")
    assert follow_timeline(tmp_path, 2, "0/4000000")
    assert _names(tmp_path) == ["000000010000000000000003", "000000020000000000000004.partial"]
    assert (tmp_path / "000000020000000000000004.partial").stat().st_size == WAL_SEGMENT_BYTES


def test_wal_an_unsafe_promotion_discarded_is_dropped(tmp_path: Path) -> None:
    # The old writer ran on into segments 5 and 6; the promoted reader forked inside segment 4.
    for name in ("000000010000000000000004", "000000010000000000000005", "000000010000000000000006.partial"):
        _segment(tmp_path, name)
    assert follow_timeline(tmp_path, 2, "0/4123456")
    assert _names(tmp_path) == ["000000010000000000000004", "000000020000000000000004.partial"]


def test_a_node_resuming_before_the_fork_is_left_to_stream_across_it(tmp_path: Path) -> None:
    _segment(tmp_path, "000000010000000000000004.partial")  # resumes at 0/4000000 < fork 0/4000100
    assert not follow_timeline(tmp_path, 2, "0/4000100")
    assert _names(tmp_path) == ["000000010000000000000004.partial"]


def test_a_node_already_on_the_new_timeline_is_left_alone(tmp_path: Path) -> None:
    _segment(tmp_path, "000000010000000000000004")
    _segment(tmp_path, "000000020000000000000005.partial")
    assert not follow_timeline(tmp_path, 2, "0/5000000")
    assert _names(tmp_path) == ["000000010000000000000004", "000000020000000000000005.partial"]


def _written(node: Path, name: str, pages: int) -> None:
    """A zero-padded `.partial` segment whose first `pages` WAL pages are written."""
    with open(node / name, "wb") as segment:
        segment.truncate(WAL_SEGMENT_BYTES)
        for page in range(pages):
            segment.seek(page * WAL_PAGE_BYTES)
            segment.write(b"\x10\xd1" + b"\x01" * 100)


def test_the_catch_up_never_offers_a_reader_less_than_it_holds_of_its_own(tmp_path: Path) -> None:
    """A reader can stream ahead of every storage node: a shorter copy of its segment would replace
    its own at recovery, and the end of recovery would not find the last record it replayed."""
    node, catchup = tmp_path / "node", tmp_path / "catchup"
    node.mkdir()
    _segment(node, "000000010000000000000003")  # complete
    _written(node, "000000010000000000000004.partial", pages=2)
    node_end = 4 * WAL_SEGMENT_BYTES + WAL_PAGE_BYTES + 102  # the second page's written bytes
    assert gather_catchup([node], catchup, min_segno=3, held_to=node_end + WAL_PAGE_BYTES) == 0
    assert not list(catchup.iterdir())
    assert gather_catchup([node], catchup, min_segno=3, held_to=node_end - 1) == 1
    assert _names(catchup) == ["000000010000000000000004"]
    assert gather_catchup([node], catchup, min_segno=3, held_to=3 * WAL_SEGMENT_BYTES + 5) == 2
