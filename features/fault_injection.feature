Feature: Aurora's fault-injection queries
  Aurora injects faults through SQL: a crash of the instance, its dispatcher or both (never a
  failover), a share of replication to readers blocked, storage nodes failing or congested, each
  for an interval. The game day runs each query on the writer through its instance endpoint, the
  same query on real Aurora as on the emulator, and measures what it really did: the downtime of a
  restart in place, a reader's lag rising and recovering, writes stalling only when the write
  quorum (4 of 6 storage nodes) is lost, commit latency inside the congestion band.

  Background:
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a steady state of 2 seconds

  @certification
  Scenario: An instance crash restarts the writer in place
    When the writer is crashed by a fault-injection query of type "instance"
    Then the writer does not change
    And writes are back within 30 seconds
    And no acknowledged write is lost

  Scenario: A dispatcher crash drops the writer's connections and nothing else
    When the writer is crashed by a fault-injection query of type "dispatcher"
    Then the writer does not change
    And writes are back within 10 seconds
    And no acknowledged write is lost

  Scenario: A node crash restarts the writer cold, still without a failover
    When the writer is crashed by a fault-injection query of type "node"
    Then the writer does not change
    And writes are back within 60 seconds
    And no acknowledged write is lost

  Scenario: A replica failure holds one reader back until the interval ends
    When a fault-injection query blocks 100 percent of replication to the first reader for 4 seconds
    Then the replica lag of the first reader reaches 3 seconds during the fault
    And the first reader catches up within 5 seconds after the fault
    And writes are not interrupted
    And no acknowledged write is lost

  Scenario: One failed storage node leaves the write quorum intact
    When a fault-injection query fails 100 percent of storage node 0 for 4 seconds
    Then writes are not interrupted
    And no acknowledged write is lost

  Scenario: Disk failures on three storage nodes stall writes until the interval ends
    When a fault-injection query fails 100 percent of storage nodes 0, 1 and 2 for 4 seconds
    Then writes stall while the fault holds
    And writes are back within 15 seconds
    And no acknowledged write is lost

  Scenario: Disk congestion on three storage nodes puts commit latency in its band
    When a fault-injection query congests storage nodes 0, 1 and 2 by 20 to 40 milliseconds for 5 seconds
    Then the median commit latency during the fault is between 20 and 60 milliseconds
    And the median commit latency after the fault is below 15 milliseconds
    And writes are not interrupted
    And no acknowledged write is lost
