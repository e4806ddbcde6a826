"""Where the cluster under test comes from: the local emulator, or real AWS.

The harness code above this module is the same for both; only how a cluster is obtained and
released differs. On the emulator a scenario gets a fresh cluster shaped as it asks and it is
deleted afterwards. On AWS the harness only ever touches clusters the user has explicitly
allowed by naming them in a profile, never creates or deletes one, and can show its plan
without acting (`dry_run`).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from harness.cluster import AuroraCluster, Member
from harness.dialects import Dialect, dialect_for
from harness.dialects.base import Credentials
from harness.global_database import GlobalDatabase

ALLOW_TAG = "gameday:allow"
CREATED_BY_TAG = "gameday:created-by"  # on everything the harness creates: `gameday cleanup` finds it by this
CREATED_BY = "aurora-gameday"
# What a Blue/Green source's DB cluster parameter group turns on, per engine: (family, parameter, value).
BLUE_GREEN_PARAMETER = {"aurora-postgresql": ("aurora-postgresql15", "rds.logical_replication", "1"),
                        "aurora-mysql": ("aurora-mysql8.0", "binlog_format", "ROW")}
RUN_TAG = "gameday:run-id"
NAME_PREFIX = re.compile(r"[a-z](?:-?[a-z0-9])*-?")
ENGINES = ("aurora-postgresql", "aurora-mysql")  # the API's names, the order runs take them in
ENGINE_TITLES = {"aurora-postgresql": "Aurora PostgreSQL", "aurora-mysql": "Aurora MySQL"}
SECONDARY_REGION = "us-west-2"  # where the emulator puts a global database's secondary (70 ms from us-east-1)


class TargetUnavailable(RuntimeError):
    """The target cannot provide what a scenario asks for; the message says what and why."""


class EngineNotAllowed(TargetUnavailable):
    """On AWS, the profile allows no cluster of the scenario's engine: that example is skipped,
    not failed (a team with only Aurora PostgreSQL runs the same features)."""


class GlobalDatabaseNotAllowed(EngineNotAllowed):
    """On AWS, the profile names no global database of the scenario's engine: skipped, not failed."""


@dataclass(frozen=True)
class ClusterRequirement:
    """What a scenario needs: engine and number of readers (and optionally their tiers)."""

    engine: str = "aurora-postgresql"
    readers: int = 2
    promotion_tiers: tuple[int, ...] | None = None  # writer first, then readers
    backtrack_window_s: int = 0  # Backtrack enabled with at least this window (Aurora MySQL)
    secondary_instances: int = 0  # a global database: instances of the secondary Region's cluster
    blue_green: bool = False  # a Blue/Green source: logical replication / binary logging turned on


@dataclass
class ClusterUnderTest:
    """A cluster handed to a scenario, with what probes need to reach it."""

    cluster: AuroraCluster
    dialect: Dialect
    credentials: Credentials
    created: bool  # True when the environment created it and will delete it

    @property
    def identifier(self) -> str:
        return self.cluster.identifier

    def endpoint(self) -> tuple[str, int]:
        described = self.cluster.describe()
        return described["Endpoint"], described["Port"]

    def reader_endpoint(self) -> tuple[str, int]:
        described = self.cluster.describe()
        return described["ReaderEndpoint"], described["Port"]

    def members(self) -> list[Member]:
        return self.cluster.members()


PRIMARY, SECONDARY = "primary", "secondary"  # the roles of a global database's clusters, as handed over


