"""aurora-gameday's step definitions, shipped with the tool as `harness.steps` (a pytest plugin).

`gameday run` loads `harness.steps.plugin` (`-p`), which brings every step and the fixtures they
use; a team's own features need nothing else. Steps only parse the sentence and call the
harness: `GameDay` acts, `harness.judgements` judges.

| module | steps about |
|---|---|
| `cluster` | the cluster, its promotion tiers, the probes, the steady state |
| `failover` | failovers, reboots and who the writer is afterwards |
| `storage` | the cluster volume's storage nodes and its write quorum |
| `fault_injection` | Aurora's fault-injection queries and what they did while they held |
| `writes` | what the probes saw: writes back, data loss, replica lag, reads, drivers compared |
| `load` | Locust loads, what the application saw, the stop condition |
| `restore` | a bad change, snapshots, point-in-time restores and their exactness |
| `global_database` | a secondary Region, switchover, a Region lost and failover, managed RPO |
| `blue_green` | a green environment, its switchover, guardrails, timeout rollback, DDL on blue |
"""
