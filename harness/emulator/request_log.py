"""Which RDS API calls reached the emulator: operation names, never parameter values.

A dry run must touch nothing. The API server records every call it answers (after
authentication: the region comes from the SigV4 credential scope) in a bounded log, so a test
can ask the emulator afterwards whether anything but reads reached it (`is_mutating`).
"""

from __future__ import annotations

import collections
import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ENTRIES = 10_000
READ_ONLY_PREFIXES = ("Describe", "List", "Download")


def is_mutating(operation: str) -> bool:
    """Can this RDS operation change anything? Everything but Describe*, List* and Download* can."""
    return not operation.startswith(READ_ONLY_PREFIXES)


@dataclass(frozen=True)
class ApiCall:
    """One RDS API call: when (UTC), in which region, which operation; `index` counts every call
    the emulator has received, so it keeps increasing when old entries fall out or are cleared."""

    index: int
    time: datetime
    region: str
    operation: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "time": self.time.isoformat(), "region": self.region,
                "operation": self.operation}


class RequestLog:
    """The last `capacity` API calls, oldest first; thread-safe (the API server is threaded)."""

    def __init__(self, capacity: int = MAX_ENTRIES):
        self._entries: collections.deque[ApiCall] = collections.deque(maxlen=capacity)
        self._indexes = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, region: str, operation: str) -> ApiCall:
        with self._lock:
            call = ApiCall(next(self._indexes), datetime.now(UTC), region, operation)
            self._entries.append(call)
        return call

    def entries(self, after: int | None = None) -> list[ApiCall]:
        """The calls still held, or only those after the call numbered `after`."""
        with self._lock:
            return [c for c in self._entries if after is None or c.index > after]

    def clear(self) -> int:
        """Forget every call held; returns how many. Numbering goes on where it was."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


__all__ = ["MAX_ENTRIES", "ApiCall", "RequestLog", "is_mutating"]
