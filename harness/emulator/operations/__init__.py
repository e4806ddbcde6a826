"""The emulator's control plane, split by API family (moto's one method per action, without a
giant models file): `state` holds the regions, `common` and `engine_specs` what the families
share, one module per family, and `backend` dispatches an operation to its family."""

from harness.emulator.operations.backend import FAMILIES, RdsBackend
from harness.emulator.operations.engine_specs import ENGINES, EngineSpec
from harness.emulator.operations.family import Family, Parts, RuntimeFactory
from harness.emulator.operations.state import Region, RegionStore

__all__ = ["ENGINES", "FAMILIES", "EngineSpec", "Family", "Parts", "RdsBackend", "Region", "RegionStore",
           "RuntimeFactory"]