@dataclass
class GlobalUnderTest:
    """A global database handed to a scenario: one cluster under test per role, and the Regions.

    The roles are those the clusters had when handed over; a switchover or failover swaps what
    they do, not what they are called here (the primary Region is where the game day began)."""

    database: GlobalDatabase
    roles: dict[str, ClusterUnderTest]
    regions: dict[str, str]  # role → Region
    created: bool

    @property
    def identifier(self) -> str:
        return self.database.identifier

    def writer_endpoint(self) -> tuple[str, int]:
        """The global writer endpoint, on the clusters' port."""
        return self.database.writer_endpoint(), self.roles[PRIMARY].endpoint()[1]

    def instances(self) -> dict[str, list[str]]:
        """Region → the instances of its cluster (for telling which Region served a write)."""
        return {self.regions[role]: [m.identifier for m in cut.members()] for role, cut in self.roles.items()}


@dataclass(frozen=True)
class CreationPolicy:
    """What the harness may create for a scenario (restored clusters, green environments): on AWS
    these are billable, so only where the profile says so, under its name prefix and instance class,
    tagged as the harness's own and deleted at the end of the scenario."""

    name_prefix: str
    instance_class: str

    def name(self, *parts: str) -> str:
        """An RDS identifier for something created: the prefix, then `parts`, at most 63 characters."""
        name = re.sub(r"-+", "-", self.name_prefix + "-".join(parts)).strip("-")[:63].rstrip("-")
        return name

    def tags(self, run_id: str) -> list[dict[str, str]]:
        return [{"Key": CREATED_BY_TAG, "Value": CREATED_BY}, {"Key": RUN_TAG, "Value": run_id}]


class Environment:
    """Base: a target that provides clusters and, on the emulator, emulator-only controls."""

    name = "base"
    dry_run = False
    # How finely the target honours a restore or backtrack time: the exactness boundary's tolerance.
    # AWS's API documents RestoreToTime and BacktrackTo to the second.
    restore_resolution_s = 1.0

    def creation_policy(self) -> CreationPolicy:
        """May the harness create clusters here, and how; TargetUnavailable says why not."""
        raise TargetUnavailable(f"the harness creates nothing on {self.name}")

    def check_may_rewind(self, cut: ClusterUnderTest) -> None:
        """Backtrack rewinds a cluster in place; TargetUnavailable unless that is allowed here."""
        raise TargetUnavailable(f"the harness rewinds nothing on {self.name}")

    def check_may_switch_over(self, cut: ClusterUnderTest) -> None:
        """A Blue/Green switchover renames the cluster and cannot be undone; TargetUnavailable
        unless that is allowed here."""
        raise TargetUnavailable(f"the harness switches nothing over on {self.name}")

    def blue_green_deployment(self, cut: ClusterUnderTest) -> str | None:
        """An existing Blue/Green deployment of `cut` to take instead of creating one (None: create)."""
        return None

    def rds(self, region: str | None = None) -> Any:
        raise NotImplementedError

    def provide(self, requirement: ClusterRequirement, purpose: str) -> ClusterUnderTest:
        raise NotImplementedError

    def release(self, cut: ClusterUnderTest) -> None:
        """Undo what `provide` created."""

    def provide_global(self, requirement: ClusterRequirement, purpose: str) -> GlobalUnderTest:
        """A global database: a primary cluster as `requirement` asks, and a secondary in another Region."""
        raise TargetUnavailable(f"{self.name} provides no global database")

    def release_global(self, database: GlobalUnderTest) -> None:
        """Undo what `provide_global` created."""

    def controls(self) -> Any | None:
        """Emulator-only controls, or None on real AWS."""
        return None

    def aurora_names(self, cut: ClusterUnderTest) -> Any | None:
        """The Aurora-style DNS names a client such as the AWS Advanced Python Wrapper needs, when
        they do not resolve by themselves (the emulator); None where real DNS has them (AWS)."""
        return None

    def describe(self) -> dict[str, str]:
        """Facts for the report's environment section."""
        return {"target": self.name}

    def close(self) -> None:
        pass


