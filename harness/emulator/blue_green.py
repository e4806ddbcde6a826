"""Blue/Green deployments: a green copy of a cluster kept in sync with it, and the switchover.

One `BlueGreenDeployment` per deployment (in its Region's `blue_green_deployments`). It holds the
two clusters' runtimes, not their names: a switchover renames both. Creation runs as a job
(`provision`): the green cluster's writer is loaded from blue and replicates from it through a
fabric link (`c<slot>-link-bg`, the `blue-green` link of the green engine, which takes toxics),
then green's readers are added; the deployment goes PROVISIONING -> AVAILABLE. A watcher samples
replication (lag, health) while the deployment waits: DDL on an Aurora PostgreSQL blue degrades
replication and the deployment becomes INVALID_CONFIGURATION.

The switchover follows the User Guide's order ("Switching a blue/green deployment"): guardrails
(checked by the API before it answers: a failing one refuses), stop writes on both environments,
drop connections and refuse new ones, wait for green to catch up, (Aurora PostgreSQL) bring
green's sequences to blue's values, rename (green takes blue's names and endpoints, blue gets
`-old1`), allow connections, allow writes on the new production cluster; the old blue stays
read-only. Past `SwitchoverTimeout` before the rename, every step is undone: blue takes writes
again, nothing is renamed, green keeps replicating (SWITCHOVER_FAILED and the cancel events).

Both environments' instances serve the switchover metadata drivers poll (`metadata`: Aurora
PostgreSQL's `get_blue_green_fast_switchover_metadata()`, Aurora MySQL's `mysql.rds_topology`, on
the releases that have them), whose phase runs AVAILABLE, SWITCHOVER_INITIATED (for
`PREPARATION_S`, before writes stop), SWITCHOVER_IN_PROGRESS, SWITCHOVER_IN_POST_PROCESSING (green
renamed and reachable) and SWITCHOVER_COMPLETED.

Endpoints are loopback addresses, named in the emulator's DNS (`harness.emulator.dns`). As on AWS,
an instance's address belongs to the instance and its name moves: after the rename a blue instance
name resolves to the green instance that took it, `-old1` names to blue's instances, and green's
names no longer resolve (the AWS Advanced Python Wrapper's `bg` plugin waits for exactly this). The
cluster and reader endpoint addresses stay with the names (their proxies now reach green), so an
application that holds an endpoint's address reaches the new production cluster, as one that keeps
using a DNS name does on AWS; green's former endpoint addresses keep reaching green too (on AWS they
are its instances' addresses), and the old blue gets new endpoint addresses with its new names.

Drivers learn each phase from the metadata before it takes effect: SWITCHOVER_INITIATED shows for
`PREPARATION_S`, and SWITCHOVER_IN_PROGRESS for `IN_PROGRESS_NOTICE_S` before writes stop and
connections drop (the `bg` plugin then holds its application's calls instead of letting them fail).
"""

from __future__ import annotations

import collections
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.emulator.addresses import ClusterAddresses
from harness.emulator.event_messages import (
    BG_CLUSTER_SWITCHOVER_CANCELED,
    BG_CLUSTER_SWITCHOVER_COMPLETED,
    BG_CLUSTER_SWITCHOVER_STARTED,
    BG_CREATED,
    BG_CREATION_FAILED,
    BG_DELETED,
    BG_SEQUENCE_SYNC_CANCELED,
    BG_SEQUENCE_SYNC_COMPLETED,
    BG_SEQUENCE_SYNC_STARTED,
    BG_SWITCHOVER_CANCELED,
    BG_SWITCHOVER_COMPLETED,
    BG_SWITCHOVER_STARTED,
    CLUSTER_CREATED,
)
from harness.emulator.fabric import FabricClient, FabricError
from harness.emulator.models import DBInstance, EventLog, Tagged, arn, now
from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")

# The tasks DescribeBlueGreenDeployments lists for an Aurora deployment (the API reference's example).
TASKS = ("CREATING_READ_REPLICA_OF_SOURCE", "DB_ENGINE_VERSION_UPGRADE", "CREATE_DB_INSTANCES_FOR_CLUSTER",
         "CREATE_CUSTOM_ENDPOINTS")
