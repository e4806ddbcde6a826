"""Aurora's SQL surface, engine-neutral: the identity and topology a cluster shows through SQL.

`aurora_version()`, `aurora_db_instance_identifier()`, the role, `aurora_replica_status()` (and
Aurora MySQL's `information_schema.replica_host_status`) and `aurora_show_volume_status()` /
`SHOW VOLUME STATUS` are answered here from the live models and the engines, in-process or over
the emulator's control API (the `aurora_surface` action the engines' SQL calls). One
`AuroraSurface` per cluster runtime, as `runtime.surface`.

Volume geometry (`volume_status()`): `nodes` is the six storage nodes (two per AZ: sn_a1,
sn_a2, sn_b1, sn_b2, sn_c1, sn_c2 in that order, node index 0..5). The volume is cut into
10 GiB protection groups, each stored as six copies, one per storage node; `disks` counts those
copies (6 per protection group, at least one group), and disk index `i` is copy `i % 6` of
protection group `i // 6`, held by storage node `i % 6`. A disk fault therefore acts on one
storage node, like a node fault; the emulator replicates one WAL stream to every node, so it
cannot spare the node's other protection groups (exact while the volume is under 10 GiB).

Replica lag is Aurora's: how long ago the writer first had a change the reader has not applied
(`LagClock`), timed on the writer's log position, which a sampler thread reads from the engine
once the surface is first asked (or a replica failure starts).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.emulator.fabric import FabricError
from harness.emulator.fault_injection import FaultInjectionError, member
from harness.emulator.replication import (
    MASTER_SESSION_ID,
    ReaderPosition,
    ReplicaStatus,
    ReplicationSnapshot,
    VolumeStatus,
)

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineInstance
    from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")

SURFACE_PARTS = ("version", "instance_identifier", "role", "replica_status", "volume_status")
# Aurora's global views, asked for by name only (they read every Region of a global database).
GLOBAL_PARTS = ("global_db_status", "global_db_instance_status")
# Blue/Green's switchover metadata (`get_blue_green_fast_switchover_metadata()`, `mysql.rds_topology`),
# asked for by name only.
BLUE_GREEN_PART = "blue_green_metadata"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NODES_PER_PROTECTION_GROUP = 6
PROTECTION_GROUP_BYTES = 10 * 1024**3
LAG_SAMPLE_INTERVAL_S = 0.025
LAG_SAMPLES_KEPT = 100_000  # writer positions (only changes are kept): long enough for any fault interval
_SESSION_NAMESPACE = uuid.UUID("5d0a4a8e-5b8e-4f39-9c1e-6a0d3c2b9f71")


def aurora_version(engine_version: str) -> str:
    """What `aurora_version()` answers: '15.10' -> '15.10.0'; Aurora MySQL's '8.0.mysql_aurora.3.05.2' -> '3.05.2'."""
    version = engine_version.rsplit("mysql_aurora.", 1)[-1]
    return version if version.count(".") >= 2 else f"{version}.0"


