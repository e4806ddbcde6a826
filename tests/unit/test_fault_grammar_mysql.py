"""Aurora MySQL's fault-injection grammar, statement by statement, error by error."""

from __future__ import annotations

import pytest

from harness.emulator.fault_grammar_mysql import (
    ER_PARSE_ERROR,
    ER_WRONG_ARGUMENTS,
    UNIT_SECONDS,
    Crash,
    DiskCongestion,
    DiskFailure,
    MySqlError,
    ReplicaFailure,
    ShowVolumeStatus,
    access_denied,
    is_fault_statement,
    parse,
)


# --- statements ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql,expected", [
    ("ALTER SYSTEM CRASH", Crash("instance")),
    ("ALTER SYSTEM CRASH;", Crash("instance")),
    ("ALTER SYSTEM CRASH INSTANCE", Crash("instance")),
    ("alter system crash dispatcher;", Crash("dispatcher")),
    ("  Alter\tSystem\n  Crash   Node  ;  ", Crash("node")),
    ("/* game day */ ALTER SYSTEM CRASH -- why not\n", Crash("instance")),
    ("# note\nALTER /* inline */ SYSTEM CRASH NODE", Crash("node")),
])
def test_crash_takes_its_kind_and_defaults_to_instance(sql: str, expected: Crash) -> None:
    assert parse(sql) == expected
    assert expected.fault() == {"type": "crash", "kind": expected.kind}


@pytest.mark.parametrize("sql,expected", [
    ("ALTER SYSTEM SIMULATE 50 PERCENT READ REPLICA FAILURE FOR INTERVAL 20 MINUTE;",
     ReplicaFailure(50.0, 1200.0, None)),
    ("ALTER SYSTEM SIMULATE 100 PERCENT READ REPLICA FAILURE TO ALL FOR INTERVAL 10 SECOND",
     ReplicaFailure(100.0, 10.0, None)),
    ('alter system simulate 12.5 percent read replica failure to "my-db-2" for interval 1 hour',
     ReplicaFailure(12.5, 3600.0, "my-db-2")),
    ("ALTER SYSTEM SIMULATE 0 PERCENT READ REPLICA FAILURE TO 'my-db-3' FOR INTERVAL 2 DAY",
     ReplicaFailure(0.0, 2 * 86400.0, "my-db-3")),
    ("ALTER SYSTEM SIMULATE .5 PERCENT READ REPLICA FAILURE FOR INTERVAL 1.5 SECOND",
     ReplicaFailure(0.5, 1.5, None)),
])
def test_read_replica_failure(sql: str, expected: ReplicaFailure) -> None:
    assert parse(sql) == expected
    assert expected.fault() == {"type": "replica_failure", "percent": expected.percent, "seconds": expected.seconds,
                                "replica": expected.replica}


@pytest.mark.parametrize("sql,expected", [
    ("ALTER SYSTEM SIMULATE 25 PERCENT DISK FAILURE FOR INTERVAL 3 MINUTE", DiskFailure(25.0, 180.0, None, True)),
    ("ALTER SYSTEM SIMULATE 25 PERCENT DISK FAILURE IN DISK 3 FOR INTERVAL 3 SECOND", DiskFailure(25.0, 3.0, 3, True)),
    ("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE IN NODE 5 FOR INTERVAL 1 WEEK",
     DiskFailure(100.0, 7 * 86400.0, 5, False)),
    ("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE NODE 2 FOR INTERVAL 1 SECOND;", DiskFailure(100.0, 1.0, 2, False)),
    ("ALTER SYSTEM SIMULATE 100 PERCENT DISK FAILURE DISK 0 FOR INTERVAL 1 SECOND", DiskFailure(100.0, 1.0, 0, True)),
])
def test_disk_failure_on_the_volume_a_disk_or_a_node(sql: str, expected: DiskFailure) -> None:
    assert parse(sql) == expected
    assert expected.fault() == {"type": "disk_failure", "percent": expected.percent, "seconds": expected.seconds,
                                "index": expected.index, "is_disk": expected.is_disk}


@pytest.mark.parametrize("sql,expected", [
    ("ALTER SYSTEM SIMULATE 50 PERCENT DISK CONGESTION BETWEEN 10 AND 30 MILLISECONDS FOR INTERVAL 1 QUARTER",
     DiskCongestion(50.0, 90 * 86400.0, 10.0, 30.0, None, True)),
    ("alter system simulate 100 percent disk congestion between 5 and 5 milliseconds in disk 1 for interval 2 month;",
     DiskCongestion(100.0, 60 * 86400.0, 5.0, 5.0, 1, True)),
    ("ALTER SYSTEM SIMULATE 75 PERCENT DISK CONGESTION BETWEEN 0 AND 12.5 MILLISECONDS IN NODE 4 FOR INTERVAL 1 YEAR",
     DiskCongestion(75.0, 365 * 86400.0, 0.0, 12.5, 4, False)),
])
def test_disk_congestion_with_its_delay_band(sql: str, expected: DiskCongestion) -> None:
    assert parse(sql) == expected
    assert expected.fault() == {"type": "disk_congestion", "percent": expected.percent, "seconds": expected.seconds,
                                "index": expected.index, "is_disk": expected.is_disk, "min_ms": expected.min_ms,
                                "max_ms": expected.max_ms}


@pytest.mark.parametrize("unit", list(UNIT_SECONDS))
def test_every_interval_unit(unit: str) -> None:
    statement = parse(f"ALTER SYSTEM SIMULATE 1 PERCENT DISK FAILURE FOR INTERVAL 2 {unit.lower()}")
    assert statement == DiskFailure(1.0, 2.0 * UNIT_SECONDS[unit])


