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

from harness.drivers import DRIVERS, PLAIN

PROJECT = Path(__file__).resolve().parents[2]
WORKLOADS = PROJECT / "load"
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
        return settings


def take_password(environ: MutableMapping[str, str]) -> str:
    """Read the password and remove it from the environment, so nothing started later inherits it."""
    if PASSWORD not in environ:
        raise LoadConfigurationError(f"{PASSWORD} is not set: the load cannot log in")
    return environ.pop(PASSWORD)


def locustfile(workload: str) -> Path:
    """`load/<workload>.py` ("write-heavy" is `load/write_heavy.py`), or a locustfile's own path
    (a workload of your own, ending in .py); the error lists the workloads in `load/`."""
    path = Path(workload).resolve() if workload.endswith(".py") else WORKLOADS / f"{workload.replace('-', '_')}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.stem.replace("_", "-") for p in WORKLOADS.glob("*.py")))
        raise LoadConfigurationError(f"no workload {workload!r} in {WORKLOADS}; there are: {known}")
    return path
