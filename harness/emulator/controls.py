"""Emulator-only controls: powers no real Aurora API gives, for `@emulator-only` scenarios.

Kill an instance's engine, stop a storage node, take down a whole AZ, put toxics on
replication links, change the emulated DNS TTL, allow an unsafe promotion for a negative
control. The harness reaches these through `EmulatorControlClient` (HTTP) or, in-process,
through `Emulator.controls`; nothing else in the harness may reach around the RDS API.
"""

from __future__ import annotations

import hmac
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from harness.emulator.emulator import Emulator
    from harness.emulator.runtime import ClusterRuntime

TOXIC_TYPES = ("latency", "blackhole", "reset", "bandwidth", "stall", "congestion")


class EmulatorControls:
    """The control actions, callable by name with JSON-able arguments."""

    ACTIONS = ("status", "kill_instance", "stop_storage_node", "start_storage_node", "storage_status",
               "az_down", "az_up", "add_toxic", "remove_toxic", "list_links", "set_dns_ttl",
               "set_unsafe_promotion", "lag_reader", "inject", "aurora_surface", "active_faults", "clear_faults")
    # What an engine may call with its cluster's engine token (Aurora's SQL surface), not the control token.
    ENGINE_ACTIONS = ("inject", "aurora_surface")

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

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
        expected = self.emulator.engine_token(region, runtime.cluster.identifier)
        return hmac.compare_digest(token, expected)

    def _runtime(self, region: str, cluster: str) -> ClusterRuntime:
        backend = self.emulator.backend
        with backend.lock:
            return backend.region(region).runtimes[backend.region(region).cluster(cluster).identifier]

    def _instance_runtime(self, region: str, instance: str) -> tuple[ClusterRuntime, Any]:
        backend = self.emulator.backend
        with backend.lock:
            reg = backend.region(region)
            cluster, inst = reg.instance(instance)
            return reg.runtimes[cluster.identifier], inst

    # --- actions --------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.emulator.status()

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
        reg = self.emulator.backend.region(region)
        if az not in reg.availability_zones:
            raise ValueError(f"{az} is not an availability zone of {region} ({', '.join(reg.availability_zones)})")
        with self.emulator.backend.lock:
            return list(reg.runtimes.values())

    def list_links(self, cluster: str, region: str = "us-east-1") -> list[str]:
        """Replication links that take toxics: 'reader:<instance>' and 'storage:<node>'."""
        return self._runtime(region, cluster).engine.link_names()

    def add_toxic(self, cluster: str, link: str, toxic: dict[str, Any], region: str = "us-east-1") -> str:
        if toxic.get("type") not in TOXIC_TYPES:
            raise ValueError(f"toxic type must be one of {', '.join(TOXIC_TYPES)}")
        runtime = self._runtime(region, cluster)
        name = toxic.get("name") or toxic["type"]
        self.emulator.fabric.add_toxic(runtime.engine.link_listener(link), name, toxic["type"],
                                       stream=toxic.get("stream", "both"), toxicity=toxic.get("toxicity", 1.0),
                                       attributes=toxic.get("attributes") or {})
        return name

    def remove_toxic(self, cluster: str, link: str, name: str, region: str = "us-east-1") -> None:
        runtime = self._runtime(region, cluster)
        self.emulator.fabric.remove_toxic(runtime.engine.link_listener(link), name)

    def lag_reader(self, cluster: str, reader: str, milliseconds: int, region: str = "us-east-1") -> None:
        """Make a reader hold the writer's commits `milliseconds` late, the way its engine can lag."""
        if not isinstance(milliseconds, int) or milliseconds <= 0:
            raise ValueError("milliseconds must be a positive whole number")
        self._runtime(region, cluster).engine.lag_reader(reader, milliseconds)

    # --- Aurora's fault-injection queries and SQL surface (harness.emulator.fault_injection) ----------------------
    def inject(self, instance: str, fault: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
        """Inject an Aurora fault as if its query ran on `instance`; see `FaultInjection.apply` for `fault`.

        Refusals raise FaultInjectionError (HTTP 400 with its `reason` and `hint`)."""
        runtime, inst = self._instance_runtime(region, instance)
        return runtime.faults.apply(inst.identifier, fault)

    def aurora_surface(self, instance: str, region: str = "us-east-1",
                       parts: list[str] | None = None) -> dict[str, Any]:
        """Aurora's identity and topology as seen from `instance`: version, instance_identifier, role,
        replica_status (rows of aurora_replica_status()) and volume_status ({disks, nodes})."""
        runtime, inst = self._instance_runtime(region, instance)
        return runtime.faults.surface(inst.identifier, parts)

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