@pytest.mark.parametrize("sql", ["SHOW VOLUME STATUS", "show volume status;", "  SHOW\n VOLUME  Status ; "])
def test_show_volume_status(sql: str) -> None:
    assert parse(sql) == ShowVolumeStatus()


@pytest.mark.parametrize("sql", [
    "SELECT 1", "ALTER TABLE t ADD COLUMN c INT", "SHOW VARIABLES", "ALTER SYSTEMS CRASH", "SHOW VOLUMES",
    "INSERT INTO t VALUES ('ALTER SYSTEM CRASH')", "/*!50000 ALTER SYSTEM CRASH */", "",
])
def test_everything_else_is_not_ours(sql: str) -> None:
    assert not is_fault_statement(sql)
    assert parse(sql) is None


# --- errors ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql,near", [
    ("ALTER SYSTEM CRASH NOW", "NOW"),
    ("ALTER SYSTEM CRASH INSTANCE NODE", "NODE"),
    ("ALTER SYSTEM CRASH; SELECT 1", "SELECT 1"),
    ("ALTER SYSTEM", ""),
    ("ALTER SYSTEM REBOOT", "REBOOT"),
    ("ALTER SYSTEM SIMULATE PERCENT DISK FAILURE FOR INTERVAL 1 SECOND", "PERCENT DISK FAILURE FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 DISK FAILURE FOR INTERVAL 1 SECOND", "DISK FAILURE FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT READ FAILURE FOR INTERVAL 1 SECOND", "FAILURE FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT READ REPLICA FAILURE TO replica2 FOR INTERVAL 1 SECOND",
     "replica2 FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT READ REPLICA FAILURE", ""),
    ("ALTER SYSTEM SIMULATE 5 PERCENT READ REPLICA FAILURE FOR 1 SECOND", "1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE FOR INTERVAL 1 FORTNIGHT", "FORTNIGHT"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE FOR INTERVAL SECOND", "SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE IN 3 FOR INTERVAL 1 SECOND", "3 FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE IN DISK FOR INTERVAL 1 SECOND", "FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE IN NODE 1.5 FOR INTERVAL 1 SECOND", "1.5 FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE IN NODE -1 FOR INTERVAL 1 SECOND", "-1 FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION FOR INTERVAL 1 SECOND", "FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN 1 AND 2 FOR INTERVAL 1 SECOND",
     "FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN 1 OR 2 MILLISECONDS FOR INTERVAL 1 SECOND",
     "OR 2 MILLISECONDS FOR INTERVAL 1 SECOND"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN 1 AND 2 SECONDS FOR INTERVAL 1 SECOND",
     "SECONDS FOR INTERVAL 1 SECOND"),
    ("SHOW VOLUME", ""),
    ("SHOW VOLUME STATUS LIKE 'x'", "LIKE 'x'"),
])
def test_syntax_errors_are_mysql_1064_near_the_offending_text(sql: str, near: str) -> None:
    with pytest.raises(MySqlError) as err:
        parse(sql)
    assert (err.value.code, err.value.sqlstate) == (ER_PARSE_ERROR, "42000")
    assert err.value.message == ("You have an error in your SQL syntax; check the manual that corresponds to your "
                                 f"MySQL server version for the right syntax to use near '{near}' at line 1")


def test_the_syntax_error_names_the_line_and_quotes_80_characters_at_most() -> None:
    tail = "x" * 100
    with pytest.raises(MySqlError) as err:
        parse(f"ALTER SYSTEM\nSIMULATE\n5 PERCENT BOGUS {tail}")
    assert err.value.message.endswith(f"near '{('BOGUS ' + tail)[:80]}' at line 3")


@pytest.mark.parametrize("sql,words", [
    ("ALTER SYSTEM SIMULATE 101 PERCENT DISK FAILURE FOR INTERVAL 1 SECOND", "between 0 and 100 (got 101)"),
    ("ALTER SYSTEM SIMULATE -1 PERCENT READ REPLICA FAILURE FOR INTERVAL 1 SECOND", "between 0 and 100 (got -1)"),
    ("ALTER SYSTEM SIMULATE 100.5 PERCENT DISK CONGESTION BETWEEN 1 AND 2 MILLISECONDS FOR INTERVAL 1 SECOND",
     "between 0 and 100 (got 100.5)"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN 20 AND 10 MILLISECONDS FOR INTERVAL 1 SECOND",
     "maximum congestion delay (10 MILLISECONDS) is below the minimum (20 MILLISECONDS)"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK CONGESTION BETWEEN -5 AND 10 MILLISECONDS FOR INTERVAL 1 SECOND",
     "cannot be negative"),
    ("ALTER SYSTEM SIMULATE 5 PERCENT DISK FAILURE FOR INTERVAL -3 SECOND", "interval cannot be negative"),
])
def test_out_of_range_arguments_are_error_1210(sql: str, words: str) -> None:
    with pytest.raises(MySqlError) as err:
        parse(sql)
    assert (err.value.code, err.value.sqlstate) == (ER_WRONG_ARGUMENTS, "HY000")
    assert err.value.message.startswith("Incorrect arguments to ALTER SYSTEM SIMULATE: ")
    assert words in err.value.message


def test_access_denied_is_mysql_1227() -> None:
    error = access_denied()
    assert (error.code, error.sqlstate) == (1227, "42000")
    assert error.message.startswith("Access denied; you need (at least one of) the ")
