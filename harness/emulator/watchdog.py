"""Watchdog: `python -m harness.emulator.watchdog <pipe-fd> <owner-marker>`.

Blocks on a pipe whose write end only the owner holds. The read returns when the owner is
gone, however it died (SIGKILL included); the watchdog then kills every process carrying
the owner's marker, so a killed game day or test run leaves no engine behind.
"""

from __future__ import annotations

import os
import signal
import sys

from harness.emulator.processes import kill_marked


def main(argv: list[str]) -> int:
    fd, marker = int(argv[1]), argv[2]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            if os.read(fd, 1) == b"":
                break
        except InterruptedError:
            continue
    kill_marked(lambda m: m == marker)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
