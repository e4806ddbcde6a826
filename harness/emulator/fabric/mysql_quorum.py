"""The writer's commit quorum on MariaDB: the cluster volume and the replicas.

* The cluster volume: MariaDB has no storage nodes, so the cluster's six storage nodes are
  virtual: fabric listeners that carry no bytes but take toxics (the engine-neutral
  `fault_injection` module puts its disk-failure stalls and disk-congestion delays there, the
  same toxics it puts on Aurora PostgreSQL's real storage-node links). A statement on the
  writer that makes a transaction durable (an autocommit INSERT/UPDATE/DELETE/REPLACE/LOAD,
  COMMIT of a transaction that wrote, DDL) is held before it reaches MariaDB until 4 of the 6
  nodes take writes again (a stalled or blackholed node does not; re-checked as toxics come,
  go and change phase), then for the 4th-fastest node's acknowledgement delay (latency,
  congestion): the Aurora 4-of-6 write quorum. One or two failed nodes change nothing; three
  stall commits until their interval ends; congestion on three or more raises commit latency
  into the band. Reads are not delayed (the proxy cannot tell buffer-cache misses), nor the
  statements of a transaction before its COMMIT. The session (`mysql_session`) decides which
  statements commit and holds them; this module says for how long.
* Replica failure on MariaDB: the emulator holds the failed readers' replication links; the
  proxy resets those links as each hold begins (`release_semi_sync`), so the writer's
  semi-synchronous replication stops waiting for them and its commits go on, as Aurora's do.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from harness.emulator.fabric.mysql_protocol import SessionIO
from harness.emulator.fabric.toxics import Toxic, stall_phase


# --------------------------------------------------------------------------- the cluster volume


def node_acknowledges(toxics: list[Toxic], now: float, rng: random.Random) -> tuple[float, float]:
    """When a virtual storage node acknowledges a write sent at `now`: (held until, then delay).

    `held until` is when the node takes writes again (`now` if it does; inf while a blackhole,
    a zero bandwidth or a 100% stall is on it: only removing the toxic frees it); `delay` is
    how long it then takes (latency, congestion).
    """
    held, delay = now, 0.0
    for toxic in toxics:
        if toxic.toxicity < 1.0 and rng.random() >= toxic.toxicity:
            continue
        attrs = toxic.attributes
        if toxic.type == "blackhole" or (toxic.type == "bandwidth" and attrs["rate_kbps"] == 0):
            held = math.inf
        elif toxic.type == "stall":
            stalled, change = stall_phase(toxic, now)
            if stalled:
                held = max(held, change)
        elif toxic.type == "latency":
            delay += attrs["latency_ms"] / 1000.0
        elif toxic.type == "congestion" and rng.random() * 100.0 < attrs["percent"]:
            delay += rng.uniform(attrs["min_ms"], attrs["max_ms"]) / 1000.0
    return held, delay


def quorum_wait(nodes: list[list[Toxic]], quorum: int, now: float, rng: random.Random) -> tuple[float, float]:
    """(held until, delay) for a write: the `quorum`-th node to take it, and its acknowledgement delay.

    While fewer than `quorum` nodes take writes, the write is held until enough do again;
    once they do, it is acknowledged when the `quorum`-th fastest of them answers.
    """
    if len(nodes) < quorum:
        return now, 0.0
    answers = [node_acknowledges(toxics, now, rng) for toxics in nodes]
    held = sorted(h for h, _ in answers)[quorum - 1]
    if held > now:
        return held, 0.0
    delays = sorted(d for h, d in answers if h <= now)
    return now, delays[quorum - 1]


# --------------------------------------------------------------------------- replica failure on MariaDB

RELEASERS: dict[str, asyncio.Task[None]] = {}  # replication link -> its release_semi_sync task
RELEASE_POLL_S = 0.5


async def release_semi_sync(io: SessionIO, link: str) -> None:
    """While a stall toxic holds a MariaDB reader's link, reset the link as each hold begins.

    MariaDB's semi-synchronous replication (the emulator's stand-in for Aurora's storage
    quorum) holds every commit on the writer while all its readers' links are held, which
    Aurora's writer never does for a replica failure. A reset makes the reader reconnect
    through the held link: until the hold ends it is no semi-sync replica, so the writer
    commits without it (`rpl_semi_sync_master_wait_no_slave = OFF`) while its lag grows; when
    the link passes again it catches up from its GTID position and acknowledges again.
    """
    try:
        while True:
            stalls = [t for t in io.toxics(link) if t.type == "stall" and t.attributes["percent"] > 0]
            if not stalls:
                return
            now = time.monotonic()
            held, change = stall_phase(stalls[0], now)
            if held:
                io.reset_link(link)
                if change == math.inf:  # held until the toxic goes: look again now and then
                    while any(t.uid == stalls[0].uid for t in io.toxics(link)):
                        await asyncio.sleep(RELEASE_POLL_S)
                    continue
                await asyncio.sleep(change - now + 0.002)  # to the end of this hold
                now = time.monotonic()
                held, change = stall_phase(stalls[0], now)
            await asyncio.sleep(max(change - now, 0.001) if change < math.inf else RELEASE_POLL_S)
    finally:
        if RELEASERS.get(link) is asyncio.current_task():
            del RELEASERS[link]
