"""Loopback address plan: every endpoint, engine and replication link gets its own 127.x.y.z.

Why distinct addresses on one port: Aurora gives each endpoint its own DNS name on the
cluster's port, and Aurora-aware drivers build instance hosts from a pattern with a single
port. All of 127.0.0.0/8 is local on Linux, so no set-up is needed.

Each cluster owns one /24: 127.<net>.<cluster slot>.0/24; 127.<net>.0.0/24 holds the global
clusters' writer endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

CLUSTER_ENDPOINT = 1
READER_ENDPOINT = 2
CUSTOM_ENDPOINTS = range(3, 20)
INSTANCE_ENDPOINTS = 20
# A cluster renamed by a Blue/Green switchover (`-old<n>`) gets new cluster and reader endpoints: its
# former ones stay with the names, now the new production cluster's. Pairs at .40/.41, .42/.43 ...
RENAMED_ENDPOINTS = range(40, 60, 2)
ENGINES = 60
GLOBAL_LINK = 90  # where a Global Database secondary replicates from its primary Region
READER_LINKS = 100
STORAGE_LINKS = 140
MAX_INSTANCES = 16  # Aurora: one writer and up to 15 readers


@dataclass(frozen=True)
class ClusterAddresses:
    """The address block of one cluster."""

    net: int
    slot: int

    def _host(self, last: int) -> str:
        return f"127.{self.net}.{self.slot}.{last}"

    @property
    def cluster_endpoint(self) -> str:
        return self._host(CLUSTER_ENDPOINT)

    @property
    def reader_endpoint(self) -> str:
        return self._host(READER_ENDPOINT)

    def custom_endpoint(self, index: int) -> str:
        if index not in range(len(CUSTOM_ENDPOINTS)):
            raise ValueError("no free custom endpoint address")
        return self._host(CUSTOM_ENDPOINTS[index])

    def renamed_endpoints(self, index: int) -> tuple[str, str]:
        """The `index`th (cluster endpoint, reader endpoint) pair for this block's cluster once renamed."""
        if index not in range(len(RENAMED_ENDPOINTS)):
            raise ValueError("no free address for a renamed cluster's endpoints")
        return self._host(RENAMED_ENDPOINTS[index]), self._host(RENAMED_ENDPOINTS[index] + 1)

    def instance_endpoint(self, index: int) -> str:
        return self._host(INSTANCE_ENDPOINTS + self._check(index))

    def engine(self, index: int) -> str:
        return self._host(ENGINES + self._check(index))

    def reader_link(self, index: int) -> str:
        return self._host(READER_LINKS + self._check(index))

    def storage_link(self, node: int) -> str:
        return self._host(STORAGE_LINKS + node)

    @property
    def global_link(self) -> str:
        """The inter-Region link a Global Database secondary replicates through."""
        return self._host(GLOBAL_LINK)

    @staticmethod
    def _check(index: int) -> int:
        if not 0 <= index < MAX_INSTANCES:
            raise ValueError(f"instance slot {index} out of range")
        return index


def global_writer_endpoint(net: int, index: int) -> str:
    """A global cluster's writer endpoint: 127.<net>.0.<index> (block 0 is no cluster's)."""
    if not 1 <= index <= 254:
        raise ValueError(f"global cluster slot {index} out of range")
    return f"127.{net}.0.{index}"


def first_free(used: set[int], limit: int) -> int:
    """Lowest slot not in `used`; slots of deleted resources are reused."""
    for slot in range(limit):
        if slot not in used:
            return slot
    raise ValueError("no free slot")
