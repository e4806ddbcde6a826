"""Aurora's fault-injection queries, engine-neutral: what each fault really does to a cluster.

Aurora PostgreSQL's `aurora_inject_*()` functions and Aurora MySQL's `ALTER SYSTEM CRASH` /
`ALTER SYSTEM SIMULATE ...` statements ask for the same five things; each engine parses its
own grammar and formats errors in its own style, and both land here (in-process, or over the
emulator's control API as the `inject` action; Aurora's identity and topology functions are
answered by `surface.py`). Every fault has a real
effect on real processes and network links, never a cosmetic one:

| fault | effect in the emulator |
|---|---|
| crash `instance` | the instance's engine process is killed (SIGKILL) and restarted in place, with crash recovery; no failover; its sessions are lost |
| crash `dispatcher` | every client connection to the instance is reset (at the endpoints) and its client sessions are ended; the engine process keeps running |
| crash `node` | both of the above, and the engine restarts cold: its data files are evicted from the OS page cache |
| replica failure | the writer→reader replication link is held (buffered, never dropped) `percent`% of each second for the interval, so the reader's lag really grows and it catches up afterwards |
| disk failure | the chosen storage nodes stop acknowledging (their links are held) `percent`% of each second; writes stall only while the 4-of-6 write quorum is lost |
| disk congestion | `percent`% of the acknowledgements from the chosen storage nodes are delayed by a random time in [min, max] ms; with three or more nodes congested the quorum's fourth acknowledgement is late, so commits really slow down |

Disk and node indexes follow the cluster volume's geometry, which the SQL surface describes
(`surface.py`, `aurora_show_volume_status()`).

Timed faults end on their own when their interval ends. A replica failure is the writer's
doing, so it also ends when the instance that injected it restarts or the writer changes
(failover); storage faults belong to the volume and run their course.

Replica failure from a reader: on Aurora the query goes to the writer; in the emulator a
reader may run it too, and it then acts on that reader's own replication only (the replica
name must be empty or the reader's own identifier).

Engines take part through the contract in `engines/base.py`: `end_client_sessions()` for the
dispatcher crash, `drop_caches()` for the node crash, `restart()` for both crashes. Disk
faults need storage links (`storage:<node>` in `engine.link_names()`); engines without them
raise `UnsupportedFault`.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harness.emulator.event_messages import INSTANCE_RESTARTED, INSTANCE_SHUTDOWN
from harness.emulator.fabric import FabricError
from harness.emulator.replication import VolumeStatus

if TYPE_CHECKING:
    from harness.emulator.engines.base import EngineCluster
    from harness.emulator.fabric import FabricClient
    from harness.emulator.models import DBCluster, DBInstance
    from harness.emulator.runtime import ClusterRuntime
    from harness.emulator.surface import AuroraSurface

log = logging.getLogger("harness.emulator")

CRASH_KINDS = ("instance", "dispatcher", "node")
FAULT_TYPES = ("crash", "replica_failure", "disk_failure", "disk_congestion")
STALL_PERIOD_MS = 1000.0  # a partial failure holds a link percent% of every second
CONGESTION_MAX_MS = 100.0  # Aurora PostgreSQL's documented range for the congestion delay
CRASH_DELAY_S = 0.05  # lets the answer leave the emulator before the crash


class FaultInjectionError(ValueError):
    """A fault-injection (or SQL surface) request to refuse; each engine words and codes it its own way.

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


# --- timed faults --------------------------------------------------------------------------------------
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


def member(cluster: DBCluster, identifier: str) -> DBInstance:
    """The cluster's instance named `identifier`, or the refusal both engines word their own way."""
    instance = cluster.instances.get((identifier or "").lower())
    if instance is None:
        raise FaultInjectionError(f"DB instance {identifier!r} is not a member of DB cluster "
                                  f"{cluster.identifier}", reason="undefined_object")
    return instance


# --- the faults ----------------------------------------------------------------------------------------------------
class FaultInjection:
    """One cluster's fault-injection state and effects (one per ClusterRuntime, as `runtime.faults`).

    `surface` is the cluster's SQL surface: disk indexes follow its volume geometry, and a
    replica failure starts its lag clock so the lag the fault causes is measured from the start.
    """

    def __init__(self, runtime: ClusterRuntime, surface: AuroraSurface):
        self.runtime = runtime
        self.surface = surface
        self._lock = threading.RLock()
        self._faults: dict[str, InjectedFault] = {}
        self._ids = itertools.count(1)

    # --- plumbing --------------------------------------------------------------------------------------------
    @property
    def engine(self) -> EngineCluster:
        return self.runtime.engine

    @property
    def fabric(self) -> FabricClient:
        return self.runtime.fabric

    def _instance(self, identifier: str) -> DBInstance:
        return member(self.runtime.cluster, identifier)

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
        ended = self.engine.end_client_sessions(engine_instance)
        log.info("dispatcher crash of %s: %d connection(s) reset, %d session(s) ended", target.identifier,
                 dropped, ended)

    def _restart_in_place(self, target: DBInstance, cold: bool) -> None:
        """Kill the engine and start it again with the same role, as Aurora recovers a crash."""
        runtime = self.runtime
        with runtime.lock:  # the monitor leaves the instance alone meanwhile (no failover)
            if runtime.deleted or target.identifier not in runtime.cluster.instances:
                return
            is_writer = target.identifier == runtime.cluster.writer_id
            engine_instance = self.engine.instances[target.identifier]
            runtime.instance_event(target, INSTANCE_SHUTDOWN, "availability")
            self.engine.stop(engine_instance, "kill")
            self.fabric.drop(target.identifier)
            if cold:
                self.engine.drop_caches(engine_instance)
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
        self.surface.start_lag_clock()
        fault = self._inject("replica_failure", origin.identifier, description, links, toxic, seconds)
        if percent >= 100.0:
            self.engine.readers_cut_off(readers)
        return fault

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
        nodes = self.surface.storage_nodes()
        if not nodes:
            raise UnsupportedFault(f"disk faults are not supported for DB cluster {self.runtime.cluster.identifier}: "
                                   f"its cluster volume has no storage nodes in the emulator")
        index = check_index(index, is_disk, self.surface.volume_status())
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
        """A failover: the old writer's replica failures end with it."""
        self.clear(("replica_failure",))

    def instance_restarted(self, identifier: str) -> None:
        """A reboot or crash: what the instance injected into its own replication is gone."""
        self.clear(("replica_failure",), origin=identifier)

    def close(self) -> None:
        self.clear()


__all__ = [
    "CRASH_KINDS",
    "FAULT_TYPES",
    "FaultInjection",
    "FaultInjectionError",
    "InjectedFault",
    "UnsupportedFault",
    "check_congestion",
    "check_crash_kind",
    "check_index",
    "check_interval",
    "check_percent",
    "member",
]
