@emulator-only @aurora-postgresql-only
Feature: Storage quorum
  The cluster volume keeps six copies of the data, two in each of three Availability Zones, and
  commits a write once four copies hold it. Losing a whole AZ must not stop writes; losing a
  third copy must stop them without losing any, and reads must go on throughout.

  Background:
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a load of 20 users running the "oltp" workload
    And a steady state of 2 seconds

  @certification
  Scenario: Losing the storage of one Availability Zone keeps writes and reads going
    When the storage nodes of Availability Zone "a" are lost
    Then writes are not interrupted
    And reads stay available on every reader
    And no acknowledged write is lost
    And the application saw no errors

  Scenario: Losing a third storage node halts writes until it returns
    When the storage nodes of Availability Zone "a" are lost
    And one more storage node is lost
    Then writes halt while the quorum is lost
    And reads stay available on every reader
    When the lost storage nodes return
    Then writes are back within 15 seconds
    And no acknowledged write is lost
    And the application saw no errors
