"""Misrouted: an application configured to send its orders through the reader endpoint.

A real and common mistake: every order fails with SQLSTATE 25006 (read-only transaction) while
the lookups work, so about a third of all requests fail from the first second. A game day
whose steady state looks like this must not go on to inject a fault; the stop condition
("the game day stops before the fault if the load's error rate exceeds N percent") catches it.

    locust -f load/misrouted.py --headless -u 5 -r 5      (the cluster: README, "Load")
"""

from locust import between, task

from harness.load.users import READER_ENDPOINT, ClusterUser


class MisroutedUser(ClusterUser):
    wait_time = between(0.05, 0.15)

    @task(2)
    def recent_orders(self) -> None:
        self.read("recent orders", self.orders.recent)

    @task(1)
    def place_order(self) -> None:
        self.request(READER_ENDPOINT, "place order", self.orders.place)
