"""Run the test suite as three streams at once: the emulator's own tests, and the game days
end to end in two halves (with the load and unit tests).

Most of the suite waits on real clusters (engines starting, failovers, holds, Locust runs): on two
cores the machine is busy well under half the time with one stream, so three streams finish in
little more than a third of the time of one. They cannot meet: each test module's clusters live on
loopback networks 127.<net>.x.y of its own (see each module), never shared by two modules. Each
stream's output is kept and shown whole once all are done, then one summary line per stream; the
exit status is non-zero if any stream failed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

# Evened out by the durations each stream prints (its slowest tests: where the time goes, on any machine).
DURATIONS = ["--durations=15"]
GAME_DAYS = ["tests/e2e/test_gameday.py", "tests/e2e/test_blue_green_game_day.py", "tests/e2e/test_restore.py",
             "tests/e2e/test_negative_control.py", "tests/e2e/test_report.py"]
STREAMS: dict[str, list[str]] = {
    "emulator": ["tests/emulator"],
    "game days": GAME_DAYS,
    "harness": ["tests/e2e", "tests/load", "tests/unit", *(f"--ignore={path}" for path in GAME_DAYS)],
}


def main(extra: list[str]) -> int:
    logs = Path(tempfile.mkdtemp(prefix="gameday-tests-"))
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def stop(signum: int, _frame: FrameType | None) -> None:
        for process, _ in running.values():
            process.send_signal(signal.SIGINT)  # pytest tears its fixtures (and clusters) down
        for process, _ in running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(logs, ignore_errors=True)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for name, paths in STREAMS.items():
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            running[name] = (subprocess.Popen([sys.executable, "-m", "pytest", *paths, *DURATIONS, *extra],
                                              stdout=out, stderr=subprocess.STDOUT), log)
        print(f"stream {name}: pytest {' '.join(paths)}", flush=True)
    codes = {name: process.wait() for name, (process, _) in running.items()}
    outputs = {name: log.read_text(errors="replace") for name, (_, log) in running.items()}
    shutil.rmtree(logs, ignore_errors=True)
    for name, output in outputs.items():
        print(f"\n{'=' * 30} stream {name} {'=' * 30}", flush=True)
        sys.stdout.write(output)
    print()
    for name, output in outputs.items():
        lines = [line for line in output.splitlines() if line.strip()]
        print(f"stream {name}: exit {codes[name]}: {lines[-1] if lines else 'no output'}")
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
