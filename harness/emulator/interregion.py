"""The network between Regions: round trips, cut links and Region outages.

Aurora ships a Global Database's changes over AWS's backbone, so a secondary Region's lag has a
floor: the Regions' distance. The emulator's Regions all live on one machine; each cross-Region
replication link is a fabric listener whose route reaches the primary's writer and which carries
a latency toxic of half the pair's round trip in each direction, so cross-Region lag is real
lag, set per pair of Regions (the defaults are typical public figures between AWS Regions).

Emulator-only powers live here too: cut the links between two Regions (replication stops,
everything else goes on) and mark a Region down (every link that touches it is cut; the
Region's instances and endpoints are taken down by the controls).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from harness.emulator.fabric import FabricClient, FabricError

log = logging.getLogger("harness.emulator")

DEFAULT_RTT_MS = 60.0  # any pair of Regions without a figure of its own
# Typical round trips between AWS Regions (public inter-Region latency tables, rounded).
TYPICAL_RTT_MS: dict[frozenset[str], float] = {
    frozenset(("us-east-1", "us-west-2")): 70.0,
    frozenset(("us-east-1", "us-east-2")): 12.0,
    frozenset(("us-east-1", "us-west-1")): 62.0,
    frozenset(("us-east-2", "us-west-2")): 50.0,
    frozenset(("us-east-1", "eu-west-1")): 68.0,
    frozenset(("us-east-1", "eu-central-1")): 90.0,
    frozenset(("eu-west-1", "eu-central-1")): 25.0,
    frozenset(("us-west-2", "ap-northeast-1")): 100.0,
    frozenset(("us-east-1", "ap-northeast-1")): 145.0,
}
RTT_TOXIC = "gameday-region-rtt"


def pair(a: str, b: str) -> frozenset[str]:
    if a == b:
        raise ValueError(f"a link joins two different Regions, not {a} with itself")
    return frozenset((a, b))


@dataclass
class RegionLink:
    """One cross-Region replication link: a listener in `downstream`'s address block whose route
    reaches `target` (an engine in `upstream`) while the network lets it."""

    name: str
    host: str
    port: int
    upstream: str  # the Region replication comes from (the primary's)
    downstream: str  # the Region it goes to
    target: dict[str, Any] | None = None  # the fabric target (an engine) it reaches


class InterRegionNetwork:
    """Round trips between Regions, and which Regions and pairs are cut off."""

    def __init__(self, fabric: FabricClient | None):
        self.fabric = fabric
        self.rtt: dict[frozenset[str], float] = dict(TYPICAL_RTT_MS)
        self.cut_pairs: set[frozenset[str]] = set()
        self.down: set[str] = set()
        self.links: dict[str, RegionLink] = {}
        self.lock = threading.RLock()

    # --- the figures ---------------------------------------------------------------------------
    def rtt_ms(self, a: str, b: str) -> float:
        return self.rtt.get(pair(a, b), DEFAULT_RTT_MS)

    def set_rtt(self, a: str, b: str, milliseconds: float) -> float:
        """Change a pair's round trip; the links between them take it at once."""
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)) or milliseconds < 0:
            raise ValueError("the round trip must be a number of milliseconds, 0 or more")
        with self.lock:
            self.rtt[pair(a, b)] = float(milliseconds)
            for link in self.links.values():
                if {link.upstream, link.downstream} == {a, b}:
                    self._apply(link)
        return float(milliseconds)

    def reachable(self, a: str, b: str) -> bool:
        return a not in self.down and b not in self.down and pair(a, b) not in self.cut_pairs

    # --- emulator-only faults ------------------------------------------------------------------
    def cut(self, a: str, b: str) -> None:
        with self.lock:
            self.cut_pairs.add(pair(a, b))
            self._apply_all()

    def restore(self, a: str, b: str) -> None:
        with self.lock:
            self.cut_pairs.discard(pair(a, b))
            self._apply_all()

    def region_down(self, region: str) -> None:
        with self.lock:
            self.down.add(region)
            self._apply_all()

    def region_up(self, region: str) -> None:
        with self.lock:
            self.down.discard(region)
            self._apply_all()

    def is_down(self, region: str) -> bool:
        return region in self.down

    # --- links ---------------------------------------------------------------------------------
    def connect(self, name: str, host: str, port: int, upstream: str, downstream: str,
                target: dict[str, Any] | None) -> RegionLink:
        """Create or re-point a link (`target` None: it reaches nothing, e.g. between roles)."""
        with self.lock:
            link = self.links.get(name)
            if link is None:
                link = self.links[name] = RegionLink(name, host, port, upstream, downstream, target)
            else:
                if link.target != target:
                    self._drop(link)  # replication re-connects to the new target
                link.upstream, link.downstream, link.host, link.port, link.target = (upstream, downstream, host,
                                                                                    port, target)
            self._apply(link)
            return link

    def disconnect(self, name: str) -> None:
        with self.lock:
            link = self.links.pop(name, None)
            if link is not None and self.fabric is not None:
                try:
                    self.fabric.remove_listener(name)
                except FabricError:
                    pass

    def _apply_all(self) -> None:
        for link in self.links.values():
            self._apply(link, toxic=False)

    def _apply(self, link: RegionLink, toxic: bool = True) -> None:
        """Publish a link's route (nothing while it is cut) and, with `toxic`, its round trip."""
        if self.fabric is None:
            return
        up = link.target is not None and self.reachable(link.upstream, link.downstream)
        route = {"targets": [link.target] if up else [], "policy": "first", "stale": None}
        self.fabric.set_listener(link.name, link.host, link.port, route)
        if not up:
            self._drop(link)
        if toxic:
            self._toxic(link)

    def _drop(self, link: RegionLink) -> None:
        """End the connections a link carries now (a cut, or a new target)."""
        if self.fabric is not None and link.target is not None:
            try:
                self.fabric.drop(str(link.target["id"]), link.name)
            except FabricError:
                pass

    def _toxic(self, link: RegionLink) -> None:
        """Half the round trip each way: what crosses the link arrives one-way-latency late."""
        if self.fabric is None:
            return
        try:
            self.fabric.remove_toxic(link.name, RTT_TOXIC)
        except FabricError:
            pass
        one_way = self.rtt_ms(link.upstream, link.downstream) / 2.0
        if one_way > 0:
            self.fabric.add_toxic(link.name, RTT_TOXIC, "latency", stream="both", toxicity=1.0,
                                  attributes={"latency_ms": one_way, "jitter_ms": 0.0})

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"down": sorted(self.down), "cut": sorted(sorted(p) for p in self.cut_pairs),
                    "links": {n: {"from": l.upstream, "to": l.downstream, "rtt_ms": self.rtt_ms(l.upstream, l.downstream),
                                  "up": l.target is not None and self.reachable(l.upstream, l.downstream)}
                              for n, l in self.links.items()}}