@dataclass
class EmulatorEnvironment(Environment):
    """Clusters on a local Aurora emulator of its own, created per scenario and deleted afterwards.

    The emulator runs as a daemon tied to this process: the harness reaches it only through its
    HTTP API (boto3, and the control client for emulator-only faults), as users do, and its
    control plane does not compete with the probes for this process's CPU. When this process
    ends, however it ends, the daemon stops and takes its engines with it.
    """

    state_dir: Path | None = None
    net: int = 45
    dns_ttl: float = 5.0
    name: str = "emulator"
    restore_resolution_s: float = 1e-6  # both engines restore and rewind to the microsecond
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        from harness.emulator import daemon
        from harness.emulator.emulator import default_state_dir

        # Never the user's daemon's state dir: starting an emulator wipes the clusters of its state dir.
        self.state_dir = Path(self.state_dir or default_state_dir().with_name("gameday-run"))
        self.info = daemon.up(self.state_dir, port=0, net=self.net, dns_ttl=self.dns_ttl, tied=True)

    def rds(self, region: str | None = None) -> Any:
        return boto3.client("rds", endpoint_url=self.info["endpoint_url"], region_name=region or self.info["region"],
                            aws_access_key_id=self.info["aws_access_key_id"],
                            aws_secret_access_key=self.info["aws_secret_access_key"])

    def check_may_rewind(self, cut: ClusterUnderTest) -> None:
        """The cluster is the scenario's own."""

    def check_may_switch_over(self, cut: ClusterUnderTest) -> None:
        """The cluster is the scenario's own."""

    def creation_policy(self) -> CreationPolicy:
        """Everything here is the harness's own; restores honour the engine's microseconds."""
        return CreationPolicy(name_prefix="", instance_class="db.r6g.large")

    def controls(self) -> Any:
        from harness.emulator.controls import EmulatorControlClient

        return EmulatorControlClient(self.info["endpoint_url"], self.info["control_token"])

    def aurora_names(self, cut: ClusterUnderTest) -> Any:
        """The cluster's endpoints and instances under Aurora-shaped names (`harness.drivers.names`)."""
        from harness.drivers.names import AuroraNames

        return AuroraNames.of(self.rds(), cut.identifier, region=self.info["region"])

    def provide(self, requirement: ClusterRequirement, purpose: str) -> ClusterUnderTest:
        rds = self.rds()
        identifier = f"gd-{_slug(purpose)[:16].strip('-')}-{next(self._counter)}"
        credentials = Credentials("gameday", secrets.token_urlsafe(18), "gameday")
        options: dict[str, Any] = {"BacktrackWindow": requirement.backtrack_window_s} \
            if requirement.backtrack_window_s else {}
        if requirement.blue_green:
            options["DBClusterParameterGroupName"] = self._blue_green_group(rds, identifier, requirement.engine)
        rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=requirement.engine, **options,
                              MasterUsername=credentials.user, MasterUserPassword=credentials.password,
                              DatabaseName=credentials.database, Tags=[{"Key": ALLOW_TAG, "Value": "true"}])
        tiers = requirement.promotion_tiers or tuple([1] + list(range(requirement.readers)))
        for index, tier in enumerate(tiers[: requirement.readers + 1]):
            rds.create_db_instance(DBInstanceIdentifier=f"{identifier}-{index + 1}", DBClusterIdentifier=identifier,
                                   Engine=requirement.engine, DBInstanceClass="db.r6g.large", PromotionTier=tier)
        cluster = AuroraCluster(rds, identifier)
        cluster.wait_settled(timeout=180)
        if requirement.backtrack_window_s:  # Aurora shows it at once; the emulator once its first backup is whole
            cluster.wait_until(lambda: "EarliestBacktrackTime" in cluster.describe(), 120, "a backtrack point")
        return ClusterUnderTest(cluster, dialect_for(requirement.engine), credentials, created=True)

    @staticmethod
    def _blue_green_group(rds: Any, identifier: str, engine: str) -> str:
        """A DB cluster parameter group with what a Blue/Green source needs on `engine` (the
        default groups leave it off, on AWS as on the emulator)."""
        family, parameter, value = BLUE_GREEN_PARAMETER[engine]
        group = f"{identifier}-bg"
        rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily=family,
                                              Description="aurora-gameday: a Blue/Green source")
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "pending-reboot"}])
        return group

    def release(self, cut: ClusterUnderTest) -> None:
        if not cut.created:
            return
        rds = cut.cluster.rds
        try:
            cut.cluster.wait_settled(timeout=120)
        except TimeoutError:
            pass  # delete what we can anyway
        # Readers first: deleting the writer of a cluster that still has readers fails over.
        members = sorted(cut.cluster.members(), key=lambda m: m.is_writer)
        for member in members:
            rds.delete_db_instance(DBInstanceIdentifier=member.identifier, SkipFinalSnapshot=True)
        cut.cluster.wait_until(lambda: not cut.cluster.members(), 120, "instances deleted")
        rds.delete_db_cluster(DBClusterIdentifier=cut.identifier, SkipFinalSnapshot=True)

    def provide_global(self, requirement: ClusterRequirement, purpose: str) -> GlobalUnderTest:
        """The primary as `provide` makes it, CreateGlobalCluster from it, and a secondary cluster in
        us-west-2 (CreateDBCluster with GlobalClusterIdentifier) with its instances, connected."""
        primary = self.provide(requirement, purpose)
        primary_region, rds = self.info["region"], primary.cluster.rds
        identifier = f"{primary.identifier}-global"
        rds.create_global_cluster(GlobalClusterIdentifier=identifier,
                                  SourceDBClusterIdentifier=primary.cluster.describe()["DBClusterArn"])
        west = self.rds(SECONDARY_REGION)
        name = f"{primary.identifier}-west"
        west.create_db_cluster(DBClusterIdentifier=name, Engine=requirement.engine, GlobalClusterIdentifier=identifier,
                               Tags=[{"Key": ALLOW_TAG, "Value": "true"}])
        for index in range(max(1, requirement.secondary_instances)):  # a failover needs one instance
            west.create_db_instance(DBInstanceIdentifier=f"{name}-{index + 1}", DBClusterIdentifier=name,
                                    Engine=requirement.engine, DBInstanceClass="db.r6g.large")
        database = GlobalDatabase(identifier, {primary_region: rds, SECONDARY_REGION: west},
                                  {primary_region: primary.identifier, SECONDARY_REGION: name})
        secondary = AuroraCluster(west, name)
        database.wait_until(lambda: database.settled() and _all_available(secondary), 300,
                            "the secondary Region connected")
        return GlobalUnderTest(database, {PRIMARY: primary, SECONDARY: ClusterUnderTest(
            secondary, primary.dialect, primary.credentials, created=True)},
            {PRIMARY: primary_region, SECONDARY: SECONDARY_REGION}, created=True)

    def release_global(self, database: GlobalUnderTest) -> None:
        """Secondaries out of the global database, then the primary; the global database; both clusters,
        and the snapshot a failover with data loss took of the old primary."""
        db = database.database
        try:
            db.wait_until(db.settled, 300, "settling before it is taken apart")
        except TimeoutError:
            pass  # take apart what we can anyway
        members = db.members()
        for writer_last in (False, True):
            for region, member in members.items():
                if bool(member["IsWriter"]) == writer_last:
                    db.clients[region].remove_from_global_cluster(GlobalClusterIdentifier=db.identifier,
                                                                  DbClusterIdentifier=member["DBClusterArn"])
        next(iter(db.clients.values())).delete_global_cluster(GlobalClusterIdentifier=db.identifier)
        for cut in database.roles.values():
            for snapshot in cut.cluster.rds.describe_db_cluster_snapshots(
                    DBClusterIdentifier=cut.identifier)["DBClusterSnapshots"]:
                if snapshot["SnapshotType"] == "manual":
                    cut.cluster.delete_snapshot(snapshot["DBClusterSnapshotIdentifier"])
            self.release(cut)

    def describe(self) -> dict[str, str]:
        """Each emulated engine version next to the real engine that serves it."""
        facts = {"target": "emulator", "emulator.endpoint": self.info["endpoint_url"],
                 "emulator.region": str(self.info["region"]), "emulator.dns_ttl_s": str(self.dns_ttl)}
        for engine, versions in self.controls().status()["engines"].items():
            facts[f"engine.{engine}"] = f"{versions['emulated']} (emulated on {versions['runs_on']})"
        return facts

    def close(self) -> None:
        from harness.emulator import daemon

        try:
            daemon.down(self.state_dir)
        finally:
            os.close(self.info["tie_fd"])


