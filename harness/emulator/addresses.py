"""Loopback address plan: every endpoint, engine and replication link gets its own 127.x.y.z.

Why distinct addresses on one port: Aurora gives each endpoint its own DNS name on the
cluster's port, and Aurora-aware drivers build instance hosts from a pattern with a single
port. All of 127.0.0.0/8 is local on Linux, so no set-up is needed.

Each cluster owns one /24: 127.<net>.<cluster slot>.0/24.
"""

from __future__ import annotations

from dataclasses import dataclass

CLUSTER_ENDPOINT = 1
READER_ENDPOINT = 2
CUSTOM_ENDPOINTS = range(3, 20)
INSTANCE_ENDPOINTS = 20
ENGINES = 60
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

    def instance_endpoint(self, index: int) -> str:
        return self._host(INSTANCE_ENDPOINTS + self._check(index))

    def engine(self, index: int) -> str:
        return self._host(ENGINES + self._check(index))

    def reader_link(self, index: int) -> str:
        return self._host(READER_LINKS + self._check(index))

    def storage_link(self, node: int) -> str:
        return self._host(STORAGE_LINKS + node)

    @staticmethod
    def _check(index: int) -> int:
        if not 0 <= index < MAX_INSTANCES:
            raise ValueError(f"instance slot {index} out of range")
        return index


def first_free(used: set[int], limit: int) -> int:
    """Lowest slot not in `used`; slots of deleted resources are reused."""
    for slot in range(limit):
        if slot not in used:
            return slot
    raise ValueError("no free slot")
