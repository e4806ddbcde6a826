"""One user sleeps in the database while four keep querying: under gevent, with psycopg waiting
cooperatively, the four never wait for the sleeper."""

from locust import constant, task

from harness.load.users import PostgresUser


class Sleeper(PostgresUser):
    fixed_count = 1
    wait_time = constant(0.2)

    @task
    def sleep(self) -> None:
        self.write("pg_sleep(2)", lambda conn: conn.execute("SELECT pg_sleep(2)"))


class Quick(PostgresUser):
    wait_time = constant(0.01)

    @task
    def select_one(self) -> None:
        self.write("select 1", self.sql.select_one)