@dataclass(frozen=True)
class AllowedCluster:
    """A cluster named in the profile, with where its password comes from (never the file)."""

    identifier: str
    region: str
    password_env: str
    user: str = "postgres"
    database: str = "postgres"
    may_rewind: bool = False  # Backtrack rewinds the cluster in place: only with the user's consent
    may_switch_over: bool = False  # a Blue/Green switchover renames the cluster: only with the user's consent
    blue_green_deployment: str | None = None  # an existing deployment of this cluster, taken as it is


@dataclass
class AwsEnvironment(Environment):
    """Existing clusters on real AWS (or any RDS endpoint), touched only when allowed."""

    profile: Path | None = None
    region: str | None = None
    endpoint_url: str | None = None  # for testing the safety rules against the emulator
    dry_run: bool = False
    name: str = "aws"

    def __post_init__(self) -> None:
        profile = load_profile(self.profile) if self.profile else Profile([], None)
        self.allowed, self.creation, self.global_allowed = profile.clusters, profile.creation, profile.global_clusters
        if self.region is None:
            self.region = self.allowed[0].region if self.allowed else os.environ.get("AWS_REGION", "us-east-1")

    def rds(self, region: str | None = None) -> Any:
        return boto3.client("rds", region_name=region or self.region, endpoint_url=self.endpoint_url)

    def provide(self, requirement: ClusterRequirement, purpose: str) -> ClusterUnderTest:
        candidates, engines = [], []
        for entry in self.allowed or []:
            cluster = AuroraCluster(self.rds(entry.region), entry.identifier)  # each in its own Region
            described = cluster.describe()
            if described["Engine"] != requirement.engine:
                continue
            engines.append(entry)
            readers = sum(not m["IsClusterWriter"] for m in described["DBClusterMembers"])
            if readers >= requirement.readers and described.get("BacktrackWindow", 0) >= requirement.backtrack_window_s:
                candidates.append((entry, cluster))
        if not candidates:
            names = ", ".join(e.identifier for e in self.allowed) or "none (no --profile given)"
            if not engines:
                raise EngineNotAllowed(f"the profile allows no {requirement.engine} cluster (allowed clusters: "
                                       f"{names}); this scenario's {requirement.engine} example is skipped")
            raise TargetUnavailable(
                f"no allowed {requirement.engine} cluster has {requirement.readers} readers; allowed clusters: "
                f"{names}. Name a suitable cluster in the profile to run this scenario on AWS.")
        entry, cluster = candidates[0]
        password = os.environ.get(entry.password_env)
        if password is None:
            raise TargetUnavailable(f"the password for {entry.identifier} is read from ${entry.password_env}, "
                                    f"which is not set")
        return ClusterUnderTest(cluster, dialect_for(requirement.engine),
                                Credentials(entry.user, password, entry.database), created=False)

    def creation_policy(self) -> CreationPolicy:
        if self.creation is None:
            where = self.profile or "a profile (--profile)"
            raise TargetUnavailable(
                f"the profile does not let the harness create clusters (a restored cluster or a green environment "
                f"is billable): add a [create] table with name_prefix and instance_class to {where}")
        return self.creation

    def check_may_rewind(self, cut: ClusterUnderTest) -> None:
        entry = next((c for c in self.allowed if c.identifier == cut.identifier), None)
        if entry is None or not entry.may_rewind:
            raise TargetUnavailable(f"the profile does not let the harness rewind {cut.identifier} (a backtrack "
                                    f"discards every change after its point, on the real cluster): add may_rewind = "
                                    f"true to its [[clusters]] entry to allow it")

    def check_may_switch_over(self, cut: ClusterUnderTest) -> None:
        entry = self._entry(cut)
        if entry is None or not entry.may_switch_over:
            raise TargetUnavailable(f"the profile does not let the harness switch {cut.identifier} over (a Blue/Green "
                                    f"switchover renames it and cannot be undone): add may_switch_over = true to its "
                                    f"[[clusters]] entry to allow it")

    def blue_green_deployment(self, cut: ClusterUnderTest) -> str | None:
        entry = self._entry(cut)
        return entry.blue_green_deployment if entry is not None else None

    def _entry(self, cut: ClusterUnderTest) -> AllowedCluster | None:
        return next((c for c in self.allowed if c.identifier == cut.identifier), None)

    def provide_global(self, requirement: ClusterRequirement, purpose: str) -> GlobalUnderTest:
        """The first global database the profile names whose engine is the scenario's, with its
        primary and a secondary that has instances, both named in the profile (never created)."""
        by_name = {entry.identifier: entry for entry in self.allowed}
        for entry in self.global_allowed:
            described = self.rds(entry.region).describe_global_clusters(
                GlobalClusterIdentifier=entry.identifier)["GlobalClusters"][0]
            if described["Engine"] != requirement.engine:
                continue
            members = {m["DBClusterArn"].rsplit(":", 1)[-1]: m for m in described["GlobalClusterMembers"]}
            primary = next((name for name, m in members.items() if m["IsWriter"]), None)
            secondary = next((name for name, m in members.items() if not m["IsWriter"] and name in by_name), None)
            if primary not in by_name or secondary is None:
                raise TargetUnavailable(f"global database {entry.identifier}: name its primary ({primary}) and a "
                                        f"secondary with instances in the profile's [[clusters]] to run this on AWS")
            cuts = {}
            for role, name in ((PRIMARY, primary), (SECONDARY, secondary)):
                allowed = by_name[name]
                password = os.environ.get(allowed.password_env)
                if password is None:
                    raise TargetUnavailable(f"the password for {name} is read from ${allowed.password_env}, "
                                            f"which is not set")
                cuts[role] = ClusterUnderTest(AuroraCluster(self.rds(allowed.region), name),
                                              dialect_for(requirement.engine),
                                              Credentials(allowed.user, password, allowed.database), created=False)
            regions = {role: by_name[cuts[role].identifier].region for role in cuts}
            database = GlobalDatabase(entry.identifier, {regions[r]: cuts[r].cluster.rds for r in (PRIMARY, SECONDARY)},
                                      {regions[r]: cuts[r].identifier for r in (PRIMARY, SECONDARY)})
            return GlobalUnderTest(database, cuts, regions, created=False)
        raise GlobalDatabaseNotAllowed(f"the profile names no {requirement.engine} global database ([[global_clusters]]"
                                       f"); this scenario's {requirement.engine} example is skipped")

    def engines(self) -> list[str]:
        """The engines of the clusters the profile allows (read from DescribeDBClusters), so a run on
        AWS takes each scenario once per engine the user has a cluster of."""
        found = {AuroraCluster(self.rds(entry.region), entry.identifier).describe()["Engine"] for entry in self.allowed}
        return [e for e in ENGINES if e in found]

    def describe(self) -> dict[str, str]:
        return {"target": "aws", "aws.region": str(self.region),
                "aws.allowed_clusters": ",".join(e.identifier for e in self.allowed)}


