"""The emulator's DNS: one hosts file naming every endpoint and instance it serves, kept current.

Aurora-aware drivers watch DNS. The AWS Advanced Python Wrapper's Blue/Green plugin decides a
switchover is over when every blue instance name resolves to a new address (the green instance
that took the name) and every green name has stopped resolving; until then it keeps rerouting.
The emulator's endpoints are loopback addresses with no names, so it writes the names it would
publish (`harness.drivers.names.AuroraNames`: cluster, reader and instance names of every cluster
in every Region) to a hosts file, which a child process running in a private mount namespace
(`harness.drivers.names.namespace_command`) bind-mounts over /etc/hosts.

A bind mount pins the file's inode, so the file is rewritten in place, never replaced: always the
same size (padded with one comment line) and in a single `pwrite`, so a lookup never reads a half
file. It is rewritten whenever names or addresses change: the emulator refreshes it every
`REFRESH_S` (creations, deletions), and a Blue/Green switchover refreshes it right after the
rename, before connections are allowed again, as Aurora's DNS changes during the switchover.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from harness.drivers.names import AuroraNames

log = logging.getLogger("harness.emulator")

SIZE = 256 * 1024  # bytes: about 3,000 names; the file grows (once) if ever they do not fit
REFRESH_S = 0.2
LOCALHOST = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]


def hosts_lines(store: Any) -> list[str]:
    """`<address> <name>` for every cluster endpoint, reader endpoint and instance, by Region."""
    lines = []
    with store.lock:
        for region_name, region in sorted(store.regions.items()):
            for cluster in list(region.clusters.values()):
                names = AuroraNames(cluster.identifier, region_name)
                if cluster.cluster_address:
                    lines.append(f"{cluster.cluster_address} {names.cluster_endpoint}")
                if cluster.reader_address:
                    lines.append(f"{cluster.reader_address} {names.reader_endpoint}")
                lines += [f"{i.address} {names.instance(i.identifier)}" for i in cluster.instances.values()
                          if i.address]
    return LOCALHOST + sorted(lines, key=lambda line: line.split(" ", 1)[1])


class HostsFile:
    """The hosts file at `path`, rewritten in place when the names it holds change."""

    def __init__(self, path: Path, store: Any):
        self.path, self.store = path, store
        self._lock = threading.Lock()
        self._written: str | None = None
        self._size = SIZE

    def refresh(self) -> bool:
        """Write the current names if they changed; True when the file changed."""
        text = "\n".join(hosts_lines(self.store)) + "\n"
        with self._lock:
            if text == self._written:
                return False
            data = text.encode()
            if len(data) + 2 > self._size:
                self._size = 2 * (len(data) + 2)
                log.warning("hosts file %s grows to %d bytes", self.path, self._size)
            padding = self._size - len(data) - 1
            data += b"#" + b" " * (padding - 1) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, data, 0)
            finally:
                os.close(fd)
            self._written = text
            return True
