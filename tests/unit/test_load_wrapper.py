"""A load through the AWS Advanced Python Wrapper: the pure parts (no wrapper, no database).

WrapperSession's logic with a scripted connector; how the driver travels from the step's words
to LoadSpec, LoadSettings (GAMEDAY_LOAD_DRIVER) and the Locust command (the private /etc/hosts).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from harness.dialects.base import Credentials
from harness.drivers import wrapper_connection
from harness.load.behaviours import Endpoint, WrapperSession
from harness.load.runner import LoadRun, LoadSpec
from harness.drivers import AWS_WRAPPER
from harness.load.settings import PREFIX, LoadConfigurationError, LoadSettings
from harness.timeline import Timeline
from steps.load import load_spec

CREDENTIALS = Credentials("app", "s3cret-pw", "app")
WRITER_ENDPOINT = Endpoint("cluster endpoint", "orders.cluster-x.example", 5432, writer=True)


class FailedOver(Exception):
    """Stands for FailoverSuccessError: the wrapper reconnected, the statement's fate is unknown."""


class Lost(Exception):
    """Any other error (FailoverFailedError, a driver error)."""


class Conn:
    def __init__(self, number: int):
        self.number, self.closed = number, False

    def close(self) -> None:
        self.closed = True


class Dialect:
    engine = "scripted"


def session() -> tuple[WrapperSession, list[Conn]]:
    made: list[Conn] = []

    def connector(endpoint: Endpoint, credentials: Credentials, application: str, statement_timeout: float) -> Conn:
        assert (endpoint, credentials, application) == (WRITER_ENDPOINT, CREDENTIALS, "gameday-load-aws-wrapper")
        made.append(Conn(len(made) + 1))
        return made[-1]

    return WrapperSession(Dialect(), WRITER_ENDPOINT, CREDENTIALS, "gameday-load-aws-wrapper",  # type: ignore[arg-type]
                          connector=connector, success=FailedOver), made


def scripted(*outcomes: Any) -> Any:
    """An operation that raises or returns the outcomes in turn, noting the connection it got."""
    seen: list[int] = []
    queue = list(outcomes)

    def operation(conn: Conn) -> Any:
        seen.append(conn.number)
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    operation.seen = seen  # type: ignore[attr-defined]
    return operation


def test_a_wrapper_session_keeps_its_connection_across_requests() -> None:
    s, made = session()
    assert s.execute(scripted(1)) == 1 and s.execute(scripted(2)) == 2
    assert len(made) == 1 and s.connects == 1


def test_after_a_failover_success_the_same_request_runs_once_more_on_the_same_connection() -> None:
    s, made = session()
    operation = scripted(FailedOver("failed over to the new writer"), "ok")
    assert s.execute(operation) == "ok"
    assert operation.seen == [1, 1] and s.failovers == 1 and not made[0].closed


def test_the_retry_is_only_once() -> None:
    s, made = session()
    operation = scripted(FailedOver("once"), FailedOver("twice"))
    with pytest.raises(FailedOver, match="twice"):
        s.execute(operation)
    assert made[0].closed and s.conn is None
    assert s.execute(scripted("fresh")) == "fresh" and len(made) == 2


def test_any_other_error_is_the_applications_and_the_next_request_reconnects() -> None:
    s, made = session()
    with pytest.raises(Lost):
        s.execute(scripted(Lost("FailoverFailedError")))
    assert made[0].closed and s.failovers == 0
    assert s.execute(scripted("ok")) == "ok" and len(made) == 2


def test_the_wrapper_properties_of_a_load() -> None:
    props = wrapper_connection.properties("?.gameday.us-east-1.rds.amazonaws.com", "gd-x-gameday-load")
    assert props["plugins"] == "failover"
    assert props["cluster_instance_host_pattern"] == "?.gameday.us-east-1.rds.amazonaws.com"
    assert props["cluster_id"] == "gd-x-gameday-load"
    assert "cluster_instance_host_pattern" not in wrapper_connection.properties()  # real DNS: the wrapper's own


GLOBAL_PATTERNS = "us-east-1:?.gameday.us-east-1.rds.amazonaws.com,us-west-2:?.gameday.us-west-2.rds.amazonaws.com"


def test_on_a_global_database_the_load_chooses_the_gdb_failover_plugin_as_the_write_probe_does() -> None:
    settings = LoadSettings("aurora-postgresql", "g.global-0123456789ab.global.rds.amazonaws.com", 5432,
                            "c-west.cluster-ro-gameday.us-west-2.rds.amazonaws.com", 5432, "app", "app",
                            driver=AWS_WRAPPER, cluster_id="c-gameday-load", home_region="us-east-1",
                            global_patterns=GLOBAL_PATTERNS)
    props = LoadSettings.from_environment(settings.environment()).wrapper_properties()
    assert {k: props[k] for k in ("plugins", "failover_home_region", "global_cluster_instance_host_patterns",
                                  "cluster_id")} == {"plugins": "gdb_failover", "failover_home_region": "us-east-1",
                                                     "global_cluster_instance_host_patterns": GLOBAL_PATTERNS,
                                                     "cluster_id": "c-gameday-load"}
    assert "cluster_instance_host_pattern" not in props
    assert props["failover_timeout_sec"] == wrapper_connection.WRAPPER_PROPERTIES["failover_timeout_sec"]
    # The same plugin and properties as the write probe's (harness.global_probes.global_wrapper_target).
    assert wrapper_connection.global_properties("us-east-1", GLOBAL_PATTERNS).items() <= props.items()


