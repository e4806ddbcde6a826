"""The Aurora emulator as one object: usable in-process (tests) or as the daemon's core.

    with Emulator(state_dir) as emulator:
        rds = emulator.client()          # a real boto3 RDS client pointed at it
        rds.create_db_cluster(...)

Everything it starts (fabric, engines, storage nodes) belongs to its ProcessRegistry, so
`stop()` leaves nothing running and a SIGKILLed owner is cleaned up by its watchdog.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

from harness.emulator.addresses import ClusterAddresses
from harness.emulator.api import fault
from harness.emulator.backups import DEFAULT_INTERVAL_S, BackupSchedule
from harness.emulator.controls import EmulatorControls
from harness.emulator.dns import REFRESH_S as DNS_REFRESH_S
from harness.emulator.dns import HostsFile
from harness.emulator.engines.base import EngineCluster
from harness.emulator.engines.mariadb import MariaDbBinaries, MariaDbCluster, MariaDbTemplate
from harness.emulator.engines import postgres_surface
from harness.emulator.engines.postgres import PgBinaries, PgCluster, PgTemplate
from harness.emulator.fabric import FabricClient, start_fabric
from harness.emulator.interregion import InterRegionNetwork
from harness.emulator.jobs import Jobs
from harness.emulator.models import DBCluster
from harness.emulator.operations import ENGINES, Parts, RdsBackend, RegionStore
from harness.emulator.processes import (
    ProcessRegistry,
    check_engine_access,
    claim_state_dir,
    release_state_dir,
    sweep_abandoned_state,
    sweep_orphans,
)
from harness.emulator.request_log import RequestLog
from harness.emulator.runtime import ClusterRuntime
from harness.emulator.server import ApiRoutes, ApiServer

log = logging.getLogger("harness.emulator")

DEFAULT_REGION = "us-east-1"
# Not secrets: the emulator only listens on loopback; SigV4 is still verified against them.
DEFAULT_ACCESS_KEY = "AKIAGAMEDAYEMULATOR0"
DEFAULT_SECRET_KEY = "gameday-emulator-not-a-secret"
MONITOR_INTERVAL_S = 0.1


def default_state_dir() -> Path:
    """tmpfs when there is one: engine data and storage-node WAL then cost no disk I/O."""
    if os.environ.get("GAMEDAY_EMULATOR_HOME"):
        return Path(os.environ["GAMEDAY_EMULATOR_HOME"])
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"aurora-gameday-{os.getuid()}" / "emulator"


class Emulator:
    """An RDS-compatible control plane over real engine processes, on loopback."""

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        net: int = 42,
        api_host: str = "127.0.0.1",
        api_port: int = 0,
        dns_ttl: float = 5.0,
        backup_interval: float = DEFAULT_INTERVAL_S,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
    ):
        if not 2 <= net <= 254:
            raise ValueError("net must be between 2 and 254 (addresses are 127.<net>.x.y)")
        self.state_dir = Path(state_dir or default_state_dir()).resolve()
        # Unix socket paths are limited to 107 bytes, so engine sockets live under a short path.
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:10]
        self.socket_root = Path(tempfile.gettempdir()) / f"gd-{digest}"
        self.net, self.api_host, self.api_port, self.dns_ttl = net, api_host, api_port, dns_ttl
        self.backup_interval = backup_interval  # how often each cluster takes an automated backup
        self.backup_root = self.state_dir / "backups"  # snapshots and automated backups, apart from clusters
        # Every Aurora-style name the emulator serves, for clients in a names namespace (harness.emulator.dns).
        self.hosts_file = self.state_dir / "hosts"
        self.credentials = {access_key: secret_key}
        self.access_key = access_key
        self.control_token = secrets.token_urlsafe(24)
        self.jobs = Jobs()
        self.store = RegionStore()
        self.requests = RequestLog()
        self.network = InterRegionNetwork(None)  # its fabric once started
        self.backend = RdsBackend(Parts(store=self.store, net=net, new_runtime=self.new_runtime, jobs=self.jobs,
                                        backup_root=self.backup_root, network=self.network))
        self.controls = EmulatorControls(self.store, self.requests, engine_token=self.engine_token,
                                         status=self.status, network=self.network)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pg: tuple[PgBinaries, PgTemplate] | None = None
        self._mariadb: tuple[MariaDbBinaries, MariaDbTemplate] | None = None
        self._engine_lock = threading.Lock()
        self.started = False

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Start everything; if any part fails, stop what already started before raising."""
        try:
            return self._start()
        except BaseException:
            self.started = True
            self.stop()
            raise

    def _start(self) -> Emulator:
        check_engine_access(self.state_dir)
        sweep_orphans()
        for abandoned in sweep_abandoned_state(self.state_dir.parent, keep=self.state_dir):
            log.warning("removed %s: its emulator's owner died without stopping it", abandoned)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)  # engines run as another account and must traverse it
        claim_state_dir(self.state_dir)
        shutil.rmtree(self.state_dir / "regions", ignore_errors=True)  # a previous run's clusters
        shutil.rmtree(self.backup_root, ignore_errors=True)  # and their snapshots
        shutil.rmtree(self.socket_root, ignore_errors=True)
        self.socket_root.mkdir(mode=0o755)
        self.hosts = HostsFile(self.hosts_file, self.store)
        self.hosts.refresh()
        self.store.names_changed = self.hosts.refresh
        self.registry = ProcessRegistry(self.state_dir)
        self.registry.start_watchdog()
        self.admin_password = self._persistent_secret("admin.secret")
        socket_path = self.state_dir / "fabric.sock"
        socket_path.unlink(missing_ok=True)
        self.fabric_process, self.fabric = start_fabric(socket_path, self.state_dir / "fabric.log",
                                                        env=self.registry.environment())
        self.network.fabric = self.fabric
        self.http = ApiServer((self.api_host, self.api_port), ApiRoutes(
            dispatch=self.backend.dispatch, secret_for=self.secret_for, call_control=self.controls.call,
            engine_may_call=self.controls.engine_may_call, control_token=self.control_token,
            requests=self.requests))
        self.api_port = self.http.server_address[1]
        self._spawn_thread("api", self.http.serve_forever)
        self._spawn_thread("monitor", self._monitor)
        self._spawn_thread("dns", self._refresh_dns)
        self._spawn_thread("warm-templates", self._warm_templates)
        self._write_connection_file()
        self.started = True
        log.info("emulator up at %s (state %s)", self.endpoint_url, self.state_dir)
        return self

    def stop(self) -> None:
        """Stop every thread and process this emulator started (tolerates a half-done start)."""
        if not self.started:
            return
        self.started = False
        self._stopping.set()
        if hasattr(self, "http"):
            self.http.shutdown()
            self.http.server_close()
        self.jobs.wait(60)
        for thread in self._threads:
            if thread.name == "emulator-warm-templates":
                thread.join(120)  # killing initdb midway would strand its shared memory
        for runtime in self.store.clear():
            try:
                runtime.destroy()
            except Exception:
                log.exception("tearing down %s failed", runtime.cluster.identifier)
        if hasattr(self, "fabric"):
            try:
                self.fabric.shutdown()
                self.fabric_process.wait(10)
            except Exception:
                self.fabric_process.kill()
                self.fabric_process.wait()
        if hasattr(self, "registry"):
            self.registry.close()
        shutil.rmtree(self.socket_root, ignore_errors=True)
        for thread in self._threads:
            thread.join(5)
        (self.state_dir / "emulator.json").unlink(missing_ok=True)
        release_state_dir(self.state_dir)
        log.info("emulator stopped")

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _spawn_thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=f"emulator-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _refresh_dns(self) -> None:
        """Keep the hosts file (harness.emulator.dns) in step with creations, deletions and renames."""
        while not self._stopping.wait(DNS_REFRESH_S):
            try:
                self.hosts.refresh()
            except Exception:
                log.exception("could not rewrite the hosts file %s", self.hosts_file)

    def _monitor(self) -> None:
        """Aurora's own management: restart or fail over instances that died, take automated backups
        when they are due and prune the ones retention has passed."""
        while not self._stopping.wait(MONITOR_INTERVAL_S):
            for runtime in self.store.runtimes():
                try:
                    runtime.check_health()
                    backup_job = runtime.backups.next_job()
                    if backup_job is not None:
                        self.jobs.start(f"backup {runtime.cluster.identifier}", backup_job)
                except Exception:
                    log.exception("health check of %s failed", runtime.cluster.identifier)

    def _warm_templates(self) -> None:
        """Build each installed engine's template now, so the first cluster does not wait for it."""
        for engine, prepare in (("PostgreSQL", self.postgres), ("MariaDB", self.mariadb)):
            try:
                prepare()[1].ensure()
            except Exception as exc:
                log.warning("%s template not prepared: %s", engine, exc)

    def _persistent_secret(self, name: str) -> str:
        path = self.state_dir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            os.chmod(path, 0o600)
        return path.read_text().strip()

    def _write_connection_file(self) -> None:
        """How the CLI and harness find this emulator; readable by its owner only."""
        path = self.state_dir / "emulator.json"
        path.write_text(json.dumps(self.connection_info(), indent=2))
        os.chmod(path, 0o600)

    def connection_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "endpoint_url": self.endpoint_url,
            "region": DEFAULT_REGION,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.credentials[self.access_key],
            "control_token": self.control_token,
            "state_dir": str(self.state_dir),
            "net": self.net,
            "hosts_file": str(self.hosts_file),
        }

    # --- wiring -----------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def secret_for(self, access_key: str) -> str | None:
        return self.credentials.get(access_key)

    def client(self, region: str = DEFAULT_REGION, **config: Any) -> Any:
        """A real boto3 RDS client for this emulator."""
        return boto3.client("rds", endpoint_url=self.endpoint_url, region_name=region,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.credentials[self.access_key], **config)

    def engine_token(self, region: str, cluster: str) -> str:
        """A token for one cluster's engines (by its resource id, which a Blue/Green rename keeps): it
        opens only the engine-facing control actions (`inject`, `aurora_surface`) and only for that
        cluster's instances."""
        return hmac.new(self.control_token.encode(), f"engine:{region}/{cluster}".encode(), hashlib.sha256).hexdigest()

    def postgres(self) -> tuple[PgBinaries, PgTemplate]:
        with self._engine_lock:
            if self._pg is None:
                binaries = _found(PgBinaries.find)
                template = PgTemplate(self.registry, binaries, self.state_dir / "templates" / "postgresql",
                                      self.admin_password, self.socket_root / "template-pg")
                self._pg = (binaries, template)
            return self._pg

    def mariadb(self) -> tuple[MariaDbBinaries, MariaDbTemplate]:
        with self._engine_lock:
            if self._mariadb is None:
                binaries = _found(MariaDbBinaries.find)
                template = MariaDbTemplate(self.registry, binaries, self.state_dir / "templates" / "mariadb",
                                           self.admin_password, self.socket_root / "template-mariadb")
                self._mariadb = (binaries, template)
            return self._mariadb

    def engine_versions(self) -> dict[str, str]:
        """The real engines behind each emulated one, for reports ('not installed' when missing)."""
        versions = {}
        for engine, find, name in (("aurora-postgresql", PgBinaries.find, "PostgreSQL"),
                                   ("aurora-mysql", MariaDbBinaries.find, "MariaDB")):
            try:
                versions[engine] = f"{name} {find().version()}"
            except FileNotFoundError:
                versions[engine] = f"{name} (not installed)"
        return versions

    def new_runtime(self, cluster: DBCluster, addresses: ClusterAddresses) -> ClusterRuntime:
        region = self.store.region(cluster.region)
        common = dict(registry=self.registry, root=self.state_dir / "regions" / cluster.region / cluster.identifier,
                      port=cluster.port, admin_password=self.admin_password, fabric=self.fabric,
                      link_prefix=f"c{cluster.slot}", reader_link_host=addresses.reader_link,
                      socket_root=self.socket_root, region_azs=region.availability_zones)
        engine: EngineCluster
        if cluster.engine == "aurora-mysql":
            binaries, template = self.mariadb()
            engine = MariaDbCluster(**common, bins=binaries, template=template, cluster_slot=cluster.slot,
                                    engine_version=cluster.engine_version)
        else:
            pg_binaries, pg_template = self.postgres()
            surface_env = {postgres_surface.ENV_URL: self.endpoint_url,
                           postgres_surface.ENV_TOKEN: self.engine_token(cluster.region, cluster.resource_id),
                           postgres_surface.ENV_REGION: cluster.region}
            engine = PgCluster(**common, bins=pg_binaries, template=pg_template,
                               storage_link_host=addresses.storage_link, surface_env=surface_env)
        return ClusterRuntime(cluster, engine, self.fabric, region.events, dns_ttl=self.dns_ttl,
                              backup_root=self.backup_root / cluster.region / "automated" / cluster.resource_id,
                              backup_schedule=BackupSchedule(interval_s=self.backup_interval))

    # --- reporting -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Regions, clusters, instances, endpoints and storage nodes, for `gameday emulator status`."""
        real = self.engine_versions()
        report: dict[str, Any] = {"endpoint_url": self.endpoint_url, "state_dir": str(self.state_dir),
                                  "hosts_file": str(self.hosts_file),
                                  "jobs": self.jobs.running(), "regions": {},
                                  "engines": {engine: {"emulated": spec.default_version, "runs_on": real[engine]}
                                              for engine, spec in ENGINES.items()}}
        with self.store.lock:
            for name, region in self.store.regions.items():
                clusters = {}
                for cluster in region.clusters.values():
                    runtime = region.runtimes.get(cluster.identifier)  # none while the cluster is deleted
                    clusters[cluster.identifier] = {
                        "engine": cluster.engine,
                        "status": cluster.status,
                        "writer": cluster.writer_id,
                        "endpoints": {"cluster": f"{cluster.cluster_address}:{cluster.port}",
                                      "reader": f"{cluster.reader_address}:{cluster.port}",
                                      **{e.identifier: f"{e.address}:{cluster.port}"
                                         for e in cluster.custom_endpoints.values()}},
                        "instances": {
                            i.identifier: {"role": "writer" if i.identifier == cluster.writer_id else "reader",
                                           "status": i.status, "az": i.availability_zone,
                                           "endpoint": f"{i.address}:{i.port}",
                                           "promotion_tier": i.promotion_tier}
                            for i in cluster.instances.values()},
                        "storage_nodes": runtime.engine.storage_status() if runtime else {},
                        "restorable": [t.isoformat() if t else None for t in cluster.restore_window()],
                        "dns_ttl": runtime.dns_ttl if runtime else self.dns_ttl,
                    }
                report["regions"][name] = clusters
            report["global_clusters"] = {
                identifier: {"writer": "/".join(database.model.writer or ()), "endpoint": database.model.endpoint,
                             "status": database.model.status,
                             "members": {f"{m.region}/{m.cluster_id}": m.synchronization
                                         for m in database.model.members}}
                for identifier, database in self.store.global_clusters.items()}
        report["network"] = self.network.status()
        return report


def _found(find: Any) -> Any:
    """Engine binaries, or the API's InternalFailure saying how to install them."""
    try:
        return find()
    except FileNotFoundError as exc:
        raise fault("InternalFailure", str(exc)) from exc


__all__ = ["DEFAULT_REGION", "Emulator", "FabricClient", "default_state_dir"]