@dataclass(frozen=True)
class AllowedGlobalCluster:
    """A global database named in the profile: its switchover (switched back at the end) is allowed."""

    identifier: str
    region: str  # where to ask DescribeGlobalClusters


@dataclass(frozen=True)
class Profile:
    clusters: list[AllowedCluster]
    creation: CreationPolicy | None  # None: the harness may create nothing
    global_clusters: list[AllowedGlobalCluster] = field(default_factory=list)


def load_profile(path: Path) -> Profile:
    """Read the clusters a user allows the harness to touch, and what it may create.

    [[clusters]]
    identifier = "orders-staging"
    region = "eu-west-1"
    password_env = "ORDERS_STAGING_DB_PASSWORD"
    user = "gameday"
    may_switch_over = true         # optional: a Blue/Green switchover of it (renames it; not undone)
    blue_green_deployment = "bgd-..."  # optional: an existing deployment of it, taken instead of creating one

    [create]                       # optional: restored clusters, green environments (billable)
    name_prefix = "gameday-"
    instance_class = "db.r6g.large"

    [[global_clusters]]            # optional: a global database whose members are named above
    identifier = "orders-global"
    region = "eu-west-1"
    """
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetUnavailable(f"cannot read profile {path}: {exc}") from exc
    return Profile(_allowed_clusters(path, data), _creation_policy(path, data.get("create")),
                   _allowed_global_clusters(path, data))


