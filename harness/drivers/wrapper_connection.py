"""Connections through the AWS Advanced Python Wrapper, for the write probe and the load alike.

One place says how the harness opens an `AwsWrapperConnection` (plugin "failover", over psycopg
for Aurora PostgreSQL or PyMySQL for Aurora MySQL; plugin "gdb_failover" on a global database) and
with which properties, so the probe's child process (`harness.drivers.aws_wrapper`) and the Locust
users (`harness.load.behaviours.WrapperSession`) see the same wrapper.
"""

from __future__ import annotations

import threading
from typing import Any

# The wrapper's properties: short enough to finish a failover on a busy machine within the
# harness's bounds, long enough not to give up early. The failover plugin alone: no
# host_monitoring (EFM), which only matters for silent network failures.
WRAPPER_PROPERTIES: dict[str, Any] = {
    "connect_timeout": 10,
    "failover_timeout_sec": 60,
    "failover_cluster_topology_refresh_rate_sec": 0.5,
    "failover_writer_reconnect_interval_sec": 0.5,
    "failover_reader_connect_timeout_sec": 10,
    "topology_refresh_ms": 2000,
    "auxiliary_query_timeout_sec": 10,
}
PLUGINS = "failover"
GLOBAL_PLUGINS = "gdb_failover"


def properties(instance_pattern: str | None = None, cluster_id: str | None = None, *,
               home_region: str | None = None, global_patterns: str | None = None) -> dict[str, Any]:
    """The wrapper's properties; on the emulator, with the instance-name pattern
    ("?.<id>.<region>.rds.amazonaws.com") its names resolve to, and a topology cache of its own.
    With `global_patterns` (a global database), the global plugin instead (`global_properties`)."""
    wrapper: dict[str, Any] = {**WRAPPER_PROPERTIES, "plugins": PLUGINS}
    if instance_pattern:
        wrapper["cluster_instance_host_pattern"] = instance_pattern
    if cluster_id:
        wrapper["cluster_id"] = cluster_id
    if global_patterns:
        wrapper.update(global_properties(home_region or "", global_patterns))
    return wrapper


def global_properties(home_region: str, global_patterns: str) -> dict[str, Any]:
    """What a global database adds: plugin gdb_failover, which follows the writer across Regions.
    The global writer endpoint's name carries no Region, so the home Region is given (the
    primary's); `global_patterns` is "<region>:?.<domain>,..." (each Region's instance names)."""
    if not home_region:
        raise ValueError("the wrapper's gdb_failover plugin needs its home Region (the primary's)")
    return {"plugins": GLOBAL_PLUGINS, "failover_home_region": home_region,
            "global_cluster_instance_host_patterns": global_patterns}


_pymysql_lock = threading.Lock()
_pymysql_installed = False


def connect(engine: str, *, host: str, port: int, user: str, password: str, database: str,
            wrapper: dict[str, Any], statement_timeout: float, application_name: str) -> Any:
    """An autocommit `AwsWrapperConnection` with the `wrapper` properties (its connect timeout among them)."""
    from aws_advanced_python_wrapper import AwsWrapperConnection

    params: dict[str, Any] = {"host": host, "port": port, "user": user, "password": password}
    if engine == "aurora-mysql":
        import pymysql

        _install_pymysql_hooks(wrapper)
        timeout = max(1.0, float(statement_timeout))
        params.update(database=database, autocommit=True, read_timeout=timeout, write_timeout=timeout)
        target: Any = pymysql.connect
    else:
        import psycopg

        params.update(dbname=database, autocommit=True, application_name=application_name,
                      options=f"-c statement_timeout={int(statement_timeout * 1000)}",
                      keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=5)
        target = psycopg.Connection.connect
    params.update(wrapper)
    return AwsWrapperConnection.connect(target, **params)


def _install_pymysql_hooks(wrapper: dict[str, Any]) -> None:
    """`harness.drivers.wrapper_pymysql`'s hooks are process-wide: install them once."""
    global _pymysql_installed
    from harness.drivers import wrapper_pymysql

    with _pymysql_lock:
        if not _pymysql_installed:
            wrapper_pymysql.install(wrapper)
            _pymysql_installed = True


GEVENT_YIELD_S = 0.01


def cooperate_with_gevent() -> None:
    """Make the wrapper's topology monitor yield to other greenlets on every turn of its loop.

    Under Locust, threads are greenlets. In panic mode (a failover), with a topology refresh
    requested, the wrapper's `ClusterTopologyMonitorImpl._monitor` loops without ever sleeping:
    with OS threads that only burns a core, but a greenlet that never yields freezes the whole
    Locust process (every user, the stats, the stop command). One short cooperative sleep per
    turn (patched `time.sleep`) keeps the monitor's behaviour and lets the rest run.
    """
    import time

    from aws_advanced_python_wrapper.cluster_topology_monitor import ClusterTopologyMonitorImpl

    delay = getattr(ClusterTopologyMonitorImpl, "_delay", None)
    if delay is None:
        raise RuntimeError("aws-advanced-python-wrapper changed: ClusterTopologyMonitorImpl._delay is gone, and "
                           "its monitor loop would freeze Locust's gevent loop; check harness.drivers."
                           "wrapper_connection.cooperate_with_gevent against the installed version")
    if getattr(delay, "cooperative", False):
        return

    def cooperative_delay(self: Any, use_high_refresh_rate: bool) -> None:
        delay(self, use_high_refresh_rate)
        time.sleep(GEVENT_YIELD_S)

    cooperative_delay.cooperative = True  # type: ignore[attr-defined]
    ClusterTopologyMonitorImpl._delay = cooperative_delay  # type: ignore[method-assign]


def release() -> None:
    """Stop the wrapper's monitors, as its docs ask an application to do before it exits.

    Without this a process can hang at exit: after a failover the topology monitor keeps host
    monitors running in a thread pool, and Python joins every pool's threads at exit, which only
    stop when the monitor is released (a Locust process then outlived its orderly stop)."""
    from aws_advanced_python_wrapper import release_resources

    release_resources()
