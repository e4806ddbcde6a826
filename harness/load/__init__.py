"""Load during faults: Locust workloads through the cluster and reader endpoints.

Two sides, kept apart because `import locust` monkey-patches a process for gevent:

- the harness side (never imports Locust): `settings` (what a load is told, through the
  environment), `runner` (Locust's processes: start, stop, distributed mode), `history` (the
  per-second history joined to the timeline), `histogram` (latencies, shared by both sides);
- the Locust side (imported by the locustfiles in `load/`, Locust first): `users` (database
  users for psycopg and PyMySQL), `recorder` (per-second history, merged across workers),
  `control` (stop when the harness says so, or is gone).

`behaviours` (naive and resilient clients) and `orders` (the OLTP workload) are plain Python,
used by the Locust side and tested without Locust.
"""