def _allowed_global_clusters(path: Path, data: dict[str, Any]) -> list[AllowedGlobalCluster]:
    allowed = []
    for index, entry in enumerate(data.get("global_clusters", []), 1):
        missing = [k for k in ("identifier", "region") if k not in entry]
        if missing:
            raise TargetUnavailable(f"profile {path}: global cluster #{index} lacks {', '.join(missing)}")
        allowed.append(AllowedGlobalCluster(entry["identifier"], entry["region"]))
    return allowed


def _creation_policy(path: Path, entry: Any) -> CreationPolicy | None:
    if entry is None:
        return None
    missing = [k for k in ("name_prefix", "instance_class") if not isinstance(entry, dict) or not entry.get(k)]
    if missing:
        raise TargetUnavailable(f"profile {path}: [create] lacks {', '.join(missing)}")
    if not NAME_PREFIX.fullmatch(entry["name_prefix"]):
        raise TargetUnavailable(f"profile {path}: [create] name_prefix {entry['name_prefix']!r} must start with a "
                                f"lowercase letter and hold only lowercase letters, digits and single hyphens")
    return CreationPolicy(entry["name_prefix"], entry["instance_class"])


def _allowed_clusters(path: Path, data: dict[str, Any]) -> list[AllowedCluster]:
    allowed = []
    for index, entry in enumerate(data.get("clusters", []), 1):
        missing = [k for k in ("identifier", "region", "password_env") if k not in entry]
        if missing:
            raise TargetUnavailable(f"profile {path}: cluster #{index} lacks {', '.join(missing)}")
        if "password" in entry:
            raise TargetUnavailable(f"profile {path}: cluster #{index} holds a password; give password_env, the "
                                    f"name of an environment variable, instead")
        allowed.append(AllowedCluster(**{k: entry[k] for k in entry if k in AllowedCluster.__dataclass_fields__}))
    return allowed


def check_engines(engines: list[str]) -> list[str]:
    """The engines a run was asked for, in the usual order, each known; the error names the others."""
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise TargetUnavailable(f"unknown engine {', '.join(unknown)}: the engines are {', '.join(ENGINES)}")
    return [e for e in ENGINES if e in engines]


def _all_available(cluster: AuroraCluster) -> bool:
    """The cluster and every instance available (a secondary has no writer to wait for)."""
    members = cluster.members()
    return cluster.describe()["Status"] == "available" and bool(members) and all(
        m.status == "available" for m in members)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"-+", "-", slug) or "scenario"
