Feature: What the application sees during a failover
  A failover interrupts writes for a few seconds whatever the client; what the application sees
  depends on how its database client reconnects. A naive client (reconnect at once, never retry)
  turns the outage into failed requests. A resilient client (retry with backoff, resolve the
  endpoint afresh, check it reached the writer) turns it into slow requests instead, and its
  latency returns to normal once the new writer is reachable.

  @certification
  Scenario: A resilient client rides out a failover that a naive client turns into errors
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a load of 10 users running the "oltp" workload with the naive client
    And a load of 10 users running the "oltp" workload with the resilient client
    And a steady state of 3 seconds
    When the cluster fails over
    Then writes are back within 30 seconds
    And the application using the naive client saw errors for no longer than 15 seconds
    And the application using the resilient client saw no errors
    And the p95 latency of the resilient client returns to its baseline within 20 seconds
