"""The negative control, checked independently: the writes the harness calls lost are exactly
the acknowledged writes missing from the ledger when we read it ourselves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.environments import EmulatorEnvironment
from harness.faults import ReaderLag, UnsafeFailover
from harness.gameday import GameDay
from harness.judgements import writes
from harness.timeline import read_timeline


@pytest.mark.parametrize(("engine", "net"), [("aurora-postgresql", 44), ("aurora-mysql", 53)])
def test_lost_writes_reported_are_exactly_those_missing_from_the_ledger(tmp_path: Path, engine: str, net: int) -> None:
    state_dir = Path("/dev/shm") / f"gd-test-neg-{tmp_path.name}"
    environment = EmulatorEnvironment(state_dir=state_dir, net=net, dns_ttl=0)
    day = GameDay(environment, "negative control", tmp_path / "negative-control", engine=engine)
    try:
        day.provide_cluster(readers=1)
        reader = day.initial_readers[0]
        day.act(ReaderLag(reader, 1500))
        day.start_probes()
        day.hold("steady-state", 3)
        day.inject(UnsafeFailover(reader))
        day.await_recovery(120)
        loss = day.measurements()["data_loss"]

        cut = day.cluster
        conn = cut.dialect.connect(*cut.endpoint(), cut.credentials, connect_timeout=5, statement_timeout=30)
        try:  # read the ledger ourselves, with the driver's own cursor (both drivers take %s parameters)
            cursor = conn.cursor()
            cursor.execute("SELECT seq FROM gameday_ledger WHERE run_id = %s", (day.run_id,))
            present = {seq for (seq,) in cursor.fetchall()}
        finally:
            conn.close()
        acknowledged = {r["seq"] for r in read_timeline(day.timeline.path)
                        if r["kind"] == "write" and r["outcome"] == "acknowledged"}
        really_missing = sorted(acknowledged - present)

        assert len(really_missing) > 10, "an unsafe promotion behind a 1.5 s lag really loses writes"
        assert loss["lost_count"] == len(really_missing)
        assert loss["lost"] == really_missing[:1000]
        assert loss["rpo_s"] > 0.5
        (verdict,) = day.judge(writes.data_loss, target=day.target("in-region-acknowledged-writes"))
        assert verdict.status == "PolicyBreached"
        assert f"{len(really_missing)} writes" in verdict.explanation
    finally:
        day.close()
        environment.close()
        shutil.rmtree(state_dir, ignore_errors=True)
