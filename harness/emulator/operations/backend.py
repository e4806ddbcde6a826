"""The RDS operations the emulator answers, dispatched to the API family that declares each.

Adding an API family (backups, Backtrack, global clusters, Blue/Green) is one module with a
`Family` subclass and one line in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.emulator.api import fault
from harness.emulator.operations.catalog import Catalog
from harness.emulator.operations.backtracks import Backtracks
from harness.emulator.operations.backups import Backups
from harness.emulator.operations.blue_green import BlueGreenDeployments
from harness.emulator.operations.clusters import Clusters
from harness.emulator.operations.common import snake_case
from harness.emulator.operations.endpoints import Endpoints
from harness.emulator.operations.events import Events
from harness.emulator.operations.global_clusters import GlobalClusters
from harness.emulator.operations.family import Family, Parts
from harness.emulator.operations.instances import Instances
from harness.emulator.operations.parameter_groups import ParameterGroups
from harness.emulator.operations.state import Region
from harness.emulator.operations.tags import Tags

FAMILIES: list[type[Family]] = [Clusters, Instances, Endpoints, Events, Tags, Catalog, Backups, Backtracks,
                                GlobalClusters, ParameterGroups, BlueGreenDeployments]

Handler = Callable[[Region, dict[str, Any]], dict[str, Any] | None]


class RdsBackend:
    """Every operation of every family, by its API name; each runs whole under the store's lock."""

    def __init__(self, parts: Parts, families: Sequence[type[Family]] = FAMILIES):
        self.store = parts.store
        self.handlers: dict[str, Handler] = {}
        for family_type in families:
            family = family_type(parts)
            for operation in family.operations:
                if operation in self.handlers:
                    raise ValueError(f"{operation} is declared by two API families")
                handler = getattr(family, snake_case(operation), None)
                if handler is None:
                    raise TypeError(f"{family_type.__name__} declares {operation} but has no "
                                    f"{snake_case(operation)}() method")
                self.handlers[operation] = handler

    def dispatch(self, region_name: str, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
        handler = self.handlers.get(operation)
        if handler is None:
            raise fault("InvalidAction", f"The action {operation} is not supported by the aurora-gameday "
                                         f"emulator.")
        with self.store.lock:
            return handler(self.store.region(region_name), params)

    def region(self, name: str) -> Region:
        """A region's state, for tools that look inside the emulator (benchmarks, tests)."""
        return self.store.region(name)