def test_on_one_cluster_nothing_changes_and_a_plain_load_has_no_wrapper_properties() -> None:
    settings = LoadSettings("aurora-mysql", "c.cluster-gameday.us-east-1.rds.amazonaws.com", 3306,
                            "c.cluster-ro-gameday.us-east-1.rds.amazonaws.com", 3306, "app", "app",
                            driver=AWS_WRAPPER, instance_pattern="?.gameday.us-east-1.rds.amazonaws.com",
                            cluster_id="c-gameday-load")
    assert settings.wrapper_properties() == wrapper_connection.properties("?.gameday.us-east-1.rds.amazonaws.com",
                                                                          "c-gameday-load")
    assert settings.wrapper_properties()["plugins"] == "failover"
    with pytest.raises(LoadConfigurationError, match="do not use the wrapper"):
        LoadSettings("aurora-mysql", "h", 3306, "r", 3306, "app", "app").wrapper_properties()


def test_global_patterns_without_a_home_region_are_refused_by_name() -> None:
    environ = LoadSettings("aurora-postgresql", "g", 5432, "r", 5432, "app", "app", driver=AWS_WRAPPER,
                           global_patterns=GLOBAL_PATTERNS).environment()
    with pytest.raises(LoadConfigurationError, match="GAMEDAY_LOAD_HOME_REGION"):
        LoadSettings.from_environment(environ)
    with pytest.raises(ValueError, match="home Region"):
        wrapper_connection.global_properties("", GLOBAL_PATTERNS)


def test_the_step_words_choose_the_driver() -> None:
    assert load_spec("oltp", 10, None, " through the AWS Advanced Python Wrapper").driver == AWS_WRAPPER
    assert load_spec("oltp", 10, "aws-wrapper", None).driver == AWS_WRAPPER
    plain = load_spec("oltp", 10, "resilient", None)
    assert (plain.driver, plain.behaviour, plain.name) == ("plain", "resilient", "oltp/resilient")


def test_a_load_spec_names_the_wrapper_as_its_client() -> None:
    spec = LoadSpec("oltp", 3, driver=AWS_WRAPPER)
    assert (spec.name, spec.client) == ("oltp/aws-wrapper", "aws-wrapper")
    with pytest.raises(LoadConfigurationError, match="unknown driver 'jdbc'"):
        LoadSpec("oltp", 3, driver="jdbc")


def test_the_driver_travels_through_the_environment() -> None:
    settings = LoadSettings("aurora-postgresql", "c.cluster-gameday.us-east-1.rds.amazonaws.com", 5432,
                            "c.cluster-ro-gameday.us-east-1.rds.amazonaws.com", 5432, "app", "app",
                            driver=AWS_WRAPPER, instance_pattern="?.gameday.us-east-1.rds.amazonaws.com",
                            cluster_id="c-load")
    environ = settings.environment()
    assert environ[f"{PREFIX}DRIVER"] == "aws-wrapper"
    assert LoadSettings.from_environment(environ) == settings
    plain = {k: v for k, v in environ.items() if k not in (f"{PREFIX}DRIVER", f"{PREFIX}INSTANCE_PATTERN")}
    assert LoadSettings.from_environment(plain).driver == "plain"
    with pytest.raises(LoadConfigurationError, match="GAMEDAY_LOAD_DRIVER"):
        LoadSettings.from_environment({**environ, f"{PREFIX}DRIVER": "odbc"})


def test_locust_runs_inside_the_private_hosts_file_when_there_is_one(tmp_path: Path) -> None:
    settings = LoadSettings("aurora-postgresql", "h", 5432, "r", 5432, "app", "app", driver=AWS_WRAPPER)
    timeline = Timeline(tmp_path / "timeline.jsonl")
    try:
        plain = LoadRun(LoadSpec("oltp", 1), settings, "pw", tmp_path, timeline)
        assert plain.command(["--headless"]) == [sys.executable, "-m", "locust", "--headless"]
        hosts = tmp_path / "hosts"
        wrapped = LoadRun(LoadSpec("oltp", 1, driver=AWS_WRAPPER), settings, "pw", tmp_path, timeline,
                          hosts_file=hosts)
        argv = wrapped.command(["--headless"])
    finally:
        timeline.close()
    assert "unshare" in Path(argv[0]).name and "--mount" in argv
    assert argv[-5:] == [str(hosts), sys.executable, "-m", "locust", "--headless"]