class LagClock:
    """Replica lag as Aurora means it: how long ago the writer first had a change the reader has not applied.

    The writer's log position is sampled over time; a reader's lag is the age of the first
    sample beyond what it has replayed (0 once it has replayed everything the writer had).
    """

    def __init__(self, maxlen: int = LAG_SAMPLES_KEPT):
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def observe(self, position: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._samples and position <= self._samples[-1][1]:
                return
            self._samples.append((now, position))

    def lag_seconds(self, replayed: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            for at, position in self._samples:
                if position > replayed:
                    return max(0.0, now - at)
        return 0.0

    def forget_before(self, replayed: int) -> None:
        """Drop samples every reader has passed (keeps the deque short)."""
        with self._lock:
            while len(self._samples) > 1 and self._samples[1][1] <= replayed:
                self._samples.popleft()

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()


# The first releases that serve Blue/Green switchover metadata (the AWS Advanced Python Wrapper's README:
# Aurora PostgreSQL 17.5, 16.9, 15.13, 14.18, 13.21; Aurora MySQL 3.07).
BLUE_GREEN_METADATA_SINCE = {"aurora-postgresql": (15, 13), "aurora-mysql": (3, 7)}


def has_blue_green_metadata(engine: str, version: str) -> bool:
    """Does this engine version serve `get_blue_green_fast_switchover_metadata()` / `mysql.rds_topology`?"""
    try:
        if engine == "aurora-mysql":  # 8.0.mysql_aurora.3.08.0
            major, minor = (int(x) for x in version.split("mysql_aurora.", 1)[1].split(".")[:2])
        else:
            major, minor = (int(x) for x in version.split(".")[:2])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= BLUE_GREEN_METADATA_SINCE.get(engine, (999, 0))


class AuroraSurface:
    """One cluster's identity, topology and volume as Aurora's SQL functions show them."""

    def __init__(self, runtime: ClusterRuntime):
        self.runtime = runtime
        self.lag = LagClock()
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None
        self._closed = threading.Event()
        self._rates: dict[tuple[str, str], tuple[float, float]] = {}  # (what, instance) -> (time, counter)

    # --- the answer to the `aurora_surface` control action --------------------------------------------------
    def surface(self, instance: str, parts: list[str] | None = None) -> dict[str, Any]:
        """Aurora's identity and topology as seen from `instance`."""
        wanted = list(parts) if parts else list(SURFACE_PARTS)
        unknown = set(wanted) - set(SURFACE_PARTS) - set(GLOBAL_PARTS) - {BLUE_GREEN_PART}
        if unknown:
            raise FaultInjectionError(f"unknown surface part(s) {', '.join(sorted(unknown))}; "
                                      f"the parts are {', '.join(SURFACE_PARTS + GLOBAL_PARTS)}, {BLUE_GREEN_PART}")
        cluster = self.runtime.cluster
        me = member(cluster, instance)
        answer: dict[str, Any] = {}
        if "version" in wanted:
            answer["version"] = aurora_version(cluster.engine_version)
        if "instance_identifier" in wanted:
            answer["instance_identifier"] = me.identifier
        if "role" in wanted:
            answer["role"] = "writer" if me.identifier == cluster.writer_id else "reader"
        if "replica_status" in wanted:
            answer["replica_status"] = [row.to_json() for row in self.replica_status(me.identifier)]
        if "volume_status" in wanted:
            answer["volume_status"] = asdict(self.volume_status())
        for part in GLOBAL_PARTS:
            if part in wanted:
                answer[part] = self.global_rows(part, me.identifier)
        if BLUE_GREEN_PART in wanted:  # None: this engine version has no such metadata
            view = self.runtime.blue_green_view
            answer[BLUE_GREEN_PART] = None if not has_blue_green_metadata(cluster.engine, cluster.engine_version) \
                else view() if view is not None else []
        return answer

    # --- Aurora's global views ----------------------------------------------------------------------------------
    def global_rows(self, part: str, instance: str) -> list[dict[str, Any]]:
        """`aurora_global_db_status()` (one row per Region) or `aurora_global_db_instance_status()` (one
        per instance): the global database's when the cluster is in one, else this cluster alone."""
        if self.runtime.global_view is not None:
            return self.runtime.global_view(part, instance)
        region = self.runtime.cluster.region
        if part == "global_db_status":
            return [{"aws_region": region, "highest_lsn_written": self.runtime.engine.write_position(),
                     "durability_lag_in_msec": -1, "rpo_lag_in_msec": -1,
                     "last_lag_calculation_time": EPOCH.isoformat(), "feedback_epoch": None, "feedback_xmin": None}]
        return [{"server_id": row.server_id, "session_id": row.session_id, "aws_region": region,
                 "durable_lsn": row.durable_lsn, "highest_lsn_rcvd": row.highest_lsn_rcvd,
                 "feedback_epoch": row.feedback_epoch, "feedback_xmin": row.feedback_xmin,
                 "oldest_read_view_lsn": row.oldest_read_view_lsn,
                 "visibility_lag_in_msec": 0 if row.is_writer else (
                     None if row.replica_lag_in_msec is None else int(round(row.replica_lag_in_msec)))}
                for row in self.replica_status(instance)]

    # --- the cluster volume ------------------------------------------------------------------------------------
    def storage_nodes(self) -> list[str]:
        """The cluster volume's storage nodes in index order (empty when the engine has none)."""
        return [link.split(":", 1)[1] for link in self.runtime.engine.link_names() if link.startswith("storage:")]

    def volume_status(self) -> VolumeStatus:
        """Disks (protection-group copies) and storage nodes; see the module docstring for the mapping."""
        nodes = len(self.storage_nodes())
        if nodes == 0:
            return VolumeStatus(disks=0, nodes=0)
        groups = max(1, math.ceil(self._volume_bytes() / PROTECTION_GROUP_BYTES))
        return VolumeStatus(disks=groups * nodes, nodes=nodes)

    def _volume_bytes(self) -> int:
        writer_id = self.runtime.cluster.writer_id
        engine_instance = self.runtime.engine.instances.get(writer_id or "")
        if engine_instance is None:
            return 0
        total = 0
        for root, _, files in os.walk(engine_instance.data_dir):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    pass
        return total

    # --- topology -------------------------------------------------------------------------------------------
    def replica_status(self, connected: str | None = None) -> list[ReplicaStatus]:
        """`aurora_replica_status()` from the live topology; `connected` gets a NULL last_update_timestamp
        (as on Aurora PostgreSQL 13.9 and later)."""
        self.start_lag_clock()
        cluster, engine = self.runtime.cluster, self.runtime.engine
        snapshot = ReplicationSnapshot()
        try:
            snapshot = engine.replication_snapshot(self.lag.observe)
        except Exception:
            log.exception("replication snapshot of %s failed", cluster.identifier)
        now_wall, now = datetime.now(UTC), time.monotonic()
        rows = []
        for instance in list(cluster.instances.values()):
            engine_instance = engine.instances.get(instance.identifier)
            if engine_instance is None or not engine.alive(engine_instance) or instance.status in (
                    "creating", "deleting", "failed", "inaccessible"):
                continue
            common: dict[str, Any] = {
                "server_id": instance.identifier,
                "last_update_timestamp": None if instance.identifier == connected else now_wall,
                "cpu": self._cpu_percent(instance.identifier, engine_instance), "durable_lsn": snapshot.durable}
            if instance.identifier == cluster.writer_id:
                rows.append(ReplicaStatus(session_id=MASTER_SESSION_ID, active_txns=snapshot.active_txns,
                                          log_buffer_sequence_number=snapshot.written, **common))
                continue
            position = snapshot.readers.get(instance.identifier, ReaderPosition())
            lag_ms = None
            if position.applied is not None:
                lag_ms = round(self.lag.lag_seconds(position.applied, now) * 1000.0, 3)
            rows.append(ReplicaStatus(
                session_id=str(uuid.uuid5(_SESSION_NAMESPACE, f"{instance.resource_id}/{engine_instance.child.pid}")),
                highest_lsn_rcvd=position.received, current_read_lsn=position.replayed,
                cur_replay_latency_in_usec=position.replay_latency_us, active_txns=0,
                feedback_xmin=position.feedback_xmin, feedback_epoch=0 if position.feedback_xmin is not None else None,
                replica_lag_in_msec=lag_ms, oldest_read_view_lsn=position.replayed,
                log_stream_speed_in_kib_per_second=self._link_speed(instance.identifier), **common))
        applied = [p.applied for p in snapshot.readers.values() if p.applied is not None]
        if applied and len(applied) == len(cluster.instances) - 1:
            self.lag.forget_before(min(applied))
        return rows

    # --- the lag clock's sampler --------------------------------------------------------------------------------
    def start_lag_clock(self) -> None:
        """Start sampling the writer's log position (for replica lag) on first use."""
        with self._lock:
            if self._sampler is None and not self._closed.is_set():
                self._sampler = threading.Thread(target=self._sample, daemon=True,
                                                 name=f"lag clock {self.runtime.cluster.identifier}")
                self._sampler.start()

    def _sample(self) -> None:
        while not self._closed.wait(LAG_SAMPLE_INTERVAL_S):
            if self.runtime.deleted:
                return
            try:
                position = self.runtime.engine.write_position()
            except Exception:
                position = None
            if position is not None:
                self.lag.observe(position)

    def writer_changed(self) -> None:
        """A failover: the new writer's log positions start a new clock."""
        self.lag.reset()

    def close(self) -> None:
        self._closed.set()

    # --- CPU and stream figures -------------------------------------------------------------------------------
    def _rate(self, what: str, identifier: str, counter: float) -> float:
        """Per-second rate of a growing counter between two calls (0 on the first)."""
        now = time.monotonic()
        previous = self._rates.get((what, identifier))
        self._rates[(what, identifier)] = (now, counter)
        if previous is None or now <= previous[0] or counter < previous[1]:
            return 0.0
        return (counter - previous[1]) / (now - previous[0])

    def _cpu_percent(self, identifier: str, engine_instance: EngineInstance) -> float:
        """CPU used by the instance's engine (its process and children) since the previous call, in
        percent of the machine (0 to 100, as Aurora reports an instance's CPU utilization)."""
        child = engine_instance.child
        if child is None:
            return 0.0
        ticks = _process_tree_ticks(child.pid)
        if ticks is None:
            return 0.0
        busy = self._rate("cpu", f"{identifier}/{child.pid}", ticks / os.sysconf("SC_CLK_TCK")) / (os.cpu_count() or 1)
        return round(min(busy, 1.0) * 100.0, 1)

    def _link_speed(self, reader: str) -> float | None:
        """KiB/s the writer sent the reader over its replication link since the previous call."""
        try:
            listener = self.runtime.engine.link_listener(f"reader:{reader}")
            stats = self.runtime.fabric.stats(listener)[0]
        except (KeyError, FabricError, IndexError):
            return None
        return round(self._rate("stream", reader, stats["bytes_down"]) / 1024.0, 3)


def _process_tree_ticks(pid: int) -> int | None:
    """utime + stime of a process and its direct children (a postmaster and its backends)."""
    def ticks(p: int) -> int:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0
        return int(fields[11]) + int(fields[12])

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return ticks(pid) + sum(ticks(int(c)) for c in children)


__all__ = ["GLOBAL_PARTS", "SURFACE_PARTS", "AuroraSurface", "LagClock", "aurora_version"]
