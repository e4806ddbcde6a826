"""The engine contract in engines/base.py: what an engine must implement says so by name, and the
operations no engine supports yet refuse clearly, naming the Aurora engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness.emulator.engines.base import BaseBackup, EngineCluster, EngineOperationUnsupported
from harness.emulator.engines.mariadb import MariaDbCluster
from harness.emulator.engines.postgres import PgCluster


class BareEngine(EngineCluster):
    """An engine that implements nothing: the base's own answers."""

    aurora_engine: ClassVar[str] = "aurora-mysql"


def bare(cls: type[EngineCluster] = BareEngine) -> EngineCluster:
    return cls.__new__(cls)  # no processes, no files: only the contract's answers are called


@pytest.mark.parametrize(("call", "method"), [
    (lambda e: e.start_first_writer(None, "master", "pw", None), "start_first_writer"),
    (lambda e: e.add_reader(None), "add_reader"),
    (lambda e: e.set_master_password("master", "pw"), "set_master_password"),
    (lambda e: e.restart(None, as_writer=True), "restart"),
    (lambda e: e.remove(None, keep_as_volume=False), "remove"),
    (lambda e: e.fence(None), "fence"),
    (lambda e: e.promote(None), "promote"),
    (lambda e: e.follow(None, "0/0"), "follow"),
    (lambda e: e.rejoin(None), "rejoin"),
    (lambda e: e.write_position(), "write_position"),
    (lambda e: e.replication_snapshot(), "replication_snapshot"),
    (lambda e: e.end_client_sessions(None), "end_client_sessions"),
])
def test_a_role_an_engine_does_not_implement_is_named(call: Any, method: str) -> None:
    with pytest.raises(NotImplementedError, match=rf"BareEngine must implement EngineCluster\.{method}\(\)") as info:
        call(bare())
    assert not isinstance(info.value, EngineOperationUnsupported)


NEXT_CAPABILITIES = [  # (method, how it is called, the operation its refusal names)
    ("base_backup", lambda e, p: e.base_backup(p), "taking a base backup"),
    ("restorable_until", lambda e, p: e.restorable_until(), "point-in-time restore"),
    ("restore_volume", lambda e, p: e.restore_volume(e, BaseBackup(p, "0/0", datetime.now(UTC), datetime.now(UTC)),
                                                     datetime.now(UTC)), "point-in-time restore"),
    ("rewind", lambda e, p: e.rewind(BaseBackup(p, "0/0", datetime.now(UTC), datetime.now(UTC)), datetime.now(UTC)),
     "Backtrack"),
    ("replicate_to", lambda e, p: e.replicate_to(e, "127.42.1.200"), "cross-cluster replication"),
    ("stop_replicating", lambda e, p: e.stop_replicating(), "cross-cluster replication"),
]
ENGINES = [(PgCluster, "aurora-postgresql"), (MariaDbCluster, "aurora-mysql")]


@pytest.mark.parametrize(("engine", "name", "call", "operation"), [
    (engine, name, call, operation) for engine, name in ENGINES for method, call, operation in NEXT_CAPABILITIES
    if getattr(engine, method) is getattr(EngineCluster, method)  # the ones this engine does not have yet
])
def test_the_next_capabilities_refuse_clearly_until_an_engine_has_them(
        tmp_path: Path, call: Any, operation: str, engine: type[EngineCluster], name: str) -> None:
    with pytest.raises(EngineOperationUnsupported) as info:
        call(bare(engine), tmp_path)
    assert str(info.value) == f"{operation} is not supported by the {name} engine of this emulator yet"
    assert isinstance(info.value, NotImplementedError)


def test_both_engines_implement_every_role() -> None:
    roles = ["start_first_writer", "add_reader", "set_master_password", "restart", "remove", "fence", "promote",
             "follow", "rejoin", "write_position", "replication_snapshot", "end_client_sessions"]
    for engine in (PgCluster, MariaDbCluster):
        missing = [role for role in roles if getattr(engine, role) is getattr(EngineCluster, role)]
        assert missing == [], f"{engine.__name__} does not implement {missing}"


def test_both_engines_have_continuous_backup_and_point_in_time_restore() -> None:
    for engine in (PgCluster, MariaDbCluster):
        for method in ("base_backup", "restorable_until", "restore_volume", "prune_continuous_backup"):
            assert getattr(engine, method) is not getattr(EngineCluster, method), (engine.__name__, method)


GLOBAL_DATABASE = ["start_replica_head", "fence_writes", "unfence_writes", "replica_positions", "stop_replicating",
                   "demote_to_replica", "rebuild_replica"]


def test_global_database_replication_refuses_clearly_on_an_engine_without_it() -> None:
    engine = bare()
    for call in (lambda: engine.start_replica_head(None, engine, "127.42.1.90"), engine.fence_writes,
                 engine.unfence_writes, engine.replica_positions,
                 lambda: engine.demote_to_replica(engine, "127.42.1.90"),
                 lambda: engine.rebuild_replica(engine, "127.42.1.90")):
        with pytest.raises(EngineOperationUnsupported, match="Global Database replication is not supported by the "
                                                             "aurora-mysql engine of this emulator yet"):
            call()
    assert engine.finish_history() is None  # engines that keep the fenced writer running need nothing more
    engine.stop_volume()
    engine.show_global_db_rpo(20)


def test_both_engines_replicate_a_global_database() -> None:
    for engine in (PgCluster, MariaDbCluster):
        missing = [m for m in GLOBAL_DATABASE if getattr(engine, m) is getattr(EngineCluster, m)]
        assert missing == [], f"{engine.__name__} does not implement {missing}"
