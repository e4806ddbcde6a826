Feature: Backtrack
  Someone runs a destructive statement on an Aurora MySQL cluster with Backtrack on. The cluster
  itself is rewound in place to just before it: the same writer, the same endpoints, every write
  acknowledged before that moment still there and nothing begun after it. Applications lose their
  connections while it rewinds; each client's downtime is measured, and the backtrack's own
  duration is judged against the documented "in minutes". Backtracking back and forth finds when a
  change happened: the changes a backtrack passed over can be reached again within the window.

  @aurora-mysql-only @certification
  Scenario: Backtrack to just before a bad change
    Given an Aurora cluster with a writer and 1 reader and a backtrack window of 1 hour
    And the probes are watching the cluster
    And a load of 4 users running the "oltp" workload with the naive client
    And a load of 4 users running the "oltp" workload with the resilient client
    And a load of 2 users running the "oltp" workload through the AWS Advanced Python Wrapper
    And a steady state of 2 seconds
    When a bad change deletes every order
    And writes go on for 2 seconds
    And the cluster is backtracked to just before the bad change
    Then every write acknowledged before the backtrack point is in the cluster
    And no write begun after the backtrack point is in the cluster
    And the bad change is not in the cluster
    And the backtrack takes less than the documented backtrack duration
    And the report compares the RTO each driver saw

  @aurora-mysql-only
  Scenario: Back and forth to find the bad change
    Given an Aurora cluster with a writer and 1 reader and a backtrack window of 1 hour
    And the probes are watching the cluster
    And a load of 4 users running the "oltp" workload
    And a steady state of 2 seconds
    When a bad change deletes every order
    And writes go on for 2 seconds
    And the cluster is backtracked to just before the bad change
    And the cluster is backtracked to 1 seconds after the bad change
    Then the bad change is in the cluster again
    And every write acknowledged before the backtrack point is in the cluster
    And no write begun after the backtrack point is in the cluster

  @aurora-mysql-only
  Scenario: A backtrack outside the window is refused
    Given an Aurora cluster with a writer and 1 reader and a backtrack window of 1 hour
    And the probes are watching the cluster
    And a steady state of 2 seconds
    When a backtrack to 2 hours ago is asked for
    Then the backtrack is refused with InvalidParameterValue
    And no acknowledged write is lost

  @aurora-postgresql-only
  Scenario: Aurora PostgreSQL has no Backtrack
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a steady state of 2 seconds
    When a backtrack to 0 hours ago is asked for
    Then the backtrack is refused with InvalidParameterCombination
    And no acknowledged write is lost

  @aurora-mysql-only @emulator-only @negative-control
  Scenario: A backtrack that lands early misses acknowledged writes
    Given an Aurora cluster with a writer and 1 reader and a backtrack window of 1 hour
    And the probes are watching the cluster
    And a load of 4 users running the "oltp" workload
    And a steady state of 2 seconds
    And the next restore lands 2 seconds early
    When a bad change deletes every order
    And the cluster is backtracked to just before the bad change
    Then every write acknowledged before the backtrack point is in the cluster