DEFAULT_SWITCHOVER_TIMEOUT_S = 300
SWITCHOVER_TIMEOUT_RANGE = (30, 3600)  # the User Guide's bounds (the API model states only the minimum)
# A write transaction on blue open this long blocks a switchover (the User Guide names the guardrail,
# "long-running active writes", but no threshold: this one is the emulator's).
LONG_RUNNING_WRITE_S = 5.0
SAMPLE_INTERVAL_S = 0.5  # replication lag's resolution while the deployment waits
HEALTH_INTERVAL_S = 2.0  # how often the watcher compares the environments (DDL on blue)
LINK_KIND = "blue-green"
WAITING_STATUSES = ("AVAILABLE", "SWITCHOVER_FAILED")  # a switchover may start from these
# The switchover's phases as the metadata drivers poll shows them (`get_blue_green_fast_switchover_metadata()`,
# `mysql.rds_topology`; the AWS Advanced Python Wrapper maps them to PREPARATION, IN_PROGRESS, POST ...).
PHASE_AVAILABLE, PHASE_INITIATED, PHASE_IN_PROGRESS, PHASE_POST, PHASE_COMPLETED = (
    "AVAILABLE", "SWITCHOVER_INITIATED", "SWITCHOVER_IN_PROGRESS", "SWITCHOVER_IN_POST_PROCESSING",
    "SWITCHOVER_COMPLETED")
PREPARATION_S = 2.0  # how long SWITCHOVER_INITIATED shows before writes stop (drivers poll it meanwhile)
# How long SWITCHOVER_IN_PROGRESS shows before connections drop: a few of a driver's fast polls (the
# wrapper polls every 100 ms in a switchover), so it holds calls rather than meeting closed connections.
IN_PROGRESS_NOTICE_S = 1.0
METADATA_VERSION = "1.0"
DNS_DOMAIN_ID = "gameday"  # as harness.drivers.names.DOMAIN_ID: `<name>.cluster-gameday.<region>.rds.amazonaws.com`


class SwitchoverCancelled(RuntimeError):
    """The switchover could not finish in time (or a step failed): everything is undone."""


def green_name(name: str) -> str:
    """AWS names a green resource `<name>-green-<6 random characters>` (within 63 characters)."""
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    return f"{name[:63 - 13]}-green-{suffix}"


def deployment_identifier() -> str:
    return "bgd-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16))


@dataclass
class BlueGreenDeployment(Tagged):
    """A deployment's state and its description; the runtime work is on the methods."""

    identifier: str = ""
    name: str = ""
    region: str = ""
    blue: ClusterRuntime | None = field(default=None, repr=False)
    green: ClusterRuntime | None = field(default=None, repr=False)
    # (blue instance, its green counterpart): the pairs a switchover renames and SwitchoverDetails lists.
    pairs: list[tuple[DBInstance, DBInstance]] = field(default_factory=list)
    status: str = "PROVISIONING"
    status_details: str | None = None
    member_status: str = "PROVISIONING"
    tasks: dict[str, str] = field(default_factory=lambda: {t: "PENDING" for t in TASKS})
    created: datetime = field(default_factory=now)
    deleted_at: datetime | None = None
    target_engine_version: str | None = None
    phase: str = PHASE_AVAILABLE  # the switchover's, as the metadata shows it

    @property
    def arn(self) -> str:
        return arn(self.region, "deployment", self.identifier)

    def describe(self) -> dict[str, Any]:
        assert self.blue is not None and self.green is not None
        blue, green = self.blue.cluster, self.green.cluster
        details = [{"SourceMember": blue.arn, "TargetMember": green.arn, "Status": self.member_status}]
        for source, target in self.pairs:
            status = self.member_status
            if source.identifier not in blue.instances:
                status = "MISSING_SOURCE"
            elif target.identifier not in green.instances:
                status = "MISSING_TARGET"
            details.append({"SourceMember": source.arn, "TargetMember": target.arn, "Status": status})
        return {"BlueGreenDeploymentIdentifier": self.identifier, "BlueGreenDeploymentName": self.name,
                "Source": blue.arn, "Target": green.arn, "SwitchoverDetails": details,
                "Tasks": [{"Name": name, "Status": status} for name, status in self.tasks.items()],
                "Status": self.status, "StatusDetails": self.status_details, "CreateTime": self.created,
                "DeleteTime": self.deleted_at, "TagList": self.tag_list()}


