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

ALLOW_TAG = "gameday:allow"
ENGINE_NAMES = {"aurora postgresql": "aurora-postgresql", "aurora mysql": "aurora-mysql"}


class TargetUnavailable(RuntimeError):
    """The target cannot provide what a scenario asks for; the message says what and why."""


class EngineNotAllowed(TargetUnavailable):
    """On AWS, the profile allows no cluster of the scenario's engine: that example is skipped,
    not failed (a team with only Aurora PostgreSQL runs the same features)."""


@dataclass(frozen=True)
class ClusterRequirement:
    """What a scenario needs: engine and number of readers (and optionally their tiers)."""

    engine: str = "aurora-postgresql"
    readers: int = 2
    promotion_tiers: tuple[int, ...] | None = None  # writer first, then readers


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


class Environment:
    """Base: a target that provides clusters and, on the emulator, emulator-only controls."""

    name = "base"
    dry_run = False

    def rds(self) -> Any:
        raise NotImplementedError

    def provide(self, requirement: ClusterRequirement, purpose: str) -> ClusterUnderTest:
        raise NotImplementedError

    def release(self, cut: ClusterUnderTest) -> None:
        """Undo what `provide` created."""

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
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        from harness.emulator import daemon
        from harness.emulator.emulator import default_state_dir

        # Never the user's daemon's state dir: starting an emulator wipes the clusters of its state dir.
        self.state_dir = Path(self.state_dir or default_state_dir().with_name("gameday-run"))
        self.info = daemon.up(self.state_dir, port=0, net=self.net, dns_ttl=self.dns_ttl, tied=True)

    def rds(self) -> Any:
        return boto3.client("rds", endpoint_url=self.info["endpoint_url"], region_name=self.info["region"],
                            aws_access_key_id=self.info["aws_access_key_id"],
                            aws_secret_access_key=self.info["aws_secret_access_key"])

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
        rds.create_db_cluster(DBClusterIdentifier=identifier, Engine=requirement.engine,
                              MasterUsername=credentials.user, MasterUserPassword=credentials.password,
                              DatabaseName=credentials.database, Tags=[{"Key": ALLOW_TAG, "Value": "true"}])
        tiers = requirement.promotion_tiers or tuple([1] + list(range(requirement.readers)))
        for index, tier in enumerate(tiers[: requirement.readers + 1]):
            rds.create_db_instance(DBInstanceIdentifier=f"{identifier}-{index + 1}", DBClusterIdentifier=identifier,
                                   Engine=requirement.engine, DBInstanceClass="db.r6g.large", PromotionTier=tier)
        cluster = AuroraCluster(rds, identifier)
        cluster.wait_settled(timeout=180)
        return ClusterUnderTest(cluster, dialect_for(requirement.engine), credentials, created=True)

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

    def describe(self) -> dict[str, str]:
        """Each emulated engine version next to the real engine that serves it."""
        facts = {"target": "emulator", "emulator.endpoint": self.info["endpoint_url"],
                 "emulator.dns_ttl_s": str(self.dns_ttl)}
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


@dataclass
class AwsEnvironment(Environment):
    """Existing clusters on real AWS (or any RDS endpoint), touched only when allowed."""

    profile: Path | None = None
    region: str | None = None
    endpoint_url: str | None = None  # for testing the safety rules against the emulator
    dry_run: bool = False
    name: str = "aws"

    def __post_init__(self) -> None:
        self.allowed = load_profile(self.profile) if self.profile else []
        if self.region is None:
            self.region = self.allowed[0].region if self.allowed else os.environ.get("AWS_REGION", "us-east-1")

    def rds(self) -> Any:
        return boto3.client("rds", region_name=self.region, endpoint_url=self.endpoint_url)

    def provide(self, requirement: ClusterRequirement, purpose: str) -> ClusterUnderTest:
        rds = self.rds()
        candidates, engines = [], []
        for entry in self.allowed or []:
            cluster = AuroraCluster(rds, entry.identifier)
            described = cluster.describe()
            if described["Engine"] != requirement.engine:
                continue
            engines.append(entry)
            readers = sum(not m["IsClusterWriter"] for m in described["DBClusterMembers"])
            if readers >= requirement.readers:
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

    def describe(self) -> dict[str, str]:
        return {"target": "aws", "aws.region": str(self.region),
                "aws.allowed_clusters": ",".join(e.identifier for e in self.allowed)}


def load_profile(path: Path) -> list[AllowedCluster]:
    """Read the clusters a user allows the harness to touch.

    [[clusters]]
    identifier = "orders-staging"
    region = "eu-west-1"
    password_env = "ORDERS_STAGING_DB_PASSWORD"
    user = "gameday"
    """
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetUnavailable(f"cannot read profile {path}: {exc}") from exc
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


def parse_engine(words: str) -> str:
    """'Aurora PostgreSQL' -> 'aurora-postgresql' (the scenario's wording to the API's name)."""
    key = words.strip().lower()
    if key not in ENGINE_NAMES:
        raise TargetUnavailable(f"unknown engine {words!r}; scenarios may ask for: "
                                f"{', '.join(n.title() for n in ENGINE_NAMES)}")
    return ENGINE_NAMES[key]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"-+", "-", slug) or "scenario"
