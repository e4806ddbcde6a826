"""Orders through PyMySQL, with a thread pool whose task never ends, as a library's monitor may be.

Python joins every pool's threads at exit, so this process cannot exit by itself once it has quit:
the harness must still get its results and Locust's own exit status."""

import threading
from concurrent.futures import ThreadPoolExecutor

from locust import constant, events, task

from harness.load.users import MySQLUser

_never = threading.Event()
_monitors = ThreadPoolExecutor(thread_name_prefix="monitor")


@events.test_start.add_listener
def _start_a_monitor(**_: object) -> None:
    _monitors.submit(_never.wait)


class MySQLOrders(MySQLUser):
    wait_time = constant(0.05)

    @task
    def place_order(self) -> None:
        self.write("place order", self.orders.place)
