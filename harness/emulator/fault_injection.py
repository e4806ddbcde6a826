"""Aurora's fault-injection queries, engine-neutral: what each fault really does to a cluster.

Aurora PostgreSQL's `aurora_inject_*()` functions and Aurora MySQL's `ALTER SYSTEM CRASH` /
`ALTER SYSTEM SIMULATE ...` statements ask for the same five things; each engine parses its
own grammar and formats errors in its own style, and both land here (in-process, or over the
emulator's control API as the `inject` and `aurora_surface` actions). Every fault has a real
effect on real processes and network links, never a cosmetic one:

| fault | effect in the emulator |
|---|---|
| crash `instance` | the instance's engine process is killed (SIGKILL) and restarted in place, with crash recovery; no failover; its sessions are lost |
| crash `dispatcher` | every client connection to the instance is reset (at the endpoints) and its client sessions are ended; the engine process keeps running |
| crash `node` | both of the above, and the engine restarts cold: its data files are evicted from the OS page cache |
| replica failure | the writer→reader replication link is held (buffered, never dropped) `percent`% of each second for the interval, so the reader's lag really grows and it catches up afterwards |
| disk failure | the chosen storage nodes stop acknowledging (their links are held) `percent`% of each second; writes stall only while the 4-of-6 write quorum is lost |
| disk congestion | `percent`% of the acknowledgements from the chosen storage nodes are delayed by a random time in [min, max] ms; with three or more nodes congested the quorum's fourth acknowledgement is late, so commits really slow down |

Volume geometry (`volume_status()`): `nodes` is the six storage nodes (two per AZ: sn_a1,
sn_a2, sn_b1, sn_b2, sn_c1, sn_c2 in that order, node index 0..5). The volume is cut into
10 GiB protection groups, each stored as six copies, one per storage node; `disks` counts those
copies (6 per protection group, at least one group), and disk index `i` is copy `i % 6` of
protection group `i // 6`, held by storage node `i % 6`. A disk fault therefore acts on one
storage node, like a node fault; the emulator replicates one WAL stream to every node, so it
cannot spare the node's other protection groups (exact while the volume is under 10 GiB).

Timed faults end on their own when their interval ends. A replica failure is the writer's
doing, so it also ends when the instance that injected it restarts or the writer changes
(failover); storage faults belong to the volume and run their course.

Replica failure from a reader: on Aurora the query goes to the writer; in the emulator a
reader may run it too, and it then acts on that reader's own replication only (the replica
name must be empty or the reader's own identifier).

Engines take part through a few optional methods (duck-typed, so MariaDB can add its own):
`write_position()` and `replication_snapshot()` for `replica_status()`, `end_client_sessions()`
for the dispatcher crash and `drop_caches()` for the node crash. Disk faults need storage links
(`storage:<node>` in `engine.link_names()`); engines without them raise `UnsupportedFault`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.emulator.fabric import FabricError

if TYPE_CHECKING:
    from harness.emulator.models import DBInstance
    from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")

CRASH_KINDS = ("instance", "dispatcher", "node")
FAULT_TYPES = ("crash", "replica_failure", "disk_failure", "disk_congestion")
SURFACE_PARTS = ("version", "instance_identifier", "role", "replica_status", "volume_status")
NODES_PER_PROTECTION_GROUP = 6
PROTECTION_GROUP_BYTES = 10 * 1024**3
STALL_PERIOD_MS = 1000.0  # a partial failure holds a link percent% of every second
CONGESTION_MAX_MS = 100.0  # Aurora PostgreSQL's documented range for the congestion delay
CRASH_DELAY_S = 0.05  # lets the answer leave the emulator before the crash
LAG_SAMPLE_INTERVAL_S = 0.025
LAG_SAMPLES_KEPT = 100_000  # writer positions (only changes are kept): long enough for any fault interval
MASTER_SESSION_ID = "MASTER_SESSION_ID"
_SESSION_NAMESPACE = uuid.UUID("5d0a4a8e-5b8e-4f39-9c1e-6a0d3c2b9f71")


class FaultInjectionError(ValueError):
    """A fault-injection request to refuse; each engine words and codes it its own way.

    `reason` names the kind of mistake in PostgreSQL's condition names, so PostgreSQL can
    use the matching SQLSTATE and MySQL its own error number.
    """

    reason = "invalid_parameter_value"

    def __init__(self, message: str, *, reason: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if reason is not None:
            self.reason = reason


class UnsupportedFault(FaultInjectionError):
    """The engine's cluster volume cannot take this fault (e.g. disk faults without storage nodes)."""

    reason = "feature_not_supported"


