"""Trivial: SELECT 1 through the cluster endpoint, as fast as each user can.

No think time and no work in the engine: what this measures is the load generator itself (and
the endpoint), which is what `python -m harness.bench.load` compares with pgbench.

    locust -f load/trivial.py --headless -u 8 -r 8      (the cluster: README, "Load")
"""

from locust import constant, task

from harness.load.users import ClusterUser


class TrivialUser(ClusterUser):
    wait_time = constant(0)

    @task
    def select_one(self) -> None:
        self.write("select 1", self.sql.select_one)
