"""JUnit XML of a run, beside its Allure results, for any CI that reads test reports.

Written from what the game day knows rather than by pytest's own `--junitxml`: one test case per
scenario run, named as the reports name it ("<scenario> on Aurora MySQL", in its feature), a
breached scenario a `failure` of type `PolicyBreached` listing every breached verdict, a scenario
that could not run an `error`. No captured output goes in, so nothing a driver printed (and no
secret) reaches the CI.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = ["write_junit"]


class ScenarioOutcome(Protocol):
    name: str  # pytest's test name, when the scenario never got a title
    status: str  # passed | failed | skipped | error
    message: str
    title: str | None
    feature: str | None
    duration: float


def write_junit(path: Path, outcomes: Iterable[ScenarioOutcome], verdicts: Mapping[str, Mapping[str, Any]], *,
                suite: str, started: datetime, properties: Mapping[str, str] = {}) -> Path:
    """`verdicts`: each scenario's verdict.json by its title (the breached checks come from there)."""
    outcomes = list(outcomes)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("failed", "error", "skipped")}
    total_time = f"{sum(o.duration for o in outcomes):.3f}"
    root = ET.Element("testsuites", name="aurora-gameday", tests=str(len(outcomes)), failures=str(counts["failed"]),
                      errors=str(counts["error"]), skipped=str(counts["skipped"]), time=total_time)
    testsuite = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)),
                              failures=str(counts["failed"]), errors=str(counts["error"]),
                              skipped=str(counts["skipped"]), time=total_time,
                              timestamp=started.isoformat(timespec="seconds"), hostname=socket.gethostname())
    if properties:
        listed = ET.SubElement(testsuite, "properties")
        for name, value in properties.items():
            ET.SubElement(listed, "property", name=name, value=value)
    for outcome in outcomes:
        case = ET.SubElement(testsuite, "testcase", classname=outcome.feature or "aurora-gameday",
                             name=outcome.title or outcome.name, time=f"{outcome.duration:.3f}")
        breached = [v for v in (verdicts.get(outcome.title or "") or {}).get("verdicts", [])
                    if v.get("status") == "PolicyBreached"]
        if outcome.status == "failed" and breached:
            failure = ET.SubElement(case, "failure", type="PolicyBreached",
                                    message=f"{len(breached)} verdict(s) breached")
            failure.text = "\n".join(f"{v['check']}: {v['explanation']}" for v in breached)
        elif outcome.status == "failed":
            ET.SubElement(case, "failure", type="ScenarioFailed", message=outcome.message)
        elif outcome.status == "error":
            ET.SubElement(case, "error", type="CouldNotRun", message=outcome.message)
        elif outcome.status == "skipped":
            ET.SubElement(case, "skipped", message=outcome.message)
    ET.indent(root)
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
