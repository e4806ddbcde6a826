Feature: Instance reboot
  Rebooting an instance restarts it in place: Aurora never fails over for a reboot. The game day
  measures how long applications could not write while the writer restarted.

  Background:
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a load of 20 users running the "oltp" workload
    And a steady state of 2 seconds

  @certification
  Scenario: Rebooting the writer restarts it without a failover
    When the writer is rebooted
    Then the writer does not change
    And writes are back within 60 seconds
    And no acknowledged write is lost
    And the application saw errors for no longer than 60 seconds

  Scenario: Rebooting a reader does not disturb writes
    When the first reader is rebooted
    Then the writer does not change
    And writes are not interrupted
    And no acknowledged write is lost
    And the application saw errors for no longer than 15 seconds
