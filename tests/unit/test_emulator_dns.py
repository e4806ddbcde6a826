"""The emulator's hosts file (harness.emulator.dns): every name it serves, rewritten in place."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from harness.drivers.names import AuroraNames
from harness.emulator.dns import SIZE, HostsFile, hosts_lines
from harness.emulator.models import DBCluster, DBInstance
from harness.emulator.operations.state import RegionStore


def _store() -> RegionStore:
    store = RegionStore()
    cluster = DBCluster(identifier="prod", region="us-east-1", cluster_address="127.44.1.1",
                        reader_address="127.44.1.2")
    cluster.instances["prod-1"] = DBInstance(identifier="prod-1", address="127.44.1.20")
    store.region("us-east-1").clusters["prod"] = cluster
    return store


def _names(path: Path) -> dict[str, str]:
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {fields[1]: fields[0] for fields in pairs}


def test_every_endpoint_and_instance_is_named_as_the_wrapper_expects() -> None:
    names = AuroraNames("prod", "us-east-1")
    lines = hosts_lines(_store())
    assert "127.0.0.1 localhost" in lines
    assert f"127.44.1.1 {names.cluster_endpoint}" in lines
    assert f"127.44.1.2 {names.reader_endpoint}" in lines
    assert f"127.44.1.20 {names.instance('prod-1')}" in lines


def test_a_rename_rewrites_the_same_file_in_place_at_a_fixed_size(tmp_path: Path) -> None:
    store, path = _store(), tmp_path / "hosts"
    hosts = HostsFile(path, store)
    assert hosts.refresh() and not hosts.refresh()  # unchanged names: no write
    inode, names = os.stat(path).st_ino, AuroraNames("prod", "us-east-1")
    assert _names(path)[names.instance("prod-1")] == "127.44.1.20"
    # As a switchover does: the name moves to another instance's address; a name disappears.
    cluster = store.region("us-east-1").clusters["prod"]
    cluster.instances = {"prod-1": DBInstance(identifier="prod-1", address="127.44.2.20")}
    cluster.reader_address = ""
    assert hosts.refresh()
    assert os.stat(path).st_ino == inode and os.stat(path).st_size == SIZE  # a bind mount still sees it
    assert _names(path)[names.instance("prod-1")] == "127.44.2.20"
    assert names.reader_endpoint not in _names(path)


def test_the_padding_is_not_a_name(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    HostsFile(path, _store()).refresh()
    text = path.read_text()
    assert len(text.splitlines()) == len(hosts_lines(_store())) + 1  # one comment line pads it
    assert socket.inet_aton(_names(path)[AuroraNames("prod", "us-east-1").cluster_endpoint])
