"""Write-heavy: eight requests in ten place or pay orders through the cluster endpoint.

The workload that feels a writer failover most: almost every request needs the writer.

    locust -f load/write_heavy.py --headless -u 20 -r 20      (the cluster: README, "Load")
"""

from locust import between, task

from harness.load.users import ClusterUser


class WriteHeavyUser(ClusterUser):
    wait_time = between(0.05, 0.15)

    @task(5)
    def place_order(self) -> None:
        self.write("place order", self.orders.place)

    @task(3)
    def pay_order(self) -> None:
        self.write("pay order", self.orders.pay)

    @task(2)
    def recent_orders(self) -> None:
        self.read("recent orders", self.orders.recent)
