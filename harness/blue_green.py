"""A Blue/Green deployment as a game day sees it: the RDS API's view of it, and what the harness
records on the timeline about it.

A switchover renames clusters (green takes blue's names and endpoints, blue gets `-old1`), so
the deployment is followed by its identifier, and every record says which cluster was which
*then*: the judgements (`harness.judgements.blue_green`) compare those records, never a name
read afterwards. Everything here only reads (DescribeBlueGreenDeployments, DescribeDBClusters)
except `try_write_on`, which is the application's own write attempt on the old blue and removes
its row if it was ever acknowledged.

Records:
- `blue-green`: the deployment when it became AVAILABLE (source, target, the green environment's
  engine version, blue's endpoints and instances);
- `blue-green-status`: each status the deployment went through while the harness watched (its
  phases on the timeline chart);
- `blue-green-after`: the production cluster and the old blue after a switchover settled
  (status, names, endpoints, engine version);
- `old-blue-write`: whether the old blue took an application write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.cluster import AuroraCluster
from harness.dialects.base import Credentials, Dialect
from harness.errors import ScenarioError
from harness.timeline import Timeline

if TYPE_CHECKING:
    from harness.gameday import GameDay

__all__ = ["SETTLED", "Deployment", "await_not_switchable", "await_switchover", "check_old_blue", "record_deployment",
           "snapshot", "try_write_on"]

SETTLED = ("AVAILABLE", "SWITCHOVER_COMPLETED", "SWITCHOVER_FAILED", "INVALID_CONFIGURATION")
POLL_S = 0.2  # the switchover's phases last seconds; DescribeBlueGreenDeployments is cheap
SLOW_POLL_S = 1.0  # provisioning and deletion take minutes on AWS: ask less often
OLD_BLUE_RUN = "old-blue"  # the ledger run id suffix of the write attempt on the old blue


def cluster_name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


@dataclass
class Deployment:
    """DescribeBlueGreenDeployments of one deployment, and waits on its status."""

    rds: Any
    identifier: str

    def describe(self) -> dict[str, Any]:
        return self.rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=self.identifier)[
            "BlueGreenDeployments"][0]

    def status(self) -> tuple[str, str | None]:
        described = self.describe()
        return described["Status"], described.get("StatusDetails")

    def exists(self) -> bool:
        found = self.rds.describe_blue_green_deployments(Filters=[
            {"Name": "blue-green-deployment-identifier", "Values": [self.identifier]}])["BlueGreenDeployments"]
        return bool(found)

    def watch(self, timeline: Timeline | None, until: tuple[str, ...], timeout: float,
              interval: float = POLL_S) -> tuple[str, str | None]:
        """Poll until the status is one of `until`, recording each status seen (the switchover's
        phases); TimeoutError names the last one."""
        deadline, last = time.monotonic() + timeout, None
        while True:
            status, details = self.status()
            if (status, details) != last and timeline is not None:
                timeline.record("blue-green-status", deployment=self.identifier, status=status, details=details,
                                at=time.monotonic())
            last = (status, details)
            if status in until:
                return status, details
            if time.monotonic() > deadline:
                raise TimeoutError(f"blue/green deployment {self.identifier} still {status} after {timeout:.0f} s "
                                   f"(waiting for {' or '.join(until)})")
            time.sleep(interval)


def _cluster(rds: Any, name: str) -> dict[str, Any]:
    cluster = AuroraCluster(rds, name).describe()
    return {"cluster": name, "endpoint": cluster.get("Endpoint"), "reader_endpoint": cluster.get("ReaderEndpoint"),
            "engine_version": cluster["EngineVersion"],
            "instances": sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"])}


def snapshot(rds: Any, deployment: Deployment, production: str) -> dict[str, Any]:
    """The deployment and its clusters as they are now: `source` and `target` as the deployment
    names them (after a switchover the source is the old blue), and `production`, the cluster
    under the name the application uses. Names, endpoints, engine versions, instances; no secret."""
    described = deployment.describe()
    return {"deployment": deployment.identifier, "name": described["BlueGreenDeploymentName"],
            "status": described["Status"], "details": described.get("StatusDetails"),
            "source": _cluster(rds, cluster_name(described["Source"])),
            "target": _cluster(rds, cluster_name(described["Target"])),
            "production": _cluster(rds, production)}


def try_write_on(dialect: Dialect, host: str, port: int, credentials: Credentials, run_id: str) -> dict[str, Any]:
    """One ledger write on `host`, as the application would make it: refused (the old blue is
    read-only after a switchover), or acknowledged and then deleted again."""
    run = f"{run_id}-{OLD_BLUE_RUN}"
    try:
        conn = dialect.connect(host, port, credentials, connect_timeout=5, statement_timeout=10,
                               application_name="gameday-old-blue")
    except Exception as error:  # noqa: BLE001 - a refused connection is a refused write
        return {"outcome": "refused", "error": dialect.describe_error(error)}
    try:
        try:
            server = dialect.insert(conn, run, 1)
        except Exception as error:  # noqa: BLE001 - what the engine said is the evidence
            return {"outcome": "refused", "error": dialect.describe_error(error)}
        dialect.delete_ledger_rows(conn, run)
        return {"outcome": "acknowledged", "server": server}
    finally:
        conn.close()


# --- what a game day waits for and records (steps call these; they only read, so on a dry run or
# after a stop condition they return at once) -------------------------------------------------------
def _live(game_day: GameDay) -> bool:
    return not game_day.dry_run and game_day.aborted is None


def record_deployment(game_day: GameDay, identifier: str | None) -> None:
    """The `blue-green` record: the deployment as it is when AVAILABLE (what "unchanged" means)."""
    if not _live(game_day) or identifier is None:
        return
    rds = game_day.cluster.cluster.rds
    game_day.timeline.record("blue-green", **snapshot(rds, Deployment(rds, identifier), game_day.cluster.identifier))


def await_switchover(game_day: GameDay, identifier: str | None, detail: dict[str, Any] | None, timeout: float,
                     acknowledged_after: int = 20) -> None:
    """After SwitchoverBlueGreenDeployment: its phases recorded until it completed or failed (at
    once when it was refused), the `blue-green-after` record, then every write probe committing
    again (through the same endpoint: production, whichever cluster that is now)."""
    if not _live(game_day) or identifier is None or detail is None:
        return
    rds = game_day.cluster.cluster.rds
    deployment = Deployment(rds, identifier)
    if detail.get("outcome") == "started":
        deployment.watch(game_day.timeline, ("SWITCHOVER_COMPLETED", "SWITCHOVER_FAILED"), timeout)
    else:
        deployment.watch(game_day.timeline, SETTLED, timeout)
    after = snapshot(rds, deployment, game_day.cluster.identifier)
    game_day.timeline.record("blue-green-after", **after)
    _writes_resume(game_day, timeout, acknowledged_after)


def await_not_switchable(game_day: GameDay, identifier: str | None, timeout: float) -> str | None:
    """Watch the deployment until it reports it cannot switch over (INVALID_CONFIGURATION), or
    `timeout` passes (the verdict then says it stayed AVAILABLE); returns the last status."""
    if not _live(game_day) or identifier is None:
        return None
    deployment = Deployment(game_day.cluster.cluster.rds, identifier)
    try:
        status, _ = deployment.watch(game_day.timeline, ("INVALID_CONFIGURATION",), timeout)
    except TimeoutError:
        status = deployment.status()[0]
    return status


def check_old_blue(game_day: GameDay) -> None:
    """The application's write on the old blue (the deployment's source after the switchover),
    recorded as `old-blue-write`."""
    if not _live(game_day):
        return
    afters = game_day.recorded("blue-green-after")
    if not afters:
        raise ScenarioError("the old blue is known once the deployment switched over: 'When the deployment "
                            "switches over'")
    old = afters[-1]["source"]
    cut = game_day.cluster
    attempt = try_write_on(cut.dialect, old["endpoint"], cut.endpoint()[1], cut.credentials, game_day.run_id)
    game_day.timeline.record("old-blue-write", cluster=old["cluster"], endpoint=old["endpoint"], **attempt)


def _writes_resume(game_day: GameDay, timeout: float, acknowledged_after: int) -> None:
    cluster = game_day.cluster.cluster
    for probe in game_day.probes.write_probes if game_day.probes else []:
        target = probe.acknowledged + acknowledged_after
        cluster.wait_until(lambda: probe.acknowledged >= target, timeout,  # noqa: B023 - called here
                           f"writes resuming ({probe.driver})")
