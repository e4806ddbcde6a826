@emulator-only @negative-control
Feature: Negative control: the harness sees data loss when there is some
  Aurora never promotes a reader before it holds every acknowledged write. The emulator can do
  exactly that, on purpose, so the game day proves that lost writes would be caught: this
  scenario must breach the data-loss target and name the writes that were lost.

  Scenario: A lagging reader promoted without catching up loses acknowledged writes
    Given an Aurora cluster with a writer and 1 reader
    And the first reader lags 1500 milliseconds behind the writer
    And the probes are watching the cluster
    And a steady state of 3 seconds
    When the first reader is promoted without catching up
    Then no acknowledged write is lost
