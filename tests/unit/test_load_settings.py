"""What a load is told, and how: workloads by name, the environment contract, where users run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.runner import Distribution, LoadSpec
from harness.load.settings import PASSWORD, LoadConfigurationError, LoadSettings, locustfile, take_password, workload_dir

WORKLOADS = workload_dir()

SETTINGS = LoadSettings("aurora-postgresql", "127.42.0.1", 5432, "127.42.0.2", 5432, "gameday", "orders",
                        "resilient", "run-7")


def test_settings_travel_through_the_environment_and_the_password_apart() -> None:
    environ = SETTINGS.environment()
    assert LoadSettings.from_environment(environ) == SETTINGS
    assert PASSWORD not in environ and all(name.startswith("GAMEDAY_LOAD_") for name in environ)
    environ[PASSWORD] = "s3cret"
    assert take_password(environ) == "s3cret" and PASSWORD not in environ, "read once, then gone"
    with pytest.raises(LoadConfigurationError, match="GAMEDAY_LOAD_PASSWORD is not set"):
        take_password(environ)


def test_a_missing_variable_is_named() -> None:
    environ = SETTINGS.environment()
    del environ["GAMEDAY_LOAD_READER_HOST"]
    with pytest.raises(LoadConfigurationError, match="GAMEDAY_LOAD_READER_HOST is not set"):
        LoadSettings.from_environment(environ)
    del environ["GAMEDAY_LOAD_BEHAVIOUR"]  # has a default
    environ["GAMEDAY_LOAD_READER_HOST"] = "127.42.0.2"
    assert LoadSettings.from_environment(environ).behaviour == "naive"


def test_workloads_are_shipped_locustfiles_a_teams_own_or_a_path(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert locustfile("oltp") == WORKLOADS / "oltp.py"
    assert locustfile("write-heavy") == WORKLOADS / "write_heavy.py"
    assert locustfile(str(WORKLOADS / "read_heavy.py")) == WORKLOADS / "read_heavy.py"
    with pytest.raises(LoadConfigurationError, match=r"no workload 'olap'.*oltp, read-heavy.*write-heavy"):
        locustfile("olap")
    (tmp_path / "load").mkdir()
    (tmp_path / "load" / "oltp.py").write_text("# a team's own oltp\n")
    (tmp_path / "load" / "checkout.py").write_text("# a team's own workload\n")
    assert locustfile("oltp") == tmp_path / "load" / "oltp.py", "a team's own workload comes first"
    assert locustfile("checkout") == tmp_path / "load" / "checkout.py"


def test_a_load_spec_checks_its_words() -> None:
    assert LoadSpec("oltp", 20).name == "oltp/naive"
    assert LoadSpec(str(WORKLOADS / "write_heavy.py"), 5, "resilient").name == "write_heavy/resilient"
    with pytest.raises(LoadConfigurationError, match="unknown client behaviour 'careful'; choose naive or resilient"):
        LoadSpec("oltp", 20, "careful")
    with pytest.raises(LoadConfigurationError, match="at least one user"):
        LoadSpec("oltp", 0)


def test_the_distribution_comes_from_gameday_run_and_the_environment() -> None:
    assert not Distribution.from_environment({}).distributed
    local = Distribution.from_environment({"GAMEDAY_LOAD_WORKERS": "2"})
    assert local == Distribution(workers=2) and local.distributed
    remote = Distribution.from_environment({"GAMEDAY_LOAD_REMOTE_WORKERS": "4", "GAMEDAY_LOAD_MASTER_BIND": "*",
                                            "GAMEDAY_LOAD_MASTER_PORT": "5557"})
    assert remote == Distribution(remote_workers=4, bind_host="*", port=5557) and remote.distributed
    with pytest.raises(LoadConfigurationError, match="bad load distribution"):
        Distribution.from_environment({"GAMEDAY_LOAD_WORKERS": "two"})