# --- the answers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumeStatus:
    """`aurora_show_volume_status()` / `SHOW VOLUME STATUS`: index ranges for disk and node faults."""

    disks: int
    nodes: int


@dataclass(frozen=True)
class ReplicaStatus:
    """One row of `aurora_replica_status()` (and what `information_schema.replica_host_status` needs).

    LSNs are byte positions in the writer's log (PostgreSQL's LSN as an integer); None is SQL NULL.
    """

    server_id: str
    session_id: str
    durable_lsn: int | None = None
    highest_lsn_rcvd: int | None = None
    current_read_lsn: int | None = None
    cur_replay_latency_in_usec: int | None = None
    active_txns: int | None = None
    is_current: bool | None = None
    last_transport_error: int = 0
    last_error_timestamp: datetime | None = None
    last_update_timestamp: datetime | None = None
    feedback_xmin: int | None = None
    feedback_epoch: int | None = None
    replica_lag_in_msec: float | None = None
    log_stream_speed_in_kib_per_second: float | None = None
    log_buffer_sequence_number: int | None = None
    oldest_read_view_trx_id: int | None = None
    oldest_read_view_lsn: int | None = None
    pending_read_ios: int = 0
    read_ios: int = 0
    iops: int = 0
    cpu: float = 0.0

    @property
    def is_writer(self) -> bool:
        return self.session_id == MASTER_SESSION_ID

    def to_json(self) -> dict[str, Any]:
        """JSON-able: timestamps as ISO 8601 strings."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ReaderPosition:
    """Where one reader stands, as its engine reports it."""

    received: int | None = None  # highest log position received from the writer
    replayed: int | None = None  # highest log position applied (visible to its sessions)
    replay_latency_us: int | None = None
    feedback_xmin: int | None = None
    applied_all_received: bool = False  # idle: nothing received is still waiting to be applied

    @property
    def applied(self) -> int | None:
        """How far the reader is current, for replica lag."""
        if self.applied_all_received and self.received is not None:
            return max(self.received, self.replayed or 0)
        return self.replayed


@dataclass(frozen=True)
class ReplicationSnapshot:
    """What the engine says about replication right now (engines implement `replication_snapshot()`)."""

    durable: int | None = None  # acknowledged by the cluster volume's write quorum
    written: int | None = None  # the writer's own log end
    active_txns: int | None = None
    readers: Mapping[str, ReaderPosition] = field(default_factory=dict)


@dataclass
class InjectedFault:
    """A timed fault in effect: which toxics on which fabric listeners, until when."""

    id: str
    kind: str  # replica_failure | disk_failure | disk_congestion
    origin: str  # the instance the query ran on
    description: str
    toxics: list[tuple[str, str]]  # (listener, toxic name)
    seconds: float
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ends_at: float = 0.0  # time.monotonic()
    timer: threading.Timer | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "origin": self.origin, "description": self.description,
                "links": sorted({listener for listener, _ in self.toxics}), "seconds": self.seconds,
                "started": self.started.isoformat(), "remaining": max(0.0, self.ends_at - time.monotonic())}


# --- validation (shared wording; each engine adds its own style) -------------------------------------------
def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise FaultInjectionError(f"{what} must be a number (got {value!r})")
    return float(value)


def check_percent(value: Any) -> float:
    percent = _number(value, "the percentage of failure")
    if not 0.0 <= percent <= 100.0:
        raise FaultInjectionError(f"percentage of failure {percent:g} is out of range: it must be between 0 and 100",
                                  hint="Give the percentage of requests to fail, from 0 to 100.")
    return percent


def check_interval(value: Any) -> float:
    seconds = _number(value, "the time interval")
    if not 0 < seconds < math.inf:
        raise FaultInjectionError(f"time interval must be greater than 0 seconds (got {seconds:g})",
                                  hint="Give how long the failure lasts, in seconds.")
    return seconds


def check_crash_kind(value: Any) -> str:
    kind = value.strip().lower() if isinstance(value, str) else None
    if kind not in CRASH_KINDS:
        shown = "NULL" if value is None else f'"{value}"'
        raise FaultInjectionError(f"unknown crash type {shown}: the crash type must be 'instance', 'dispatcher' "
                                  f"or 'node'", hint="The crash type is not case sensitive.")
    return kind


def check_index(value: Any, is_disk: bool, volume: VolumeStatus) -> int:
    what = "disk" if is_disk else "node"
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise FaultInjectionError(f"the {what} index must be a whole number (got {value!r})")
    maximum = (volume.disks if is_disk else volume.nodes) - 1
    if value < 0:
        raise FaultInjectionError(f"{what} index {value} is out of range: the minimum index is 0",
                                  hint="aurora_show_volume_status() / SHOW VOLUME STATUS give the index ranges.")
    if value > maximum:
        raise FaultInjectionError(f"{what} index {value} is out of range: the maximum index is {maximum}",
                                  hint="aurora_show_volume_status() / SHOW VOLUME STATUS give the index ranges.")
    return value


def check_congestion(min_ms: Any, max_ms: Any) -> tuple[float, float]:
    low = _number(min_ms, "the minimum congestion delay")
    high = _number(max_ms, "the maximum congestion delay")
    for name, value in (("minimum", low), ("maximum", high)):
        if not 0.0 <= value <= CONGESTION_MAX_MS:
            raise FaultInjectionError(f"{name} congestion delay {value:g} ms is out of range: it must be between "
                                      f"0.0 and {CONGESTION_MAX_MS:.1f} milliseconds")
    if high <= low:
        raise FaultInjectionError(f"maximum congestion delay {high:g} ms must be greater than the minimum "
                                  f"congestion delay {low:g} ms")
    return low, high


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise FaultInjectionError(f"{what} must be true or false (got {value!r})")
    return value


def aurora_version(engine_version: str) -> str:
    """What `aurora_version()` answers: '15.10' -> '15.10.0'; Aurora MySQL's '8.0.mysql_aurora.3.05.2' -> '3.05.2'."""
    version = engine_version.rsplit("mysql_aurora.", 1)[-1]
    return version if version.count(".") >= 2 else f"{version}.0"


