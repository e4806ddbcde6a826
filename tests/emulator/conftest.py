"""Fixtures for tests of the emulator itself: one real emulator per session, real boto3, real psycopg."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.emulator.emulator import Emulator
from tests.emulator.support import (
    NET,
    Cluster,
    create_cluster,
    delete_cluster,
    running_emulator,
)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with running_emulator(NET, "emulator") as emu:
        yield emu


@pytest.fixture(scope="session")
def rds(emulator: Emulator) -> Any:
    return emulator.client()


@pytest.fixture
def cluster_factory(rds: Any) -> Iterator[Callable[..., Cluster]]:
    """Create clusters for a test and delete them afterwards (so engines do not pile up)."""
    made: list[Cluster] = []

    def make(tiers: list[int], **kwargs: Any) -> Cluster:
        cluster = create_cluster(rds, tiers, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.wait_settled()
        delete_cluster(cluster)
