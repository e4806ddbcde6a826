"""Orders through PyMySQL: the MySQL user class, until the emulator serves Aurora MySQL."""

from locust import constant, task

from harness.load.users import MySQLUser


class MySQLOrders(MySQLUser):
    wait_time = constant(0.05)

    @task
    def place_order(self) -> None:
        self.write("place order", self.orders.place)
