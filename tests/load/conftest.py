"""Real Locust processes, real psycopg, one real emulator cluster for the whole directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.environments import ClusterRequirement, ClusterUnderTest, EmulatorEnvironment
from harness.load.settings import LoadSettings

NET = 56  # 127.61.x.y: apart from the game-day tests' emulators


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterUnderTest]:
    state_dir = Path("/dev/shm") / f"gd-test-load-{os.getpid()}"
    environment = EmulatorEnvironment(state_dir=state_dir, net=NET, dns_ttl=0)
    try:
        cut = environment.provide(ClusterRequirement(readers=1), "locust")
        yield cut
        environment.release(cut)
    finally:
        environment.close()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(cluster: ClusterUnderTest) -> LoadSettings:
    """The cluster as a load sees it (naive client; `dataclasses.replace` for another)."""
    (host, port), (reader_host, reader_port) = cluster.endpoint(), cluster.reader_endpoint()
    return LoadSettings(cluster.dialect.engine, host, port, reader_host, reader_port, cluster.credentials.user,
                        cluster.credentials.database, "naive", "test-load")
