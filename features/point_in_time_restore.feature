Feature: Point-in-time restore and snapshots
  Someone runs a destructive statement. The cluster is restored, into a new cluster, to just
  before it: every write acknowledged before that moment must be back, nothing begun after it may
  be there, and the restore's duration counts from the request to the restored writer's first
  acknowledged write. Aurora's continuous backup lets any moment of the retention period be
  restored; a snapshot holds the cluster as it was while the snapshot was taken.

  Background:
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a load of 4 users running the "oltp" workload
    And a steady state of 2 seconds

  @certification
  Scenario: Restore to just before a bad change
    When a bad change deletes every order
    And the cluster is restored to just before the bad change
    Then every write acknowledged before the restore point is in the restored cluster
    And no write begun after the restore point is in the restored cluster
    And the bad change is not in the restored cluster
    And the restore takes less than 120 seconds

  Scenario: Restore to the latest restorable time
    When the cluster is restored to its latest restorable time
    Then every write acknowledged before the restore point is in the restored cluster
    And no write begun after the restore point is in the restored cluster
    And the restore gives up no more than the documented latest restorable time

  Scenario: Restore from a snapshot
    When a snapshot of the cluster is taken
    And writes go on for 2 seconds
    And the snapshot is restored
    Then every write acknowledged before the snapshot is in the restored cluster
    And no write begun after the snapshot is in the restored cluster

  @emulator-only @negative-control
  Scenario: A restore that lands early misses acknowledged writes
    Given the next restore lands 2 seconds early
    When a bad change deletes every order
    And the cluster is restored to just before the bad change
    Then every write acknowledged before the restore point is in the restored cluster
