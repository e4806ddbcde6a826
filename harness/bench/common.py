"""What the benchmarks share: progress lines, order statistics, polling, processes and programs."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds the report alone."""
    print(f"... {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics


@dataclass
class Summary:
    """Order statistics of one series (seconds or operations per second, as the caller says)."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    p95: float
    p99: float
    values: list[float] = field(default_factory=list, repr=False)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list: no interpolation between samples."""
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(values: list[float], keep_values: bool = True) -> Summary:
    ordered = sorted(values)
    return Summary(n=len(ordered), min=ordered[0], median=statistics.median(ordered), max=ordered[-1],
                   mean=statistics.fmean(ordered), p95=percentile(ordered, 95), p99=percentile(ordered, 99),
                   values=values if keep_values else [])


def rotated(names: list[str], by: int) -> list[str]:
    """The same names, starting `by` places later: who goes first changes from round to round."""
    by %= len(names)
    return names[by:] + names[:by]


# --------------------------------------------------------------------------- polling


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- processes and programs


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`: the leftover check."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def find_program(name: str, *extra_dirs: Path) -> str | None:
    for directory in extra_dirs:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/usr/local/sbin")
                                       if os.path.exists(f"{d}/{name}")), None)


def program_version(program: str | None) -> str:
    if program is None:
        return "not available"
    out = subprocess.run([program, "--version"], capture_output=True, text=True).stdout.strip()
    first = out.splitlines()[0] if out else "?"
    return first.replace(program, Path(program).name, 1)  # mariadb-slap starts with its own path


@dataclass(frozen=True)
class DbPath:
    """Where a load tool connects, and which processes (if any) proxy that path, for their CPU cost."""

    host: str
    port: int
    proxy_pids: tuple[int, ...] = ()  # the fabric (and its C pump), or pgbouncer

    def proxy_cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.proxy_pids)
