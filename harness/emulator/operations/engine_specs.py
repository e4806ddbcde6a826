"""The Aurora engines the API offers, and what the emulator runs each on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSpec:
    """An Aurora engine as the API presents it, and what the emulator runs it on."""

    port: int
    default_version: str
    version_prefix: str  # versions the emulator can serve
    parameter_group: str
    master_user_max: int
    reserved_users: frozenset[str]


ENGINES = {
    "aurora-postgresql": EngineSpec(5432, "15.10", "15.", "default.aurora-postgresql15", 63,
                                    frozenset({"rdsadmin"})),  # "postgres", the console's default, is allowed
    "aurora-mysql": EngineSpec(3306, "8.0.mysql_aurora.3.05.2", "8.0.mysql_aurora.3.", "default.aurora-mysql8.0",
                               16, frozenset({"rdsadmin", "root", "mariadb.sys"})),
}
# Parameters only one engine takes, and how AWS words the refusal for the other.
ENGINE_ONLY_PARAMETERS = {
    "BacktrackWindow": ("aurora-mysql", "Backtrack is not supported for the {engine} engine."),
    "EnableLimitlessDatabase": ("aurora-postgresql", "Limitless Database is not supported for the {engine} engine."),
}
