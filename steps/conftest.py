"""pytest wiring for game days: the target, one GameDay per scenario, tags, verdicts, evidence.

`gameday run` sets the GAMEDAY_* environment variables read here; the scenarios themselves
are bound in `steps/test_gameday.py`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.environments import AwsEnvironment, EmulatorEnvironment, Environment
from harness.gameday import GameDay
from harness.report.evidence import attach_scenario_evidence, write_run_metadata
from steps.fault_injection import *  # noqa: F403 - step definitions are fixtures of the module they live in
from steps.given import *  # noqa: F403
from steps.load import *  # noqa: F403
from steps.then import *  # noqa: F403
from steps.when import *  # noqa: F403

SCENARIO_KEY = pytest.StashKey[tuple[str, str]]()
TAG_MARKERS = {"emulator-only": "runs only on the emulator (needs emulator-only controls)",
               "negative-control": "must breach a target: proves the harness detects the failure",
               "aurora-postgresql": "runs on Aurora PostgreSQL (a feature, or an Examples table of an outline)",
               "aurora-mysql": "runs on Aurora MySQL (a feature, or an Examples table of an outline)"}


def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in TAG_MARKERS.items():
        config.addinivalue_line("markers", f"{marker_name(tag)}: {meaning}")
        if marker_name(tag) != tag:  # pytest-bdd marks an Examples table with its tags as written
            config.addinivalue_line("markers", f"{tag}: {meaning} (as tagged on an Examples table)")


def _mark_examples_tags(items: list[pytest.Item]) -> None:
    """Examples-table tags reach pytest under their Gherkin names (`aurora-mysql`), which `-m` cannot
    name; add the marker `--tags` selects by (`aurora_mysql`)."""
    for item in items:
        for mark in list(item.iter_markers()):
            if mark.name in TAG_MARKERS and marker_name(mark.name) != mark.name:
                item.add_marker(marker_name(mark.name))


def marker_name(tag: str) -> str:
    """Gherkin tags may contain hyphens; pytest markers (and -m expressions) may not."""
    return tag.replace("-", "_")


def pytest_bdd_apply_tag(tag: str, function: Any) -> bool:
    getattr(pytest.mark, marker_name(tag))(function)
    return True


def target_name() -> str:
    return os.environ.get("GAMEDAY_TARGET", "emulator")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _mark_examples_tags(items)
    if target_name() == "emulator":
        return
    skip = pytest.mark.skip(reason=f"@emulator-only: needs the emulator's controls, target is {target_name()}")
    for item in items:
        if item.get_closest_marker("emulator_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def run_dir() -> Path:
    path = Path(os.environ.get("GAMEDAY_RUN_DIR", "reports/adhoc")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def environment(run_dir: Path, request: pytest.FixtureRequest) -> Iterator[Environment]:
    if target_name() == "emulator":
        env: Environment = EmulatorEnvironment(
            state_dir=Path(os.environ["GAMEDAY_EMULATOR_HOME"]) if os.environ.get("GAMEDAY_EMULATOR_HOME") else None,
            net=int(os.environ.get("GAMEDAY_EMULATOR_NET", "45")),
            dns_ttl=float(os.environ.get("GAMEDAY_DNS_TTL", "5")))
    elif target_name() == "aws":
        profile = os.environ.get("GAMEDAY_PROFILE")
        env = AwsEnvironment(profile=Path(profile) if profile else None,
                             endpoint_url=os.environ.get("GAMEDAY_AWS_ENDPOINT_URL"),
                             dry_run=os.environ.get("GAMEDAY_DRY_RUN") == "1")
    else:
        raise pytest.UsageError(f"unknown target {target_name()!r}: use emulator or aws")
    write_run_metadata(request.config, env)
    try:
        yield env
    finally:
        env.close()


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    request.node.stash[SCENARIO_KEY] = (feature.name, scenario.name)


@pytest.fixture
def game_day(environment: Environment, run_dir: Path, request: pytest.FixtureRequest) -> Iterator[GameDay]:
    feature, scenario = request.node.stash.get(SCENARIO_KEY, ("adhoc", request.node.name))
    directory = run_dir / "scenarios" / _slug(feature) / _slug(scenario)
    for n in range(2, 100):  # two scenarios whose names differ only past the slug's length
        if not directory.exists():
            break
        directory = directory.with_name(f"{_slug(scenario)}-{n}")
    day = GameDay(environment, scenario, directory)
    try:
        yield day
    finally:
        try:
            day.close()
        finally:
            attach_scenario_evidence(day)


def pytest_bdd_before_step_call(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                step_func: Any, step_func_args: dict[str, Any]) -> None:
    """Dry run: Given and When steps only plan; the first Then step ends the scenario with its plan."""
    if step.type != "then" or "game_day" not in request.fixturenames:
        return
    day = request.getfixturevalue("game_day")
    if day.dry_run:
        pytest.skip("dry run, plan: " + "; ".join(day.planned))


def pytest_bdd_after_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                          step_func: Any, step_func_args: dict[str, Any]) -> None:
    """After the last step, a scenario with a breached verdict fails, listing every breach."""
    if step is not scenario.steps[-1] or "game_day" not in request.fixturenames:
        return
    breached = request.getfixturevalue("game_day").breached()
    if breached:
        lines = "\n".join(f"  {v.check}: {v.explanation}" for v in breached)
        raise AssertionError(f"PolicyBreached ({len(breached)}):\n{lines}")


def _slug(text: str, limit: int = 80) -> str:
    """A directory name; a long one keeps its end, where an outline's example usually is
    ("... on Aurora MySQL")."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "scenario"
    return slug if len(slug) <= limit else f"{slug[:limit - 32]}--{slug[-30:]}"
