Feature: Global Database
  The primary Region is gone: how many acknowledged writes were lost, how long until the
  application could write again, and did the old primary come back as a secondary? A global
  database spans two Regions: the application writes through the global writer endpoint, and the
  secondary Region's instances show how far behind it the other Region reads. A switchover waits
  for the secondary to catch up, so it loses nothing; a failover with data loss promotes the
  secondary with what it has, and the writes that had not crossed are lost, really: the harness
  names them. On Aurora PostgreSQL, rds.global_db_rpo bounds that loss by holding commits. The AWS
  Advanced Python Wrapper (plugin gdb_failover) follows the switchover and the failover beside the
  plain driver, under a Locust load of its own: each client's downtime is judged on its own.

  Background:
    Given an Aurora global database with a writer and 0 readers and a secondary Region of 1 instance
    And the probes are watching the cluster
    And a load of 2 users running the "oltp" workload with the naive client
    And a steady state of 2 seconds

  Scenario: Steady state across Regions
    Then cross-Region visibility lag stays within the documented replication latency

  @certification
  Scenario: Switchover to the secondary Region
    Given a load of 2 users running the "oltp" workload through the AWS Advanced Python Wrapper
    And a steady state of 2 seconds
    When the global database switches over to the secondary Region
    Then no acknowledged write is lost in the switchover
    And writes are refused for no longer than 60 seconds
    And writes are back in the secondary Region within the documented global RTO, counted from the switchover
    And the secondary Region holds the writer and the primary Region's cluster is a secondary

  @emulator-only
  Scenario: The primary Region is lost, then a failover with data loss
    Given a write probe also runs through the AWS Advanced Python Wrapper
    And a load of 2 users running the "oltp" workload through the AWS Advanced Python Wrapper
    And a steady state of 2 seconds
    When the primary Region goes out
    And a failover with data loss promotes the secondary Region
    And the primary Region comes back
    Then the failover loses no more than the documented global RPO
    And writes are back in the secondary Region within the documented global RTO, counted from the outage
    And writes are back in the secondary Region within the documented global RTO, counted from the failover
    And writes are refused for no longer than 60 seconds
    And the primary Region's cluster rejoins as a secondary

  @aurora-postgresql-only @emulator-only
  Scenario: Managed RPO holds commits and bounds what a failover loses
    Given the primary cluster's rds.global_db_rpo is 20 seconds
    When the inter-Region link is cut
    And commits on the primary are held
    And a failover with data loss promotes the secondary Region
    Then commits were held once the RPO lag passed rds.global_db_rpo
    And the failover loses no more than rds.global_db_rpo of acknowledged writes

  @emulator-only @negative-control
  Scenario: A failover over a slowed link loses the writes that had not crossed
    Given the inter-Region link is slowed to 3000 milliseconds round trip
    When writes go on for 2 seconds
    And a failover with data loss promotes the secondary Region
    Then no acknowledged write is lost in the failover
