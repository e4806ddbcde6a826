"""Emulator-only controls: powers no real Aurora API gives, for `@emulator-only` scenarios.

Kill an instance's engine, stop a storage node, take down a whole AZ, put toxics on
replication links, change the emulated DNS TTL, allow an unsafe promotion or an inexact restore
for a negative control, shorten the backup schedule or take a backup now, see which RDS calls
reached the emulator (a dry run's proof). The harness reaches these
through `EmulatorControlClient` (HTTP) or, in-process, through `Emulator.controls`; nothing else
in the harness may reach around the RDS API.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the HTTP client below is imported by the CLI and the harness: keep it light
    from harness.emulator.interregion import InterRegionNetwork
    from harness.emulator.operations.state import RegionStore
    from harness.emulator.request_log import RequestLog
    from harness.emulator.runtime import ClusterRuntime

log = logging.getLogger("harness.emulator")
SLOW_SURFACE_S = 1.0  # an Aurora surface answer slower than this is logged
TOXIC_TYPES = ("latency", "blackhole", "reset", "bandwidth", "stall", "congestion")


class EmulatorControls:
    """The control actions, callable by name with JSON-able arguments.

    Built from what they act on: the region store, the request log, how a cluster's engine
    token is derived (`engine_token(region, cluster)`) and the emulator's status report.
    """

    ACTIONS = ("status", "kill_instance", "stop_storage_node", "start_storage_node", "storage_status",
               "az_down", "az_up", "add_toxic", "remove_toxic", "list_links", "set_dns_ttl",
               "set_unsafe_promotion", "lag_reader", "unlag_reader", "inject", "aurora_surface", "active_faults",
               "clear_faults", "request_log", "clear_request_log", "set_restore_offset", "set_backup_schedule",
               "take_backup", "region_down", "region_up", "cut_region_link", "restore_region_link",
               "set_region_rtt", "region_network", "set_unsafe_switchover")
    # What an engine may call with its cluster's engine token (Aurora's SQL surface), not the control token.
    ENGINE_ACTIONS = ("inject", "aurora_surface")

    def __init__(self, store: RegionStore, requests: RequestLog, engine_token: Callable[[str, str], str],
                 status: Callable[[], dict[str, Any]], network: InterRegionNetwork | None = None):
        self.store = store
        self.network = network
        self.requests = requests
        self.engine_token = engine_token
        self.report_status = status

    def call(self, action: str, arguments: dict[str, Any]) -> Any:
        if action not in self.ACTIONS:
            raise LookupError(f"unknown control {action!r}; known: {', '.join(self.ACTIONS)}")
        return getattr(self, action)(**arguments)

    def engine_may_call(self, token: str, action: str, arguments: dict[str, Any]) -> bool:
        """Is `token` the engine token of the cluster that `arguments["instance"]` belongs to?"""
        if action not in self.ENGINE_ACTIONS or not isinstance(arguments, dict) or not token:
            return False
        region, instance = arguments.get("region", "us-east-1"), arguments.get("instance")
        if not isinstance(region, str) or not isinstance(instance, str):
            return False
        try:
            runtime, _ = self._instance_runtime(region, instance)
        except Exception:
            return False
        expected = self.engine_token(region, runtime.cluster.resource_id)  # stable across renames
        return hmac.compare_digest(token, expected)

    def _runtime(self, region: str, cluster: str) -> ClusterRuntime:
        return self.store.runtime(region, cluster)

    def _instance_runtime(self, region: str, instance: str) -> tuple[ClusterRuntime, Any]:
        return self.store.instance_runtime(region, instance)

    # --- actions --------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.report_status()

    def kill_instance(self, instance: str, region: str = "us-east-1") -> str:
        """SIGKILL an instance's engine. The emulator then reacts as Aurora does."""
        runtime, inst = self._instance_runtime(region, instance)
        runtime.kill_instance(inst)
        return f"killed {inst.identifier}"

    def stop_storage_node(self, cluster: str, node: str, region: str = "us-east-1") -> dict[str, str]:
        runtime = self._runtime(region, cluster)
        runtime.engine.stop_storage_node(node)
        return runtime.engine.storage_status()

    def start_storage_node(self, cluster: str, node: str, region: str = "us-east-1") -> dict[str, str]:
        runtime = self._runtime(region, cluster)
        runtime.engine.start_storage_node(node)
        return runtime.engine.storage_status()

    def storage_status(self, cluster: str, region: str = "us-east-1") -> dict[str, str]:
        return self._runtime(region, cluster).engine.storage_status()

    def az_down(self, az: str, region: str = "us-east-1") -> list[str]:
        """Lose an AZ in every cluster of the region: its storage nodes and its instances."""
        return [runtime.cluster.identifier for runtime in self._region_runtimes(region, az) if runtime.az_down(az) or True]

    def az_up(self, az: str, region: str = "us-east-1") -> list[str]:
        return [runtime.cluster.identifier for runtime in self._region_runtimes(region, az) if runtime.az_up(az) or True]

    def _region_runtimes(self, region: str, az: str) -> list[ClusterRuntime]:
        reg = self.store.region(region)
        if az not in reg.availability_zones:
            raise ValueError(f"{az} is not an availability zone of {region} ({', '.join(reg.availability_zones)})")
        with self.store.lock:
            return list(reg.runtimes.values())

    def list_links(self, cluster: str, region: str = "us-east-1") -> list[str]:
        """Replication links that take toxics: 'reader:<instance>' and 'storage:<node>'."""
        return self._runtime(region, cluster).engine.link_names()

    def add_toxic(self, cluster: str, link: str, toxic: dict[str, Any], region: str = "us-east-1") -> str:
        if toxic.get("type") not in TOXIC_TYPES:
            raise ValueError(f"toxic type must be one of {', '.join(TOXIC_TYPES)}")
        runtime = self._runtime(region, cluster)
        name = toxic.get("name") or toxic["type"]
        runtime.fabric.add_toxic(runtime.engine.link_listener(link), name, toxic["type"],
                                       stream=toxic.get("stream", "both"), toxicity=toxic.get("toxicity", 1.0),
                                       attributes=toxic.get("attributes") or {})
        return name

    def remove_toxic(self, cluster: str, link: str, name: str, region: str = "us-east-1") -> None:
        runtime = self._runtime(region, cluster)
        runtime.fabric.remove_toxic(runtime.engine.link_listener(link), name)

    def lag_reader(self, cluster: str, reader: str, milliseconds: int, region: str = "us-east-1") -> None:
        """Make a reader hold the writer's commits `milliseconds` late, the way its engine can lag."""
        if not isinstance(milliseconds, int) or milliseconds <= 0:
            raise ValueError("milliseconds must be a positive whole number")
        self._runtime(region, cluster).engine.lag_reader(reader, milliseconds)

    def unlag_reader(self, cluster: str, reader: str, region: str = "us-east-1") -> bool:
        """Undo `lag_reader` (rolling a negative control back); False when the reader was not lagging."""
        return self._runtime(region, cluster).engine.unlag_reader(reader)

    # --- Aurora's fault-injection queries (fault_injection.py) and SQL surface (surface.py) -----------------------
    def inject(self, instance: str, fault: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
        """Inject an Aurora fault as if its query ran on `instance`; see `FaultInjection.apply` for `fault`.

        Refusals raise FaultInjectionError (HTTP 400 with its `reason` and `hint`)."""
        runtime, inst = self._instance_runtime(region, instance)
        return runtime.faults.apply(inst.identifier, fault)

    def aurora_surface(self, instance: str, region: str = "us-east-1",
                       parts: list[str] | None = None) -> dict[str, Any]:
        """Aurora's identity and topology as seen from `instance`: version, instance_identifier, role,
        replica_status (rows of aurora_replica_status()) and volume_status ({disks, nodes})."""
        started = time.monotonic()
        runtime, inst = self._instance_runtime(region, instance)
        answer = runtime.surface.surface(inst.identifier, parts)
        took = time.monotonic() - started
        if took > SLOW_SURFACE_S:  # the engine's session may have given up waiting: say where the time went
            log.warning("the Aurora surface of %s (%s) took %.1f s to answer", inst.identifier,
                        ", ".join(parts or ["all"]), took)
        return answer

    def active_faults(self, cluster: str, region: str = "us-east-1") -> list[dict[str, Any]]:
        """Timed faults (replica failure, disk failure and congestion) still in effect."""
        return [fault.to_json() for fault in self._runtime(region, cluster).faults.active()]

    def clear_faults(self, cluster: str, region: str = "us-east-1") -> int:
        """End every timed fault of the cluster now; returns how many were ended."""
        return self._runtime(region, cluster).faults.clear()

    def set_dns_ttl(self, cluster: str, seconds: float, region: str = "us-east-1") -> float:
        if seconds < 0:
            raise ValueError("the DNS TTL cannot be negative")
        self._runtime(region, cluster).dns_ttl = float(seconds)
        return float(seconds)

    def set_unsafe_promotion(self, cluster: str, enabled: bool, region: str = "us-east-1") -> bool:
        """Negative controls only: the next failovers promote without catching up first."""
        self._runtime(region, cluster).unsafe_promotion = bool(enabled)
        return bool(enabled)

    def set_unsafe_switchover(self, deployment: str, enabled: bool, region: str = "us-east-1") -> bool:
        """Negative controls only: the Blue/Green deployment's next switchovers do not wait for green
        to catch up (what blue had not replicated is lost, for a checker to name)."""
        with self.store.lock:
            found = self.store.region(region).blue_green_deployments.get(deployment.lower())
        if found is None:
            raise LookupError(f"no blue/green deployment {deployment!r} in {region}")
        found.unsafe_switchover = bool(enabled)
        return bool(enabled)

    # --- continuous backup and restores (backups.py) -----------------------------------------------------
    def set_restore_offset(self, cluster: str, seconds: float, region: str = "us-east-1") -> float:
        """Negative controls only: the next point-in-time restore from `cluster` lands `seconds` earlier
        than asked (once; then restores are exact again)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("seconds must be a number of seconds, 0 or more")
        self._runtime(region, cluster).backups.restore_offset_s = float(seconds)
        return float(seconds)

    def set_backup_schedule(self, cluster: str, interval_seconds: float | None = None,
                            retention_day_seconds: float | None = None, region: str = "us-east-1") -> dict[str, float]:
        """How often `cluster` takes an automated backup (default an hour), and how long one day of its
        BackupRetentionPeriod lasts (default 86400 s; shortened only to test retention)."""
        schedule = self._runtime(region, cluster).backups.schedule
        for name, value in (("interval_seconds", interval_seconds), ("retention_day_seconds", retention_day_seconds)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"{name} must be a positive number of seconds")
        if interval_seconds is not None:
            schedule.interval_s = float(interval_seconds)
        if retention_day_seconds is not None:
            schedule.retention_day_s = float(retention_day_seconds)
        return {"interval_seconds": schedule.interval_s, "retention_day_seconds": schedule.retention_day_s}

    def take_backup(self, cluster: str, region: str = "us-east-1") -> dict[str, Any]:
        """Take an automated backup of `cluster` now (it must have a writer); returns the snapshot."""
        runtime = self._runtime(region, cluster)
        if runtime.engine.writer_id is None:
            raise ValueError(f"{cluster} has no writer to back up")
        return runtime.backups.take_automated().describe()

    # --- Regions and the links between them (interregion.py, region_outage.py) ----------------------------
    def region_down(self, region: str) -> list[str]:
        """Lose a whole Region: every instance, endpoint and inter-Region link of it unreachable."""
        from harness.emulator import region_outage

        return region_outage.take_down(self.store, self._network(), region)

    def region_up(self, region: str) -> list[str]:
        """The Region returns: instances restart in their roles; a replaced global primary resyncs."""
        from harness.emulator import region_outage

        return region_outage.bring_up(self.store, self._network(), region)

    def cut_region_link(self, region_a: str, region_b: str) -> dict[str, Any]:
        """Cut replication between two Regions (everything else goes on)."""
        self._network().cut(region_a, region_b)
        return self._network().status()

    def restore_region_link(self, region_a: str, region_b: str) -> dict[str, Any]:
        self._network().restore(region_a, region_b)
        return self._network().status()

    def set_region_rtt(self, region_a: str, region_b: str, milliseconds: float) -> float:
        """The round trip between two Regions (their replication links take it at once)."""
        return self._network().set_rtt(region_a, region_b, milliseconds)

    def region_network(self) -> dict[str, Any]:
        """Regions down, pairs cut, and each inter-Region link with its round trip."""
        return self._network().status()

    def _network(self) -> InterRegionNetwork:
        if self.network is None:
            raise ValueError("this emulator has no inter-Region network")
        return self.network

    # --- which RDS calls reached the emulator (request_log.py) ----------------------------------------------
    def request_log(self, after: int | None = None) -> list[dict[str, Any]]:
        """RDS API calls received, oldest first, as {index, time, region, operation}; with `after`,
        only those numbered after it (the last index a caller saw)."""
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ValueError("after must be a whole number (an entry's index)")
        return [call.to_json() for call in self.requests.entries(after)]

    def clear_request_log(self) -> int:
        """Forget the calls received so far; returns how many were forgotten."""
        return self.requests.clear()


class ControlError(RuntimeError):
    """A control call failed: `bad_input` tells a caller mistake (400) from an emulator fault."""

    def __init__(self, message: str, bad_input: bool):
        super().__init__(message)
        self.bad_input = bad_input


class EmulatorControlClient:
    """Calls the controls of a running emulator over HTTP (what the CLI and harness use)."""

    # Loopback calls must never go through an HTTP proxy from the environment.
    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __init__(self, endpoint_url: str, token: str, timeout: float = 120.0):
        self.endpoint_url, self.token, self.timeout = endpoint_url.rstrip("/"), token, timeout

    def call(self, action: str, **arguments: Any) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint_url}/_emulator/{action}", data=json.dumps(arguments).encode(),
            headers={"X-Gameday-Token": self.token, "Content-Type": "application/json"}, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())["result"]
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read() or b"{}").get("error", err.reason)
            except ValueError:
                detail = err.reason
            raise ControlError(f"emulator control {action} failed: {detail}", bad_input=400 <= err.code < 500) \
                from None

    def __getattr__(self, action: str) -> Any:
        if action not in EmulatorControls.ACTIONS:
            raise AttributeError(action)
        return lambda **arguments: self.call(action, **arguments)
