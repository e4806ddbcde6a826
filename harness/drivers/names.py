"""Aurora-style DNS names for an emulated cluster, resolvable only inside one child process.

(Used by the game day's AWS Advanced Python Wrapper probe and by tests/emulator/test_aws_wrapper.py.)

The emulator gives every endpoint its own loopback address on the cluster's port, but no DNS
names. Aurora-aware clients (the AWS Advanced Python Wrapper, the JDBC wrapper, ...) need
names: they recognise an Aurora cluster by its endpoint's shape
(`<cluster>.cluster-<id>.<region>.rds.amazonaws.com`) and build each instance's host from a
pattern (`?.<id>.<region>.rds.amazonaws.com`, "?" replaced by the instance identifier).

`AuroraNames` makes those names for a cluster from DescribeDBClusters/DescribeDBInstances, and
`namespace_command` runs a command in a private mount namespace where a generated hosts file
is bind-mounted over /etc/hosts: the names resolve for that process and its children only;
nothing on the machine changes, and nothing is left behind when it exits. As root, `unshare
--mount` is enough; otherwise an unprivileged user namespace (`unshare -rm`) is used.

The names map to the emulator's endpoint addresses as DescribeDBClusters/DescribeDBInstances
give them: the cluster and reader names to the endpoint proxies, not (as Aurora's DNS CNAMEs
do) to the current writer's or a reader's instance address.

A file written here is a snapshot. The emulator also keeps a live one of every name it serves
(harness.emulator.dns, `Emulator.hosts_file`), which changes as Aurora's DNS does (a Blue/Green
switchover moves blue's names to green's addresses and removes green's): pass that one to
`namespace_command` for a client that must see names move.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOMAIN_ID = "gameday"  # stands for the 12-character account/region hash in real endpoint names

# Bind-mount the hosts file given as $0 over /etc/hosts, then become the command ("$@").
_BIND_AND_EXEC = 'mount --bind "$0" /etc/hosts && exec "$@"'


@dataclass(frozen=True)
class AuroraNames:
    """The DNS names of one cluster's endpoints and instances, and the addresses they stand for."""

    cluster: str
    region: str = "us-east-1"
    domain_id: str = DOMAIN_ID
    addresses: dict[str, str] = field(default_factory=dict)  # name -> loopback address

    @property
    def domain(self) -> str:
        return f"{self.domain_id}.{self.region}.rds.amazonaws.com"

    @property
    def cluster_endpoint(self) -> str:
        return f"{self.cluster}.cluster-{self.domain}"

    @property
    def reader_endpoint(self) -> str:
        return f"{self.cluster}.cluster-ro-{self.domain}"

    @property
    def instance_pattern(self) -> str:
        """The wrapper's `cluster_instance_host_pattern` for these names."""
        return f"?.{self.domain}"

    def instance(self, identifier: str) -> str:
        return self.instance_pattern.replace("?", identifier)

    @classmethod
    def of(cls, rds: Any, cluster: str, region: str = "us-east-1", domain_id: str = DOMAIN_ID) -> AuroraNames:
        """Names for `cluster` as the emulator describes it now (endpoints and every member)."""
        names = cls(cluster, region, domain_id)
        described = rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
        addresses = {names.cluster_endpoint: described["Endpoint"], names.reader_endpoint: described["ReaderEndpoint"]}
        for member in described["DBClusterMembers"]:
            identifier = member["DBInstanceIdentifier"]
            instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
            addresses[names.instance(identifier)] = instance["Endpoint"]["Address"]
        return cls(cluster, region, domain_id, addresses)

    def hosts_file(self) -> str:
        """/etc/hosts text: localhost as on the machine, then these names."""
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        lines += [f"{address} {name}" for name, address in sorted(self.addresses.items())]
        return "\n".join(lines) + "\n"

    def write_hosts_file(self, path: Path) -> Path:
        path.write_text(self.hosts_file())
        path.chmod(0o644)
        return path


def global_writer_name(global_cluster: dict[str, Any]) -> str:
    """The global writer endpoint's DNS name as AWS shapes it (`<id>.global-<xyz>.global.rds.amazonaws.com`,
    which the AWS Advanced Python Wrapper recognises), for a DescribeGlobalClusters entry: the
    emulator's `Endpoint` is its address."""
    return (f"{global_cluster['GlobalClusterIdentifier']}.global-{global_cluster['GlobalClusterResourceId'][-12:]}"
            f".global.rds.amazonaws.com")


def _unshare_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("unshare (util-linux) is not installed")
    # Private propagation (unshare's default for --mount) keeps the bind mount in the namespace.
    prefix = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix.insert(1, "--map-root-user")
    return prefix


def namespace_command(hosts_file: Path, argv: list[str]) -> list[str]:
    """`argv` run with `hosts_file` as its /etc/hosts, in a mount namespace of its own."""
    return _unshare_prefix() + ["sh", "-c", _BIND_AND_EXEC, str(hosts_file), *argv]


@functools.cache
def namespace_problem() -> str | None:
    """None when `namespace_command` works here, else why not (for a skip message)."""
    probe = Path(f"/tmp/gameday-hosts-probe-{os.getpid()}")
    probe.write_text("127.0.0.1 localhost\n127.9.9.9 gameday-hosts-probe.invalid\n")
    try:
        done = subprocess.run(namespace_command(probe, ["getent", "hosts", "gameday-hosts-probe.invalid"]),
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"cannot run unshare: {exc}"
    finally:
        probe.unlink(missing_ok=True)
    if done.returncode != 0 or "127.9.9.9" not in done.stdout:
        return f"a private /etc/hosts does not work here: {done.stderr.strip() or done.stdout.strip()}"
    return None