class RegionNames:
    """Renames in a Region's listing (clusters and instances are listed by name)."""

    def __init__(self, region: Any):
        self.region = region  # operations.state.Region

    def free_name(self, prefix: str) -> str:
        """`<prefix><n>` for the lowest n no cluster has (`mydb-old1`, then `mydb-old2` ...)."""
        n = 1
        while f"{prefix}{n}" in self.region.clusters:
            n += 1
        return f"{prefix}{n}"

    def new_endpoints(self, runtime: ClusterRuntime) -> tuple[str, str]:
        """Unused (cluster, reader) endpoint addresses in the runtime's own block, for its new name."""
        cluster = runtime.cluster
        used = {a for c in self.region.clusters.values() for a in (c.cluster_address, c.reader_address)}
        used |= {a for r in self.region.runtimes.values() for a in r.former_endpoints.values()}
        net = int(next(i.address for i in cluster.instances.values()).split(".")[1]) if cluster.instances \
            else int(cluster.cluster_address.split(".")[1])
        block = ClusterAddresses(net, cluster.slot)
        index = 0
        while set(block.renamed_endpoints(index)) & used:
            index += 1
        return block.renamed_endpoints(index)

    def apply(self, runtime: ClusterRuntime, name: str, instances: dict[str, str]) -> None:
        cluster, region = runtime.cluster, self.region
        region.clusters.pop(cluster.identifier, None)
        region.runtimes.pop(cluster.identifier, None)
        cluster.identifier = name
        if cluster.writer_id in instances:
            cluster.writer_id = instances[cluster.writer_id]
        renamed = {}
        for instance in cluster.instances.values():
            instance.identifier = instances.get(instance.identifier, instance.identifier)
            instance.cluster_id = name
            renamed[instance.identifier] = instance
        cluster.instances = renamed
        region.clusters[name] = cluster
        region.runtimes[name] = runtime


