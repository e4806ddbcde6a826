"""Actions: every change a game day makes to a cluster, and how to put it back.

Modelled on chaostoolkit-lib, which runs every activity through one function and keeps a
rollbacks section: `GameDay.act()` is that one function. It is the only place that decides
dry run (show the plan, touch nothing), records what was done on the timeline, and remembers
each applied action so that `GameDay.close()` rolls them back, newest first. A new kind of change
(a restored cluster, a green environment, a switched-over global database) is a new `Action`
subclass; it cannot slip past dry run, because nothing else applies it.

What a rollback puts back is what existed before the run: on a cluster the environment created
for the scenario (the emulator) and deletes afterwards there is nothing worth restoring, so
`Context.keeps_cluster` lets a rollback skip itself there. Resources an action creates (a restored
cluster, probes' ledger rows) are removed whatever the cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.environments import SECONDARY, ClusterUnderTest, Environment, GlobalUnderTest

__all__ = ["Action", "Context", "SetPromotionTier"]


@dataclass(frozen=True)
class Context:
    """What an action acts on: the cluster under test and the environment that provided it."""

    cut: ClusterUnderTest
    environment: Environment
    global_database: GlobalUnderTest | None = None  # a global game day: `cut` is its primary

    def writer_endpoint(self) -> tuple[str, int]:
        """Where applications write: the global writer endpoint of a global database, else the cluster endpoint."""
        return self.global_database.writer_endpoint() if self.global_database else self.cut.endpoint()

    def reader_endpoint(self) -> tuple[str, int]:
        """Where applications read: the secondary Region's reader endpoint of a global database."""
        if self.global_database:
            return self.global_database.roles[SECONDARY].reader_endpoint()
        return self.cut.reader_endpoint()

    @property
    def keeps_cluster(self) -> bool:
        """True when the cluster outlives the scenario (it existed before: real AWS), so changes
        to it must be put back; False when the environment deletes it afterwards."""
        return not self.cut.created


class Action(ABC):
    """A change to a cluster: say it, do it, undo it."""

    name: ClassVar[str] = "action"
    # Does applying it change anything? Observing (holding still) does not; dry run plans it all the same.
    changes_cluster: ClassVar[bool] = True

    @abstractmethod
    def describe(self) -> str:
        """One sentence for the plan (dry run), the timeline and the report."""

    @abstractmethod
    def apply(self, context: Context) -> dict[str, Any]:
        """Do it; return details worth keeping on the timeline."""

    def rollback(self, context: Context) -> str | None:
        """Put back what `apply` changed; say what was done, or None when there is nothing to undo."""
        return None


@dataclass
class SetPromotionTier(Action):
    """ModifyDBInstance PromotionTier: which reader Aurora promotes first. Rolled back to the tier
    the instance had, so a game day on a real cluster leaves its failover order as it found it."""

    instance: str
    tier: int
    previous: int | None = field(default=None, init=False)
    name: ClassVar[str] = "promotion-tier"

    def describe(self) -> str:
        was = "" if self.previous is None else f" (was {self.previous})"
        return f"ModifyDBInstance {self.instance}: promotion tier {self.tier}{was}"

    def apply(self, context: Context) -> dict[str, Any]:
        cluster = context.cut.cluster
        self.previous = cluster.promotion_tier(self.instance)
        cluster.set_promotion_tier(self.instance, self.tier)
        return {"instance": self.instance, "tier": self.tier, "previous": self.previous}

    def rollback(self, context: Context) -> str | None:
        if self.previous is None or self.previous == self.tier or not context.keeps_cluster:
            return None
        context.cut.cluster.set_promotion_tier(self.instance, self.previous)
        return f"promotion tier of {self.instance} set back to {self.previous}"
