Feature: Blue/Green deployments
  A Blue/Green deployment is how a team ships an engine upgrade or a schema change to Aurora: a
  green copy of the production cluster, kept in sync by replication, takes over its names and
  endpoints in a switchover. The release question is how long the application is down, whether
  any write is lost, and what happens when the switchover cannot finish in time. AWS says a
  switchover typically takes under a minute with no data loss and no application change; its
  guardrails refuse to start one that could not finish (a long-running write on blue,
  replication behind), and past the timeout every step is rolled back. The harness measures it
  under a load, per client, on the endpoints the application uses.

  Background:
    Given an Aurora cluster with a writer and 1 reader ready for Blue/Green deployments
    And the probes are watching the cluster
    And a load of 2 users running the "oltp" workload with the naive client
    And a load of 2 users running the "oltp" workload with the resilient client
    And a Blue/Green deployment of the cluster with its green environment on the next engine version
    And a steady state of 2 seconds

  @certification
  Scenario: Switchover to the green environment
    When the deployment switches over
    Then the switchover completes
    And no acknowledged write is lost in the Blue/Green switchover
    And each client's downtime is within the documented switchover downtime
    And the application's endpoints are unchanged
    And the old blue refuses writes
    And the production cluster runs the green environment's engine version

  Scenario: A long-running write transaction on blue refuses the switchover
    Given a write transaction has been open on blue for 6 seconds
    When the deployment switches over
    Then the switchover is refused and nothing changes
    And no acknowledged write is lost in the Blue/Green switchover

  @emulator-only
  Scenario: A switchover past its timeout is rolled back
    Given replication into the green environment is held
    When the deployment switches over with a timeout of 30 seconds
    Then the switchover is rolled back: nothing renamed and writes back on blue
    And no acknowledged write is lost in the Blue/Green switchover
    And each client was refused writes for no longer than 60 seconds

  @aurora-postgresql-only
  Scenario: DDL on blue makes the deployment not switchable
    When a DDL statement runs on blue
    Then the game day reports the deployment as not switchable before a switchover is tried

  @emulator-only @negative-control
  Scenario: A switchover that does not wait for green loses the writes that had not crossed
    Given replication into the green environment is held
    And the switchover does not wait for green to catch up
    When writes go on for 2 seconds
    And the deployment switches over
    Then no acknowledged write is lost in the Blue/Green switchover
