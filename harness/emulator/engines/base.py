"""What every engine cluster shares: instances on their own addresses, reader links, processes.

An engine cluster (PostgreSQL's `PgCluster`, MariaDB's `MariaDbCluster`) is the engine side of
one Aurora cluster. The runtime asks it for roles only: start the first writer, add a reader,
fence, promote, follow, rejoin, restart. Readers replicate through a link in the fabric (one
per reader, on its own loopback address), so pointing a link at a new writer is how a reader
follows it, and toxics on the link slow or cut its replication.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from harness.emulator.fabric import FabricError
from harness.emulator.processes import Child, ProcessRegistry


@dataclass
class EngineInstance:
    """The engine side of one DB instance: its server process, files and addresses."""

    identifier: str
    root: Path
    socket_dir: Path  # short: Unix socket paths are limited to 107 bytes
    host: str  # the engine's own loopback address
    port: int
    child: Child | None = None
    role: str = "reader"  # writer | reader

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "engine.log"

    def target(self) -> dict[str, object]:
        """How the fabric reaches this engine."""
        return {"id": self.identifier, "host": self.host, "port": self.port}

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()


@dataclass
class EngineCluster:
    """Shared bookkeeping of an engine cluster; subclasses implement the engine's mechanics."""

    # Does rebooting the writer restart the readers too? (Aurora PostgreSQL yes, Aurora MySQL 2.10+ no.)
    restarts_readers_with_writer: ClassVar[bool] = False
    # Does the engine need client queries rewritten on the way in (so no fast-path endpoints)?
    rewrites_client_queries: ClassVar[bool] = False
    # Process signals for stop modes (smart | fast | immediate | kill).
    STOP_SIGNALS: ClassVar[dict[str, int]] = {"kill": signal.SIGKILL}

    registry: ProcessRegistry
    root: Path
    port: int
    admin_password: str
    fabric: object  # FabricClient
    link_prefix: str
    reader_link_host: Callable[[int], str]  # instance slot -> loopback address of its link
    socket_root: Path  # where instances' Unix sockets live (a short path)
    region_azs: list[str] = field(default_factory=list)
    instances: dict[str, EngineInstance] = field(default_factory=dict)
    slots: dict[str, int] = field(default_factory=dict)  # instance -> address slot
    writer_id: str | None = None

    # --- instances -----------------------------------------------------------------------------
    def new_instance(self, identifier: str, slot: int, host: str) -> EngineInstance:
        instance = EngineInstance(identifier, self.root / "instances" / identifier,
                                  self.socket_root / f"{self.link_prefix}-i{slot}", host, self.port)
        instance.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(instance.socket_dir, ignore_errors=True)
        instance.socket_dir.mkdir(parents=True)
        self.instances[identifier] = instance
        self.slots[identifier] = slot
        return instance

    def writer(self) -> EngineInstance:
        if self.writer_id is None:
            raise LookupError("the cluster has no writer")
        return self.instances[self.writer_id]

    def alive(self, instance: EngineInstance) -> bool:
        return instance.alive()

    def client_rewrites(self, identifier: str) -> dict[str, str]:
        """Query rewrites the client endpoints apply for this instance (none by default)."""
        return {}

    def stop(self, instance: EngineInstance, mode: str = "fast", timeout: float = 30) -> None:
        """Stop an instance's server: smart, fast, immediate, or kill (SIGKILL, a crash)."""
        if instance.child is None:
            return
        instance.child.stop(self.STOP_SIGNALS.get(mode, signal.SIGKILL), timeout=timeout)
        self.registry.forget(instance.child)

    def forget_instance(self, instance: EngineInstance) -> None:
        self._remove_link(self._link_name("rd", instance.identifier))
        shutil.rmtree(instance.root, ignore_errors=True)
        shutil.rmtree(instance.socket_dir, ignore_errors=True)
        self.instances.pop(instance.identifier, None)
        self.slots.pop(instance.identifier, None)

    # --- replication links ---------------------------------------------------------------------
    def _link_name(self, kind: str, name: str) -> str:
        return f"{self.link_prefix}-link-{kind}-{name}"

    def _slot(self, instance: EngineInstance) -> int:
        return self.slots[instance.identifier]

    def _route_reader_link(self, reader: EngineInstance, writer: EngineInstance) -> None:
        """A reader replicates through its own link; pointing the link at a writer makes it follow."""
        route = {"targets": [writer.target()], "policy": "first", "stale": None}
        self.fabric.set_listener(self._link_name("rd", reader.identifier),
                                 self.reader_link_host(self._slot(reader)), self.port, route)

    def _remove_link(self, listener: str) -> None:
        """Links exist only once a writer does; removing one that never existed is fine."""
        try:
            self.fabric.remove_listener(listener)
        except FabricError:
            pass

    def link_names(self) -> list[str]:
        """Replication links that take toxics, as users name them."""
        return [f"reader:{i}" for i in self.instances if i != self.writer_id]

    def link_listener(self, link: str) -> str:
        kind, _, name = link.partition(":")
        if kind == "reader" and name in self.instances and name != self.writer_id:
            return self._link_name("rd", name)
        raise KeyError(f"no replication link {link!r}; the links are {', '.join(self.link_names()) or 'none'}")

    def lag_reader(self, reader: str, milliseconds: int) -> None:
        """Make a reader hold the writer's latest commits `milliseconds` late (negative controls).

        By default its link delays what the writer sends: commits reach it late. Engines whose
        readers must acknowledge commits (MariaDB's semi-sync) delay applying instead.
        """
        self.fabric.add_toxic(self.link_listener(f"reader:{reader}"), "gameday-lag", "latency", stream="downstream",
                              toxicity=1.0, attributes={"latency_ms": milliseconds, "jitter_ms": 0})

    # --- the cluster volume (engines without storage nodes) ----------------------------------------
    def storage_status(self) -> dict[str, str]:
        return {}

    def storage_nodes_in(self, az: str) -> list[str]:
        return []

    def stop_storage_node(self, name: str) -> None:
        raise KeyError(f"no storage node {name!r}: this engine's cluster volume has no storage nodes")

    def start_storage_node(self, name: str) -> None:
        self.stop_storage_node(name)

    def revive_storage_nodes(self) -> list[str]:
        return []

    def destroy(self) -> None:
        """Stop everything and remove the cluster's files."""
        for instance in list(self.instances.values()):
            self.stop(instance, "kill", timeout=10)
            self._remove_link(self._link_name("rd", instance.identifier))
            shutil.rmtree(instance.socket_dir, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def evict_page_cache(data_dir: Path) -> int:
    """Evict an instance's data files from the OS page cache (a node crash's cold restart; a no-op on
    tmpfs, where the emulator's data usually lives); returns the file count."""
    evicted = 0
    for root, _, files in os.walk(data_dir):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                evicted += 1
            except OSError:
                pass
            finally:
                os.close(fd)
    return evicted
