"""OLTP mix: orders placed and paid through the cluster endpoint, looked up through the reader endpoint.

Seven requests in ten are reads. Each user pauses 50-150 ms between requests, so a user makes
about ten a second, like a busy application thread rather than a benchmark.

    locust -f load/oltp.py --headless -u 20 -r 20      (the cluster comes from GAMEDAY_LOAD_*: README, "Load")
"""

from locust import between, task

from harness.load.users import ClusterUser


class OltpUser(ClusterUser):
    wait_time = between(0.05, 0.15)

    @task(5)
    def recent_orders(self) -> None:
        self.read("recent orders", self.orders.recent)

    @task(2)
    def customer_orders(self) -> None:
        self.read("customer orders", self.orders.of_customer)

    @task(2)
    def place_order(self) -> None:
        self.write("place order", self.orders.place)

    @task(1)
    def pay_order(self) -> None:
        self.write("pay order", self.orders.pay)
