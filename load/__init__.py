"""The Locust workloads aurora-gameday ships (`gameday` finds them as `harness.workloads`)."""