class BlueGreenRuntime:
    """Drives one deployment: provisioning, the replication watcher, the switchover, the end."""

    def __init__(self, model: BlueGreenDeployment, fabric: FabricClient, events: EventLog, link_host: str,
                 store_lock: threading.RLock, rename: RegionNames,
                 names_changed: Callable[[], Any] = lambda: None):
        self.model = model
        self.fabric = fabric
        self.events = events
        self.link_host = link_host
        self.store_lock = store_lock
        self.rename = rename  # renames in the Region's listing (the switchover's)
        self.names_changed = names_changed  # the emulator's DNS follows a rename at once
        self.closed = threading.Event()
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=20000)
        self._applied: int | None = None
        self._samples_lock = threading.Lock()
        assert model.green is not None
        self.link = f"{model.green.prefix}-link-bg"
        self.watcher: threading.Thread | None = None
        self.unsafe_switchover = False  # emulator-only (negative controls): switch over without catching up

    @property
    def blue(self) -> ClusterRuntime:
        assert self.model.blue is not None
        return self.model.blue

    @property
    def green(self) -> ClusterRuntime:
        assert self.model.green is not None
        return self.model.green

    def event(self, message: str, *categories: str) -> None:
        self.events.add("blue-green-deployment", self.model.identifier, self.model.arn, message, *categories)

    # --- the metadata drivers poll ------------------------------------------------------------------
    def metadata(self) -> list[dict[str, Any]]:
        """Rows of `get_blue_green_fast_switchover_metadata()` / `mysql.rds_topology`: every endpoint of
        both environments (AWS DNS names), its role and the switchover's phase."""
        rows = []
        for runtime, role in ((self.blue, "BLUE_GREEN_DEPLOYMENT_SOURCE"),
                              (self.green, "BLUE_GREEN_DEPLOYMENT_TARGET")):
            cluster = runtime.cluster
            domain = f"{DNS_DOMAIN_ID}.{cluster.region}.rds.amazonaws.com"
            names = [f"{cluster.identifier}.cluster-{domain}", f"{cluster.identifier}.cluster-ro-{domain}"]
            names += [f"{i}.{domain}" for i in sorted(cluster.instances)]
            rows += [{"version": METADATA_VERSION, "endpoint": name, "port": cluster.port, "role": role,
                      "status": self.model.phase} for name in names]
        return rows

    # --- provisioning ---------------------------------------------------------------------------------
    def route_link(self) -> None:
        """Green replicates from blue's writer, wherever it is (a failover on blue moves it)."""
        engine = self.blue.engine
        if engine.writer_id is None or engine.writer_id not in engine.instances:
            return
        route = {"targets": [engine.writer().target()], "policy": "first", "stale": None}
        self.fabric.set_listener(self.link, self.link_host, self.blue.cluster.port, route)

    def provision(self, hosts: dict[str, str]) -> None:
        """Job: green's writer (a copy of blue kept in sync), then its readers; `hosts` gives each
        green instance its engine address."""
        model, green = self.model, self.green
        self.route_link()
        self.blue.writer_listeners.append(self.route_link)
        green.engine.extra_links[LINK_KIND] = self.link
        self.blue.blue_green_view = green.blue_green_view = self.metadata
        green.publish_endpoints()
        green.cluster.status = "available"
        green.cluster_event(CLUSTER_CREATED, "creation")
        model.tasks["CREATING_READ_REPLICA_OF_SOURCE"] = "IN_PROGRESS"
        writer = next(g for b, g in model.pairs if b.identifier == self.blue.cluster.writer_id)
        green.create_green_writer(writer, hosts[writer.identifier], self.blue.engine, self.link_host)
        model.tasks["CREATING_READ_REPLICA_OF_SOURCE"] = "COMPLETED"
        model.tasks["DB_ENGINE_VERSION_UPGRADE"] = "COMPLETED"
        model.tasks["CREATE_DB_INSTANCES_FOR_CLUSTER"] = "IN_PROGRESS"
        for _, instance in model.pairs:
            if instance is not writer:
                green.create_instance(instance, hosts[instance.identifier])
                if instance.status != "available":
                    raise RuntimeError(f"green instance {instance.identifier} could not be created")
        model.tasks["CREATE_DB_INSTANCES_FOR_CLUSTER"] = "COMPLETED"
        model.tasks["CREATE_CUSTOM_ENDPOINTS"] = "COMPLETED"
        model.status = model.member_status = "AVAILABLE"
        self.event(BG_CREATED, "creation")
        self.watcher = threading.Thread(target=self._watch, name=f"blue/green {model.identifier}", daemon=True)
        self.watcher.start()

    def provisioning_failed(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".rstrip(".")
        for name, status in self.model.tasks.items():
            if status == "IN_PROGRESS":
                self.model.tasks[name] = "FAILED"
        self.model.status, self.model.status_details = "INVALID_CONFIGURATION", reason
        self.event(BG_CREATION_FAILED.format(reason), "failure")

    # --- replication: lag and health ---------------------------------------------------------------
    def _watch(self) -> None:
        last_health = 0.0
        while not self.closed.wait(SAMPLE_INTERVAL_S):
            if self.model.status not in ("AVAILABLE", "SWITCHOVER_FAILED", "INVALID_CONFIGURATION"):
                if self.model.status == "SWITCHOVER_COMPLETED":
                    return
                continue
            try:
                self.sample()
                if self.model.status != "INVALID_CONFIGURATION" and time.monotonic() - last_health > HEALTH_INTERVAL_S:
                    last_health = time.monotonic()
                    fault = self.green.engine.green_replication_fault(self.blue.engine)
                    if fault and self.model.status in WAITING_STATUSES:
                        self.model.status, self.model.status_details = "INVALID_CONFIGURATION", fault
            except Exception:
                log.debug("blue/green %s: replication sample failed", self.model.identifier, exc_info=True)

    def sample(self) -> tuple[int, int] | None:
        positions = self.green.engine.green_positions(self.blue.engine)
        if positions is None:
            return None
        with self._samples_lock:
            blue, applied = positions
            if not self._samples or self._samples[-1][1] != blue:
                self._samples.append((time.monotonic(), blue))
            self._applied = applied
        return positions

    def lag_s(self) -> float:
        """How long ago blue first had a change green has not applied (0 when green has it all)."""
        with self._samples_lock:
            if self._applied is None:
                return float("inf")
            for at, position in self._samples:
                if position > self._applied:
                    return time.monotonic() - at
            return 0.0

    # --- the switchover ------------------------------------------------------------------------------
    def guardrails(self, timeout_s: int) -> list[str]:
        """Why a switchover cannot start now (empty: it can), as the User Guide lists the checks."""
        reasons = []
        if self.model.status == "INVALID_CONFIGURATION":
            reasons.append(f"Replication health: {self.model.status_details}")
            return reasons
        blue, green = self.blue.engine, self.green.engine
        fault = green.green_replication_fault(blue)
        if fault:
            reasons.append(f"Replication health: {fault}")
        try:
            self.sample()
        except Exception as exc:  # noqa: BLE001 - reported as the guardrail it fails
            reasons.append(f"Replication health: the green environment does not answer ({exc})")
        lag = self.lag_s()
        if lag >= timeout_s:
            reasons.append(f"Replication lag: the green environment is {lag:.0f} s behind, more than the "
                           f"switchover timeout of {timeout_s} s allows")
        reasons += [f"Active writes on the green environment: {w}" for w in green.active_writes(0.0)]
        reasons += [f"Long-running activity on the blue environment: {w}"
                    for w in blue.active_writes(LONG_RUNNING_WRITE_S)]
        return reasons

    def begin_switchover(self) -> None:
        self.model.status = self.model.member_status = "SWITCHOVER_IN_PROGRESS"
        self.model.status_details = None
        self.model.phase = PHASE_INITIATED

    def switchover(self, timeout_s: int) -> None:
        """Job: the switchover, undone entirely if it cannot finish within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        blue, green = self.blue, self.green
        blue_name, green_name_ = blue.cluster.identifier, green.cluster.identifier
        self.event(BG_SWITCHOVER_STARTED, "notification")
        self.event(BG_CLUSTER_SWITCHOVER_STARTED.format(blue_name, green_name_), "notification")
        self.closed.wait(PREPARATION_S)
        self.model.phase = PHASE_IN_PROGRESS
        self.closed.wait(IN_PROGRESS_NOTICE_S)
        with blue.lock, green.lock:
            fenced = False
            try:
                fenced_at = blue.engine.fence_writes()  # writes stop on blue (green is read-only already)
                fenced = True
                for runtime in (blue, green):  # drop connections (taking an endpoint down resets its
                    runtime.unpublish_endpoints()  # connections), allow no new ones
                for instance in list(green.engine.instances.values()):
                    if green.engine.alive(instance):
                        green.engine.end_client_sessions(instance)
                if not self.unsafe_switchover:
                    self._catch_up(fenced_at, deadline)
                self._sync_sequences(deadline)
                if time.monotonic() > deadline:
                    raise SwitchoverCancelled("the switchover timeout expired")
                green.engine.stop_green_replication(blue.engine, open_writes=True)  # no way back after this
            except Exception as exc:
                self._cancel(exc, fenced)
                return
            if self.route_link in blue.writer_listeners:
                blue.writer_listeners.remove(self.route_link)
            self._remove_link()
            old, green_names, blue_names = self._rename()
            try:
                self.names_changed()  # DNS: blue's names on green's addresses, green's names gone
            except Exception:
                log.exception("blue/green %s: the DNS did not follow the rename", self.model.identifier)
            green.engine.rename_instances(green_names)  # green first: production is back sooner
            green.publish_endpoints()
            self.model.phase = PHASE_POST
            green.faults.writer_changed()
            green.surface.writer_changed()
            blue.engine.rename_instances(blue_names)
            blue.publish_endpoints()
            self.model.phase = PHASE_COMPLETED
        self.model.status = self.model.member_status = "SWITCHOVER_COMPLETED"
        self.event(BG_CLUSTER_SWITCHOVER_COMPLETED.format(blue=blue_name, green=green_name_, old=old),
                   "notification")
        self.event(BG_SWITCHOVER_COMPLETED, "notification")

    def _catch_up(self, fenced_at: int, deadline: float) -> None:
        while True:
            positions = self.sample()
            if positions is not None and positions[1] >= fenced_at:
                return
            if time.monotonic() > deadline:
                raise SwitchoverCancelled("the green environment did not catch up with the blue environment "
                                          "within the switchover timeout")
            time.sleep(0.02)

    def _sync_sequences(self, deadline: float) -> None:
        if self.green.cluster.engine != "aurora-postgresql":
            return
        name = self.green.cluster.identifier
        self.event(BG_SEQUENCE_SYNC_STARTED.format(name), "notification")
        try:
            if time.monotonic() > deadline:
                raise SwitchoverCancelled("the switchover timeout expired")
            self.green.engine.sync_sequences(self.blue.engine)
        except Exception:
            self.event(BG_SEQUENCE_SYNC_CANCELED.format(name), "failure")
            raise
        self.event(BG_SEQUENCE_SYNC_COMPLETED.format(name), "notification")

    def _cancel(self, exc: BaseException, fenced: bool) -> None:
        """Undo every step: blue takes writes again, both environments' endpoints are back, green
        keeps replicating; the deployment says SWITCHOVER_FAILED."""
        reason = str(exc).rstrip(".") if isinstance(exc, SwitchoverCancelled) else f"{type(exc).__name__}: {exc}"
        log.warning("blue/green %s: switchover cancelled: %s", self.model.identifier, reason)
        if fenced:
            try:
                self.blue.engine.unfence_writes()
            except Exception:
                log.exception("could not open %s for writes again", self.blue.cluster.identifier)
        for runtime in (self.blue, self.green):
            try:
                runtime.publish_endpoints()
            except Exception:
                log.exception("could not publish the endpoints of %s again", runtime.cluster.identifier)
        self.model.status, self.model.member_status = "SWITCHOVER_FAILED", "AVAILABLE"
        self.model.status_details = f"Switchover canceled: {reason}."
        self.model.phase = PHASE_AVAILABLE
        self.event(BG_CLUSTER_SWITCHOVER_CANCELED.format(self.blue.cluster.identifier, self.green.cluster.identifier,
                                                         reason), "failure")
        self.event(BG_SWITCHOVER_CANCELED, "failure")

    def switchover_failed(self, exc: BaseException) -> None:
        """The switchover job raised or hung past its own deadline: say so, do not leave it in progress."""
        if self.model.status == "SWITCHOVER_IN_PROGRESS":
            self.model.phase = PHASE_AVAILABLE
            self.model.status, self.model.member_status = "SWITCHOVER_FAILED", "AVAILABLE"
            self.model.status_details = f"Switchover canceled: {type(exc).__name__}: {exc}."

    def _rename(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """Green takes blue's names and its cluster and reader endpoint addresses (keeping its own as
        `former_endpoints`); blue gets `-old<n>` and new endpoint addresses. Instances keep their
        addresses: the names move (in the Region's listing; the engines follow). Returns blue's new
        name and each side's instance renames."""
        blue, green = self.blue, self.green
        blue_name = blue.cluster.identifier
        with self.store_lock:
            old = self.rename.free_name(f"{blue_name}-old")
            suffix = old[len(blue_name):]
            pairs = [(b, g) for b, g in self.model.pairs
                     if b.identifier in blue.cluster.instances and g.identifier in green.cluster.instances]
            green.former_endpoints.update({"former-cluster": green.cluster.cluster_address,
                                           "former-reader": green.cluster.reader_address})
            green.cluster.cluster_address = blue.cluster.cluster_address
            green.cluster.reader_address = blue.cluster.reader_address
            blue.cluster.cluster_address, blue.cluster.reader_address = self.rename.new_endpoints(blue)
            blue_names = {b.identifier: f"{b.identifier[:63 - len(suffix)]}{suffix}" for b, _ in pairs}
            green_names = {g.identifier: b.identifier for b, g in pairs}
            self.rename.apply(blue, old, blue_names)
            self.rename.apply(green, blue_name, green_names)
        return old, green_names, blue_names

    # --- the end ------------------------------------------------------------------------------------------
    def _remove_link(self) -> None:
        self.green.engine.extra_links.pop(LINK_KIND, None)
        try:
            self.fabric.remove_listener(self.link)
        except FabricError:
            pass

    def delete(self, delete_target: bool) -> None:
        """Job: the deployment ends. Blue is untouched; green is deleted with `delete_target`, else kept
        (still replicating, as on AWS, until the deployment had switched over)."""
        self.closed.set()
        for runtime in (self.blue, self.green):
            if runtime.blue_green_view == self.metadata:
                runtime.blue_green_view = None
        try:
            if delete_target:
                with self.green.lock:
                    self.green.engine.stop_green_replication(self.blue.engine, open_writes=False)
                self._remove_link()
                if self.route_link in self.blue.writer_listeners:
                    self.blue.writer_listeners.remove(self.route_link)
                with self.blue.lock:
                    self.blue.engine.stop_publishing()
        finally:
            self.model.deleted_at = now()
            self.event(BG_DELETED, "deletion")

    def close(self) -> None:
        self.closed.set()
        for runtime in (self.blue, self.green):
            if runtime.blue_green_view == self.metadata:
                runtime.blue_green_view = None
