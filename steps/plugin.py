"""The pytest plugin of a game day: the target, the engine dimension, one GameDay per scenario,
tags, verdicts and evidence.

`gameday run` loads it with `-p harness.steps.plugin` and sets the GAMEDAY_* environment
variables read here. It only acts on pytest-bdd scenarios, so loading it next to other tests
changes nothing for them.

The engine is a dimension of the run, not of the feature files: every scenario runs once per
engine of the run (`gameday run --engine ...`, GAMEDAY_ENGINES; by default both on the emulator,
the profile's on AWS), through the `engine` parameter, whose values carry the engine's marker
so `--tags @aurora-mysql` selects them. A scenario tagged `@aurora-mysql-only` or
`@aurora-postgresql-only` runs on that engine alone.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.certify.settings import trend_settings
from harness.certify.trends import HISTORY, ScenarioTrend, record_verdict_file
from harness.environments import ENGINE_TITLES, ENGINES, AwsEnvironment, EmulatorEnvironment, Environment
from harness.gameday import GameDay
from harness.report.evidence import attach_scenario_evidence, write_run_metadata

from .blue_green import *  # noqa: F403 - step definitions are fixtures of the module they are imported into
from .cluster import *  # noqa: F403
from .failover import *  # noqa: F403
from .fault_injection import *  # noqa: F403
from .global_database import *  # noqa: F403
from .load import *  # noqa: F403
from .restore import *  # noqa: F403
from .storage import *  # noqa: F403
from .writes import *  # noqa: F403

SCENARIO_KEY = pytest.StashKey[tuple[str, str]]()
ENGINE_ONLY = {f"{engine}-only": engine for engine in ENGINES}
log = logging.getLogger("harness.steps")
TAG_MARKERS = {
    "certification": "in the DR certification suite (`gameday certify`)",
    "emulator-only": "runs only on the emulator (needs emulator-only controls)",
    "negative-control": "must breach a target: proves the harness detects the failure",
    **{engine: f"the scenario's run on {ENGINE_TITLES[engine]}" for engine in ENGINES},
    **{tag: f"exists on {ENGINE_TITLES[engine]} only" for tag, engine in ENGINE_ONLY.items()},
}


def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in TAG_MARKERS.items():
        config.addinivalue_line("markers", f"{marker_name(tag)}: {meaning}")


def marker_name(tag: str) -> str:
    """Gherkin tags may contain hyphens; pytest markers (and -m expressions) may not."""
    return tag.replace("-", "_")


@pytest.hookimpl(tryfirst=True)  # before pytest-bdd's own, which a `-p` plugin is registered ahead of
def pytest_bdd_apply_tag(tag: str, function: Any) -> bool:
    getattr(pytest.mark, marker_name(tag))(function)
    return True


def target_name() -> str:
    return os.environ.get("GAMEDAY_TARGET", "emulator")


def run_engines() -> list[str]:
    """The engines this run takes each scenario on (GAMEDAY_ENGINES, comma-separated; default both)."""
    chosen = [e.strip() for e in os.environ.get("GAMEDAY_ENGINES", "").split(",") if e.strip()]
    return [e for e in ENGINES if e in chosen] if chosen else list(ENGINES)


def is_scenario(metafunc: pytest.Metafunc) -> bool:
    """pytest-bdd's scenario functions take the `_pytest_bdd_example` argument; nothing else does."""
    return "_pytest_bdd_example" in metafunc.fixturenames


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each scenario once per engine of the run (or only on the engine its tag names)."""
    if not is_scenario(metafunc):
        return
    only = [engine for tag, engine in ENGINE_ONLY.items() if metafunc.definition.get_closest_marker(marker_name(tag))]
    engines = [e for e in run_engines() if not only or e in only]
    if "engine" not in metafunc.fixturenames:
        metafunc.fixturenames.append("engine")  # scenario functions are generated: they cannot ask for it
    if not engines:
        reason = (f"@{'/'.join(f'{e}-only' for e in only)}: this run's engines are {', '.join(run_engines())}")
        metafunc.parametrize("engine", [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-engine")])
        return
    metafunc.parametrize("engine", [pytest.param(e, marks=getattr(pytest.mark, marker_name(e)), id=e)
                                    for e in engines])


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
def game_day(environment: Environment, run_dir: Path, engine: str, request: pytest.FixtureRequest
             ) -> Iterator[GameDay]:
    """The scenario on this engine, named as reports show it: "<scenario> on Aurora MySQL"."""
    feature, scenario = request.node.stash.get(SCENARIO_KEY, ("adhoc", request.node.name))
    title = f"{scenario} on {ENGINE_TITLES[engine]}"
    allure.dynamic.title(title)
    request.node.user_properties += [("scenario", title), ("feature", feature)]  # for the run's JUnit XML
    directory = run_dir / "scenarios" / _slug(feature) / _slug(title)
    for n in range(2, 100):  # two scenarios whose names differ only past the slug's length
        if not directory.exists():
            break
        directory = directory.with_name(f"{_slug(title)}-{n}")
    day = GameDay(environment, title, directory, engine=engine)
    try:
        yield day
    finally:
        try:
            day.close()
        finally:
            attach_scenario_evidence(day, trend=_trend(day, run_dir, engine))


def _trend(day: GameDay, run_dir: Path, engine: str) -> ScenarioTrend | None:
    """The scenario's figures appended to the history beside the reports, and compared with its
    earlier runs; a history that cannot be kept never fails the scenario."""
    profile = os.environ.get("GAMEDAY_PROFILE")
    try:
        return record_verdict_file(day.directory / "verdict.json", history=run_dir.parent / HISTORY,
                                   run_id=os.environ.get("GAMEDAY_RUN_ID", run_dir.name), target=target_name(),
                                   engine=engine, settings=trend_settings(Path(profile) if profile else None))
    except Exception:
        log.exception("recording the trend of %s failed", day.scenario)
        return None


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
    """A directory name; a long one keeps its end, where the engine is ("... on Aurora MySQL")."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "scenario"
    return slug if len(slug) <= limit else f"{slug[:limit - 32]}--{slug[-30:]}"
