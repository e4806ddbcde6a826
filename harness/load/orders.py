"""The OLTP workload's business: which customer orders, how much, which order gets paid.

Kept apart from the SQL (in the dialects) and from Locust (in `harness.load.users`), so the same
few lines drive every workload on either engine.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from harness.dialects.base import WorkloadDialect

CUSTOMERS = 10_000
RECENT = 10


class Orders:
    """One user's view of the orders table: places orders, pays the ones it placed, looks some up."""

    def __init__(self, dialect: WorkloadDialect, run_id: str, rng: random.Random | None = None):
        self.dialect, self.run_id = dialect, run_id
        self.rng = rng or random.Random()
        self.unpaid: deque[int] = deque(maxlen=100)

    def place(self, conn: Any) -> int:
        order = self.dialect.insert_order(conn, self.run_id, self.rng.randrange(CUSTOMERS),
                                          round(self.rng.uniform(1, 500), 2))
        self.unpaid.append(order)
        return order

    def pay(self, conn: Any) -> int:
        """Pay the oldest unpaid order this user placed (place one first if there is none)."""
        order = self.unpaid[0] if self.unpaid else self.place(conn)
        updated = self.dialect.pay_order(conn, order)
        self.unpaid.popleft()
        return updated

    def recent(self, conn: Any) -> list[tuple[Any, ...]]:
        return self.dialect.recent_orders(conn, RECENT)

    def of_customer(self, conn: Any) -> tuple[int, float]:
        return self.dialect.customer_orders(conn, self.rng.randrange(CUSTOMERS))
