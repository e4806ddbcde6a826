Feature: Drivers
  The same failover, seen by two applications at once: one on the plain driver (psycopg or
  PyMySQL, reconnecting by itself) and one on the AWS Advanced Python Wrapper with its failover
  plugin. Each has a write probe writing its own rows to the ledger, so each is judged on its
  own, and a Locust load of its own; the report compares the RTO and the load errors each saw.

  Background:
    Given an Aurora cluster with a writer and 2 readers
    And the probes are watching the cluster
    And a write probe also runs through the AWS Advanced Python Wrapper

  Scenario: The plain driver and the AWS Advanced Python Wrapper through a failover
    Given a load of 4 users running the "oltp" workload with the naive client
    And a load of 4 users running the "oltp" workload through the AWS Advanced Python Wrapper
    And a steady state of 3 seconds
    When the cluster fails over
    Then writes are back within the documented failover time
    And the AWS Advanced Python Wrapper saw writes back within 60 seconds
    And no acknowledged write is lost
    And the application with the aws-wrapper client saw errors for no longer than 60 seconds
    And the report compares the RTO each driver saw