# --- the lag clock ---------------------------------------------------------------------------------------------
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


# --- the faults ----------------------------------------------------------------------------------------------------
class FaultInjection:
    """One cluster's fault-injection state and effects (one per ClusterRuntime, as `runtime.faults`)."""

    def __init__(self, runtime: ClusterRuntime):
        self.runtime = runtime
        self._lock = threading.RLock()
        self._faults: dict[str, InjectedFault] = {}
        self._ids = itertools.count(1)
        self.lag = LagClock()
        self._sampler: threading.Thread | None = None
        self._closed = threading.Event()
        self._rates: dict[tuple[str, str], tuple[float, float]] = {}  # (what, instance) -> (time, counter)

    # --- plumbing --------------------------------------------------------------------------------------------
    @property
    def engine(self) -> Any:
        return self.runtime.engine

    @property
    def fabric(self) -> Any:
        return self.runtime.fabric

    def _instance(self, identifier: str) -> DBInstance:
        instance = self.runtime.cluster.instances.get((identifier or "").lower())
        if instance is None:
            raise FaultInjectionError(f"DB instance {identifier!r} is not a member of DB cluster "
                                      f"{self.runtime.cluster.identifier}", reason="undefined_object")
        return instance

    def storage_nodes(self) -> list[str]:
        """The cluster volume's storage nodes in index order (empty when the engine has none)."""
        return [link.split(":", 1)[1] for link in self.engine.link_names() if link.startswith("storage:")]

    # --- the JSON form (the `inject` control action and the engines' SQL) ---------------------------------------
    def apply(self, instance: str, fault: Mapping[str, Any]) -> dict[str, Any]:
        """Inject `fault` as if its query ran on `instance`; returns {"message", "fault"}.

        `fault` is {"type": "crash", "kind": "instance|dispatcher|node"},
        {"type": "replica_failure", "percent", "seconds", "replica" ("" or absent = all)},
        {"type": "disk_failure", "percent", "index", "is_disk", "seconds"} or
        {"type": "disk_congestion", "percent", "index", "is_disk", "seconds", "min_ms", "max_ms"}.
        """
        if not isinstance(fault, Mapping):
            raise FaultInjectionError("the fault must be an object with a 'type'")
        kind = fault.get("type")
        allowed = {"crash": {"kind"}, "replica_failure": {"percent", "seconds", "replica"},
                   "disk_failure": {"percent", "index", "is_disk", "seconds"},
                   "disk_congestion": {"percent", "index", "is_disk", "seconds", "min_ms", "max_ms"}}
        if kind not in allowed:
            raise FaultInjectionError(f"unknown fault type {kind!r}; the types are {', '.join(FAULT_TYPES)}")
        extra = set(fault) - allowed[kind] - {"type"}
        if extra:
            raise FaultInjectionError(f"unknown field(s) for a {kind} fault: {', '.join(sorted(extra))}")
        args = {k: v for k, v in fault.items() if k != "type"}
        try:
            if kind == "crash":
                return {"message": self.crash(instance, args.get("kind", "instance")), "fault": None}
            if kind == "replica_failure":
                injected = self.replica_failure(instance, args.get("percent"), args.get("seconds"),
                                                args.get("replica") or None)
            elif kind == "disk_failure":
                injected = self.disk_failure(args.get("percent"), args.get("index"), args.get("is_disk"),
                                             args.get("seconds"), origin=instance)
            else:
                injected = self.disk_congestion(args.get("percent"), args.get("index"), args.get("is_disk"),
                                                args.get("seconds"), args.get("min_ms"), args.get("max_ms"),
                                                origin=instance)
        except TypeError as exc:  # a missing argument
            raise FaultInjectionError(f"incomplete {kind} fault: {exc}") from None
        return {"message": injected.description, "fault": injected.to_json()}

    def surface(self, instance: str, parts: list[str] | None = None) -> dict[str, Any]:
        """Aurora's identity and topology as seen from `instance` (the `aurora_surface` control action)."""
        wanted = list(parts) if parts else list(SURFACE_PARTS)
        unknown = set(wanted) - set(SURFACE_PARTS)
        if unknown:
            raise FaultInjectionError(f"unknown surface part(s) {', '.join(sorted(unknown))}; "
                                      f"the parts are {', '.join(SURFACE_PARTS)}")
        me = self._instance(instance)
        cluster = self.runtime.cluster
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
        return answer

    # --- crashes ------------------------------------------------------------------------------------------------
    def crash(self, instance: str, kind: str = "instance") -> str:
        """Crash `instance` ('instance', 'dispatcher' or 'node'); no failover follows.

        The crash happens just after this returns, so the caller's session gets the answer (or
        dies waiting for it, as a session does on Aurora).
        """
        kind = check_crash_kind(kind)
        target = self._instance(instance)
        if target.status != "available" or self.runtime.cluster.status != "available":
            raise FaultInjectionError(f"DB instance {target.identifier} is {target.status} in a cluster that is "
                                      f"{self.runtime.cluster.status}; crashes are injected into available "
                                      f"instances", reason="object_not_in_prerequisite_state")
        threading.Thread(target=self._crash, args=(target, kind), name=f"crash {target.identifier}",
                         daemon=True).start()
        return f"{kind} crash of {target.identifier} injected"

    def _crash(self, target: DBInstance, kind: str) -> None:
        time.sleep(CRASH_DELAY_S)
        try:
            if kind == "dispatcher":
                self._crash_dispatcher(target)
            else:
                self._restart_in_place(target, cold=kind == "node")
        except Exception:
            log.exception("%s crash of %s failed", kind, target.identifier)

    def _crash_dispatcher(self, target: DBInstance) -> None:
        """The front door fails: connections drop, the engine keeps running (same process)."""
        engine_instance = self.engine.instances[target.identifier]
        dropped = self.fabric.drop(target.identifier)
        end_sessions = getattr(self.engine, "end_client_sessions", None)
        ended = end_sessions(engine_instance) if end_sessions is not None else 0
        log.info("dispatcher crash of %s: %d connection(s) reset, %d session(s) ended", target.identifier,
                 dropped, ended)

    def _restart_in_place(self, target: DBInstance, cold: bool) -> None:
        """Kill the engine and start it again with the same role, as Aurora recovers a crash."""
        from harness.emulator.runtime import INSTANCE_RESTARTED, INSTANCE_SHUTDOWN

        runtime = self.runtime
        with runtime.lock:  # the monitor leaves the instance alone meanwhile (no failover)
            if runtime.deleted or target.identifier not in runtime.cluster.instances:
                return
            is_writer = target.identifier == runtime.cluster.writer_id
            engine_instance = self.engine.instances[target.identifier]
            runtime.instance_event(target, INSTANCE_SHUTDOWN, "availability")
            self.engine.stop(engine_instance, "kill")
            self.fabric.drop(target.identifier)
            drop_caches = getattr(self.engine, "drop_caches", None)
            if cold and drop_caches is not None:
                drop_caches(engine_instance)
            try:
                self.engine.restart(engine_instance, as_writer=is_writer)
            except Exception:
                log.exception("restart of %s after a crash failed", target.identifier)
                target.status = "failed"
                runtime.publish_endpoints()
                return
            runtime.instance_event(target, INSTANCE_RESTARTED, "availability")
            runtime.publish_endpoints()
        self.instance_restarted(target.identifier)

    # --- simulated failures ---------------------------------------------------------------------------------
    def replica_failure(self, instance: str, percent: Any, seconds: Any, replica: str | None = None) -> InjectedFault:
        """Block `percent`% of replication from the writer to `replica` (None: every reader) for `seconds`."""
        percent, seconds = check_percent(percent), check_interval(seconds)
        origin = self._instance(instance)
        cluster = self.runtime.cluster
        wanted = replica.strip().lower() if isinstance(replica, str) and replica.strip() else None
        if origin.identifier == cluster.writer_id:
            readers = [r.identifier for r in cluster.readers]
            if wanted is not None:
                if wanted not in readers:
                    raise FaultInjectionError(
                        f'replica "{replica}" not found: the Aurora Replicas of DB cluster {cluster.identifier} '
                        f"are {', '.join(readers) or 'none'}",
                        hint="SELECT server_id FROM aurora_replica_status() lists them; '' means all replicas.")
                readers = [wanted]
        else:
            if wanted is not None and wanted != origin.identifier:
                raise FaultInjectionError(
                    f'replica "{replica}" cannot be failed from reader {origin.identifier}: a reader can only '
                    f"fail its own replication", hint="Run the query on the writer to fail other replicas.")
            readers = [origin.identifier]
        links = [self.engine.link_listener(f"reader:{r}") for r in readers]
        scope = ", ".join(readers) if wanted or origin.identifier != cluster.writer_id else \
            f"all Aurora Replicas ({', '.join(readers) or 'none'})"
        description = f"{percent:g}% read replica failure to {scope} for {seconds:g} seconds"
        toxic = {"type": "stall", "stream": "downstream",
                 "attributes": {"percent": percent, "period_ms": STALL_PERIOD_MS}}
        self._ensure_sampler()
        return self._inject("replica_failure", origin.identifier, description, links, toxic, seconds)

    def disk_failure(self, percent: Any, index: Any, is_disk: Any, seconds: Any, *,
                     origin: str | None = None) -> InjectedFault:
        """The storage nodes holding `index` stop acknowledging `percent`% of the time for `seconds`."""
        percent, seconds = check_percent(percent), check_interval(seconds)
        nodes = self._storage_targets(index, _flag(is_disk, "is_disk"))
        description = (f"{percent:g}% disk failure in {'disk' if is_disk else 'node'} {index} "
                       f"(storage node {', '.join(nodes)}) for {seconds:g} seconds")
        toxic = {"type": "stall", "stream": "both",
                 "attributes": {"percent": percent, "period_ms": STALL_PERIOD_MS}}
        links = [self.engine.link_listener(f"storage:{n}") for n in nodes]
        return self._inject("disk_failure", origin or "", description, links, toxic, seconds)

    def disk_congestion(self, percent: Any, index: Any, is_disk: Any, seconds: Any, min_ms: Any, max_ms: Any, *,
                        origin: str | None = None) -> InjectedFault:
        """`percent`% of the acknowledgements of the storage nodes holding `index` arrive [min, max] ms late."""
        percent, seconds = check_percent(percent), check_interval(seconds)
        low, high = check_congestion(min_ms, max_ms)
        nodes = self._storage_targets(index, _flag(is_disk, "is_disk"))
        description = (f"{percent:g}% disk congestion of {low:g} to {high:g} ms in "
                       f"{'disk' if is_disk else 'node'} {index} (storage node {', '.join(nodes)}) "
                       f"for {seconds:g} seconds")
        toxic = {"type": "congestion", "stream": "upstream",
                 "attributes": {"percent": percent, "min_ms": low, "max_ms": high}}
        links = [self.engine.link_listener(f"storage:{n}") for n in nodes]
        return self._inject("disk_congestion", origin or "", description, links, toxic, seconds)

    def _storage_targets(self, index: Any, is_disk: bool) -> list[str]:
        nodes = self.storage_nodes()
        if not nodes:
            raise UnsupportedFault(f"disk faults are not supported for DB cluster {self.runtime.cluster.identifier}: "
                                   f"its cluster volume has no storage nodes in the emulator")
        index = check_index(index, is_disk, self.volume_status())
        return [nodes[index % len(nodes)]]

    def _inject(self, kind: str, origin: str, description: str, links: list[str], toxic: dict[str, Any],
                seconds: float) -> InjectedFault:
        with self._lock:
            fault = InjectedFault(f"fi-{next(self._ids)}", kind, origin, description, [], seconds)
            try:
                for listener in links:
                    self.fabric.add_toxic(listener, fault.id, toxic["type"], stream=toxic["stream"],
                                          attributes=toxic["attributes"])
                    fault.toxics.append((listener, fault.id))
            except FabricError:
                self._remove_toxics(fault)
                raise
            fault.ends_at = time.monotonic() + seconds
            fault.timer = threading.Timer(seconds, self._expire, args=(fault.id,))
            fault.timer.daemon = True
            self._faults[fault.id] = fault
            fault.timer.start()
        log.info("%s: %s (%s)", self.runtime.cluster.identifier, description, fault.id)
        return fault

    def _expire(self, fault_id: str) -> None:
        with self._lock:
            fault = self._faults.pop(fault_id, None)
        if fault is not None:
            self._remove_toxics(fault)
            log.info("%s: %s ended", self.runtime.cluster.identifier, fault.description)

    def _remove_toxics(self, fault: InjectedFault) -> None:
        for listener, name in fault.toxics:
            try:
                self.fabric.remove_toxic(listener, name)
            except FabricError:
                pass  # the link went away with its instance

    def active(self) -> list[InjectedFault]:
        with self._lock:
            return list(self._faults.values())

    def clear(self, kinds: tuple[str, ...] | None = None, origin: str | None = None) -> int:
        """End faults early (all, or those of `kinds` / injected from `origin`); returns how many."""
        with self._lock:
            ending = [f for f in self._faults.values()
                      if (kinds is None or f.kind in kinds) and (origin is None or f.origin == origin)]
            for fault in ending:
                self._faults.pop(fault.id, None)
                if fault.timer is not None:
                    fault.timer.cancel()
        for fault in ending:
            self._remove_toxics(fault)
        return len(ending)

    # --- hooks the runtime calls -------------------------------------------------------------------------------
    def writer_changed(self) -> None:
        """A failover: the old writer's replica failures end with it; the log position clock restarts."""
        self.clear(("replica_failure",))
        self.lag.reset()

    def instance_restarted(self, identifier: str) -> None:
        """A reboot or crash: what the instance injected into its own replication is gone."""
        self.clear(("replica_failure",), origin=identifier)

    def close(self) -> None:
        self._closed.set()
        self.clear()

    # --- volume and topology ------------------------------------------------------------------------------------
    def volume_status(self) -> VolumeStatus:
        """Disks (protection-group copies) and storage nodes; see the module docstring for the mapping."""
        nodes = len(self.storage_nodes())
        if nodes == 0:
            return VolumeStatus(disks=0, nodes=0)
        groups = max(1, math.ceil(self._volume_bytes() / PROTECTION_GROUP_BYTES))
        return VolumeStatus(disks=groups * nodes, nodes=nodes)

    def _volume_bytes(self) -> int:
        writer_id = self.runtime.cluster.writer_id
        engine_instance = self.engine.instances.get(writer_id or "")
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

    def replica_status(self, connected: str | None = None) -> list[ReplicaStatus]:
        """`aurora_replica_status()` from the live topology; `connected` gets a NULL last_update_timestamp
        (as on Aurora PostgreSQL 13.9 and later)."""
        self._ensure_sampler()
        cluster = self.runtime.cluster
        snapshot_of = getattr(self.engine, "replication_snapshot", None)
        snapshot = ReplicationSnapshot()
        if snapshot_of is not None:
            try:
                snapshot = snapshot_of(self.lag.observe)
            except Exception:
                log.exception("replication snapshot of %s failed", cluster.identifier)
        now_wall, now = datetime.now(UTC), time.monotonic()
        rows = []
        for instance in list(cluster.instances.values()):
            engine_instance = self.engine.instances.get(instance.identifier)
            if engine_instance is None or not self.engine.alive(engine_instance) or instance.status in (
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

    def _ensure_sampler(self) -> None:
        """Start sampling the writer's log position (for replica lag) on first use."""
        if getattr(self.engine, "write_position", None) is None:
            return
        with self._lock:
            if self._sampler is None and not self._closed.is_set():
                self._sampler = threading.Thread(target=self._sample, name=f"lag clock {self.runtime.cluster.identifier}",
                                                 daemon=True)
                self._sampler.start()

    def _sample(self) -> None:
        while not self._closed.wait(LAG_SAMPLE_INTERVAL_S):
            if self.runtime.deleted:
                return
            try:
                position = self.engine.write_position()
            except Exception:
                position = None
            if position is not None:
                self.lag.observe(position)

    def _rate(self, what: str, identifier: str, counter: float) -> float:
        """Per-second rate of a growing counter between two calls (0 on the first)."""
        now = time.monotonic()
        previous = self._rates.get((what, identifier))
        self._rates[(what, identifier)] = (now, counter)
        if previous is None or now <= previous[0] or counter < previous[1]:
            return 0.0
        return (counter - previous[1]) / (now - previous[0])

    def _cpu_percent(self, identifier: str, engine_instance: Any) -> float:
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
            listener = self.engine.link_listener(f"reader:{reader}")
            stats = self.fabric.stats(listener)[0]
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


__all__ = [
    "CRASH_KINDS",
    "FAULT_TYPES",
    "MASTER_SESSION_ID",
    "SURFACE_PARTS",
    "FaultInjection",
    "FaultInjectionError",
    "InjectedFault",
    "LagClock",
    "ReaderPosition",
    "ReplicaStatus",
    "ReplicationSnapshot",
    "UnsupportedFault",
    "VolumeStatus",
    "aurora_version",
    "check_congestion",
    "check_crash_kind",
    "check_index",
    "check_interval",
    "check_percent",
]
