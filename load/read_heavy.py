"""Read-heavy: nineteen requests in twenty are lookups through the reader endpoint.

The workload of a reporting or catalogue service: it feels reader reboots and replica lag, and
a writer failover only through its rare orders.

    locust -f load/read_heavy.py --headless -u 20 -r 20      (the cluster: README, "Load")
"""

from locust import between, task

from harness.load.users import ClusterUser


class ReadHeavyUser(ClusterUser):
    wait_time = between(0.05, 0.15)

    @task(10)
    def recent_orders(self) -> None:
        self.read("recent orders", self.orders.recent)

    @task(9)
    def customer_orders(self) -> None:
        self.read("customer orders", self.orders.of_customer)

    @task(1)
    def place_order(self) -> None:
        self.write("place order", self.orders.place)
