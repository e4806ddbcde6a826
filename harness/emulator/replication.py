"""Where replication stands in a cluster: the engine-neutral answers engines give and Aurora's
topology functions (`aurora_replica_status()`, `information_schema.replica_host_status`,
`aurora_show_volume_status()`) are built from.

Engines fill in a `ReplicationSnapshot` (`EngineCluster.replication_snapshot()`) with their own
log positions (PostgreSQL LSNs, MariaDB GTID sequence numbers, both as integers); the SQL
surface (`surface.py`) turns it into `ReplicaStatus` rows, and the fabric's MySQL endpoints
serve those rows as Aurora MySQL does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

MASTER_SESSION_ID = "MASTER_SESSION_ID"  # the writer's session_id in aurora_replica_status()


@dataclass(frozen=True)
class VolumeStatus:
    """`aurora_show_volume_status()` / `SHOW VOLUME STATUS`: index ranges for disk and node faults."""

    disks: int
    nodes: int


@dataclass(frozen=True)
class ReplicaStatus:
    """One row of `aurora_replica_status()` (and what `information_schema.replica_host_status` needs).

    LSNs are byte positions in the writer's log (PostgreSQL's LSN as an integer); None is SQL NULL.
    """

    server_id: str
    session_id: str
    durable_lsn: int | None = None
    highest_lsn_rcvd: int | None = None
    current_read_lsn: int | None = None
    cur_replay_latency_in_usec: int | None = None
    active_txns: int | None = None
    is_current: bool | None = None
    last_transport_error: int = 0
    last_error_timestamp: datetime | None = None
    last_update_timestamp: datetime | None = None
    feedback_xmin: int | None = None
    feedback_epoch: int | None = None
    replica_lag_in_msec: float | None = None
    log_stream_speed_in_kib_per_second: float | None = None
    log_buffer_sequence_number: int | None = None
    oldest_read_view_trx_id: int | None = None
    oldest_read_view_lsn: int | None = None
    pending_read_ios: int = 0
    read_ios: int = 0
    iops: int = 0
    cpu: float = 0.0

    @property
    def is_writer(self) -> bool:
        return self.session_id == MASTER_SESSION_ID

    def to_json(self) -> dict[str, Any]:
        """JSON-able: timestamps as ISO 8601 strings."""
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ReaderPosition:
    """Where one reader stands, as its engine reports it."""

    received: int | None = None  # highest log position received from the writer
    replayed: int | None = None  # highest log position applied (visible to its sessions)
    replay_latency_us: int | None = None
    feedback_xmin: int | None = None
    applied_all_received: bool = False  # idle: nothing received is still waiting to be applied

    @property
    def applied(self) -> int | None:
        """How far the reader is current, for replica lag."""
        if self.applied_all_received and self.received is not None:
            return max(self.received, self.replayed or 0)
        return self.replayed


@dataclass(frozen=True)
class ReplicationSnapshot:
    """What the engine says about replication right now (engines implement `replication_snapshot()`)."""

    durable: int | None = None  # acknowledged by the cluster volume's write quorum
    written: int | None = None  # the writer's own log end
    active_txns: int | None = None
    readers: Mapping[str, ReaderPosition] = field(default_factory=dict)


__all__ = ["MASTER_SESSION_ID", "ReaderPosition", "ReplicaStatus", "ReplicationSnapshot", "VolumeStatus"]
