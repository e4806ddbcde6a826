"""Background jobs: the asynchronous half of long RDS operations."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("harness.emulator")


class Jobs:
    """Runs each long operation in its own thread and can wait for all of them."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, name: str, fn: Callable[..., Any], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                fn(*args)
            except Exception:
                log.exception("job %r failed", name)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def running(self) -> list[str]:
        with self._lock:
            return [t.name for t in self._threads if t.is_alive()]

    def wait(self, timeout: float = 60.0) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
