Feature: Stop condition
  A game day must not add a fault to a system that is already failing: on real AWS that turns
  an incident into a bigger one. A scenario names the error rate its load may show in the steady
  state; above it the fault is not injected, and the game day stops there.

  Scenario: A load that fails in the steady state stops the game day before the fault
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a load of 5 users running the "misrouted" workload
    And the game day stops before the fault if the load's error rate exceeds 1 percent
    And a steady state of 2 seconds
    When the cluster fails over
    Then the game day stops before the fault
