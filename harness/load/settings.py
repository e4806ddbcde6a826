"""How a load learns its cluster: environment variables, never the command line or a file.

The harness starts Locust with these variables set; workers on other machines get the same
variables from whoever starts them (README, "Load"). The password travels only in
`GAMEDAY_LOAD_PASSWORD`: a process's environment is readable by its own user alone, whereas a
command line is visible to everyone through `ps`; the Locust process takes the password out of
its environment as soon as it has read it, and nothing it writes (log, CSV, HTML) contains it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.drivers import AWS_WRAPPER, DRIVERS, PLAIN

PREFIX = "GAMEDAY_LOAD_"
PASSWORD = f"{PREFIX}PASSWORD"
# Set by the harness for the processes it starts, read by `harness.load.recorder` and `.control`:
HISTORY = f"{PREFIX}HISTORY"  # where the master (or the only process) writes the per-second history
STOP_ON_EOF = f"{PREFIX}STOP_ON_EOF"  # "1": stdin is the harness's pipe; its end means stop


class LoadConfigurationError(ValueError):
    """A load cannot start as configured; the message names the variable or workload at fault."""


@dataclass(frozen=True)
class LoadSettings:
    """Everything a database user needs to reach the cluster, except the password."""

    engine: str
    cluster_host: str
    cluster_port: int
    reader_host: str
    reader_port: int
    user: str
    database: str
    behaviour: str = "naive"
    run_id: str = "adhoc"
    # "plain" (psycopg/PyMySQL alone) or "aws-wrapper" (the AWS Advanced Python Wrapper, plugin
    # "failover", over the same driver: `harness.load.behaviours.WrapperSession`).
    driver: str = PLAIN
    # For the wrapper only, where real DNS does not give Aurora's names (the emulator): its
    # `cluster_instance_host_pattern` ("?.<id>.<region>.rds.amazonaws.com") and `cluster_id`.
    instance_pattern: str = ""
    cluster_id: str = ""
    # For the wrapper on a global database only (plugin "gdb_failover" instead of "failover"): its
    # home Region (the primary's) and each Region's instance names ("<region>:?.<domain>,...").
    home_region: str = ""
    global_patterns: str = ""

    def environment(self) -> dict[str, str]:
        return {PREFIX + name.upper(): str(value) for name, value in asdict(self).items()}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> LoadSettings:
        values: dict[str, object] = {}
        for field in fields(cls):
            variable = PREFIX + field.name.upper()
            if variable in environ:
                values[field.name] = int(environ[variable]) if field.type == "int" else environ[variable]
            elif field.default is MISSING:
                raise LoadConfigurationError(f"{variable} is not set: the load does not know its cluster "
                                             f"(README, \"Load\", lists the variables)")
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.driver not in DRIVERS:
            raise LoadConfigurationError(f"{PREFIX}DRIVER is {settings.driver!r}; choose {' or '.join(DRIVERS)}")
        if settings.global_patterns and not settings.home_region:
            raise LoadConfigurationError(f"{PREFIX}GLOBAL_PATTERNS is set without {PREFIX}HOME_REGION: the wrapper's "
                                         f"gdb_failover plugin needs its home Region (the primary's)")
        return settings

    def wrapper_properties(self) -> dict[str, Any]:
        """The AWS Advanced Python Wrapper's properties for these users (`driver` "aws-wrapper"):
        plugin "failover" on one cluster, "gdb_failover" on a global database."""
        if self.driver != AWS_WRAPPER:
            raise LoadConfigurationError(f"{PREFIX}DRIVER is {self.driver!r}: these users do not use the wrapper")
        from harness.drivers import wrapper_connection

        return wrapper_connection.properties(self.instance_pattern, self.cluster_id, home_region=self.home_region,
                                             global_patterns=self.global_patterns)


def take_password(environ: MutableMapping[str, str]) -> str:
    """Read the password and remove it from the environment, so nothing started later inherits it."""
    if PASSWORD not in environ:
        raise LoadConfigurationError(f"{PASSWORD} is not set: the load cannot log in")
    return environ.pop(PASSWORD)


def locustfile(workload: str) -> Path:
    """A locustfile's own path (a workload of your own, ending in .py), else `load/<workload>.py` of the
    current directory (a team's own workloads), else the shipped one ("write-heavy" is
    `write_heavy.py`); the error lists the workloads there are."""
    if workload.endswith(".py"):
        path = Path(workload).resolve()
    else:
        stem = f"{workload.replace('-', '_')}.py"
        own = Path.cwd() / "load" / stem
        path = own if own.is_file() else workload_dir() / stem
    if not path.is_file():
        known = ", ".join(sorted(p.stem.replace("_", "-") for p in workload_dir().glob("*.py") if p.stem != "__init__"))
        raise LoadConfigurationError(f"no workload {workload!r} (looked in ./load and {workload_dir()}); the shipped "
                                     f"workloads are: {known}")
    return path


def workload_dir() -> Path:
    """Where the shipped workloads are: the `harness.workloads` package (`load/` in a checkout)."""
    import harness.workloads

    return Path(harness.workloads.__file__).parent
