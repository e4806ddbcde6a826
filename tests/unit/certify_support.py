"""Run directories as `gameday run` leaves them, made without a database: a real `GameDay` on fakes.

The timeline is written by hand (the same record makers as the checkers' tests), the verdicts come
from real `GameDay.judge()` calls, so `verdict.json` carries the judgement calls exactly as a game
day records them, and `attach_scenario_evidence` writes the chart, the table and the manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.certify.trends import HISTORY, record_verdict_file
from harness.cluster import Member
from harness.gameday import GameDay
from harness.judgements import writer, writes
from harness.report.evidence import attach_scenario_evidence
from harness.targets import load_targets
from tests.unit.test_actions import FakeEnvironment
from tests.unit.test_measure import fault, ledger, write

TITLE = "Failover of a small cluster on Aurora PostgreSQL"
FEATURE = "Certification drill"
MEMBERS = [Member("db-1", True, 1, "available", "us-east-1a", "db.r6g.large", "127.0.0.1", 5432),
           Member("db-2", False, 0, "available", "us-east-1b", "db.r6g.large", "127.0.0.2", 5432)]
ENVIRONMENT = {"target": "emulator", "emulator.region": "us-east-1", "emulator.dns_ttl_s": "5.0",
               "engine.aurora-postgresql": "15.10 (emulated on PostgreSQL 15.20)",
               "engine.aurora-mysql": "8.0.mysql_aurora.3.05.2 (emulated on MariaDB 10.11.19)",
               "harness.version": "0.1.0", "git.revision": "0" * 40, "git.dirty": "false", "python": "3.11.7"}


def failover_records(rto: float, lost: bool = False) -> list[dict[str, Any]]:
    """A failover issued at 1.5 s whose writes come back `rto` seconds later; `lost`: an
    acknowledged write missing from the final ledger read."""
    back = 1.5 + rto
    return [write(1, 0.0, 0.1), write(2, 1.0, 1.1), fault(1.5), write(3, 2.0, 2.2, "failed", "connection refused"),
            write(4, back - 0.25, back), write(5, back + 0.5, back + 0.6),
            ledger([[1, 2], [5, 5]] if lost else [[1, 2], [4, 5]])]


def make_run(reports: Path, run_id: str, *, rto: float = 3.0, limit: float = 5.0, lost: bool = False,
             title: str = TITLE) -> Path:
    """reports/<run_id>/ with one judged scenario, its summary and environment, its trend recorded."""
    run_dir = reports / run_id
    slug = title.lower().replace(" ", "-")
    directory = run_dir / "scenarios" / "certification-drill" / slug
    day = GameDay(FakeEnvironment(), title, directory)  # type: ignore[arg-type]
    day.provide_cluster(readers=1)
    for record in failover_records(rto, lost):
        fields = {k: v for k, v in record.items() if k not in ("kind", "t", "m")}
        day.timeline.record_at(record["kind"], record["t"], record["m"], **fields)
    day.judge(writes.recovery, finish=False, limit=limit)
    day.judge(writes.data_loss, finish=False, target=load_targets()["in-region-acknowledged-writes"])
    day.judge(writer.promoted_by_tier, finish=False, members_at_fault=MEMBERS, writer="db-2")
    breached = bool(day.breached())
    day.measurements()  # as a scenario's Then steps leave them, for verdict.json and the trends
    day.close()
    trend = record_verdict_file(day.directory / "verdict.json", history=reports / HISTORY, run_id=run_id,
                                target="emulator", engine="aurora-postgresql")
    attach_scenario_evidence(day, trend=trend)
    document = json.loads((day.directory / "verdict.json").read_text())
    outcome = {"name": "test_failover[aurora-postgresql]", "status": "failed" if breached else "passed",
               "message": "AssertionError: PolicyBreached (1):" if breached else "", "title": title,
               "feature": FEATURE, "duration": 9.5}
    summary = {"run_id": run_id, "target": "emulator", "engines": ["aurora-postgresql"],
               "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:00:10+00:00",
               "scenarios": [document], "outcomes": [outcome], "breached": int(breached)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (run_dir / "environment.json").write_text(json.dumps({**ENVIRONMENT, "run.id": run_id}, indent=2))
    return run_dir
