Feature: Writer failover
  When the writer of an Aurora cluster fails over, applications lose the ability to write only
  briefly, every write they were told was committed survives, and the readers catch up.

  Background:
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a load of 20 users running the "oltp" workload
    And a steady state of 3 seconds

  @certification
  Scenario: Managed failover promotes the reader Aurora chooses
    When the cluster fails over
    Then the reader with the best promotion tier becomes the writer
    And writes are back within the documented failover time
    And no acknowledged write is lost
    And replica lag after recovery stays within the documented replica lag
    And the application saw errors for no longer than 15 seconds
    And the p95 latency returns to its baseline within 15 seconds

  Scenario: Failover to a named reader
    When the cluster fails over to the second reader
    Then the second reader becomes the writer
    And writes are back within 30 seconds
    And no acknowledged write is lost

  Scenario: Promotion follows the promotion tiers
    Given the second reader has promotion tier 0
    And the first reader has promotion tier 15
    When the cluster fails over
    Then the second reader becomes the writer
    And no acknowledged write is lost
