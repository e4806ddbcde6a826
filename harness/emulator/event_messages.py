"""RDS event messages, worded as the Aurora User Guide lists them ("Amazon RDS event categories
and event messages"). One place, so every module that emits an event says it the same way and
clients that match on the text (game-day checkers, alarms) see AWS's words."""

from __future__ import annotations

FAILOVER_STARTED_CROSS_AZ = "Started cross AZ failover to DB instance: {}."
FAILOVER_STARTED_SAME_AZ = "Started same AZ failover to DB instance: {}."
FAILOVER_COMPLETED = "Completed failover to DB instance: {}."
FAILOVER_FAILED = "Cluster failover failed, check the health of your cluster instances and try again."
PROMOTING_PREVIOUS_PRIMARY = "Promoting previous primary again: {}."
INSTANCE_SHUTDOWN = "DB instance shutdown."
INSTANCE_RESTARTED = "DB instance restarted."
INSTANCE_CREATED = "DB instance created."
INSTANCE_DELETED = "DB instance deleted."
RECOVERY_STARTED = ("Recovery of the DB instance has started. Recovery time will vary with the amount "
                    "of data to be recovered.")
RECOVERY_COMPLETE = "Recovery of the DB instance is complete."
TOPOLOGY_UPDATED = "Cluster topology is updated."
CLUSTER_CREATED = "DB cluster created."
CLUSTER_DELETED = "DB cluster deleted."
CLUSTER_CREATION_FAILED = "The DB cluster could not be created: {}."  # plain: AWS documents no restore-failure text
MANUAL_SNAPSHOT_CREATING = "Creating manual cluster snapshot."
MANUAL_SNAPSHOT_CREATED = "Manual cluster snapshot created."
AUTOMATED_SNAPSHOT_CREATING = "Creating automated cluster snapshot."
AUTOMATED_SNAPSHOT_CREATED = "Automated cluster snapshot created."
BACKTRACK_WINDOW_SHORT = ("The actual Backtrack window is smaller than the target Backtrack window you specified. "
                          "Consider reducing the number of hours in your target Backtrack window.")  # RDS-EVENT-0131
BACKTRACK_WINDOW_MET = "The actual Backtrack window is the same as the target Backtrack window."  # RDS-EVENT-0132

# Global Database (RDS-EVENT-0181 ... 0241, 0390, 0391, 0397), current User Guide wording.
GLOBAL_SWITCHOVER_STARTED = "Global switchover to DB cluster {} in Region {} started."
GLOBAL_OLD_PRIMARY_SHUT_DOWN = "Old primary DB cluster {} in Region {} successfully shut down."
GLOBAL_WAITING_FOR_SYNC = ("Waiting for data synchronization across global cluster members. Current lags behind "
                           "primary DB cluster: {}.")
GLOBAL_NEW_PRIMARY_PROMOTED = "New primary DB cluster {} in Region {} was successfully promoted."
GLOBAL_SWITCHOVER_FINISHED = "Global switchover to DB cluster {} in Region {} finished."
GLOBAL_SWITCHOVER_CANCELLED = "Global switchover to DB cluster {} in Region {} is cancelled."
GLOBAL_SWITCHOVER_FAILED = "Global switchover to DB cluster {} in Region {} failed."
GLOBAL_FAILOVER_COMPLETED = "Global failover to DB cluster {} in Region {} completed."
GLOBAL_FAILOVER_FAILED = "Global failover to DB cluster {} in Region {} failed."
GLOBAL_RESYNC_STARTED = "Started resynchronizing members of DB cluster {} in Region {} after global failover."
GLOBAL_RESYNC_FINISHED = "Finished resynchronizing members of DB cluster {} in Region {} after global failover."
GLOBAL_WRITES_BLOCKED = "Attempt to block writes for DB cluster {} in Region {} succeeded."
GLOBAL_WRITES_BLOCK_TIMED_OUT = "Attempt to block writes for DB cluster {} in Region {} timed out."
GLOBAL_ENDPOINT_MOVED = "Aurora finished changing the DNS name that the global writer endpoint resolves to."

# Blue/Green deployments (RDS-EVENT-0244 ... 0261, 0311 ... 0314; SourceType blue-green-deployment),
# current User Guide wording.
BG_CREATED = ("Blue/green deployment tasks completed. You can make more modifications to the green environment "
              "databases or switch over the deployment.")  # RDS-EVENT-0244
BG_CREATION_FAILED = "Creation of blue/green deployment failed because {}."  # RDS-EVENT-0245
BG_DELETED = "Blue/green deployment deleted."  # RDS-EVENT-0246
BG_SWITCHOVER_STARTED = "Switchover from blue to green started."  # RDS-EVENT-0247
BG_SWITCHOVER_COMPLETED = "Switchover completed on blue/green deployment."  # RDS-EVENT-0248
BG_SWITCHOVER_CANCELED = "Switchover canceled on blue/green deployment."  # RDS-EVENT-0249
BG_CLUSTER_SWITCHOVER_STARTED = "Switchover from DB cluster {} to {} started."  # RDS-EVENT-0259
BG_CLUSTER_SWITCHOVER_COMPLETED = ("Switchover from DB cluster {blue} to {green} completed. Renamed {blue} to "
                                   "{old} and {green} to {blue}.")  # RDS-EVENT-0260
BG_CLUSTER_SWITCHOVER_CANCELED = "Switchover from DB cluster {} to {} was canceled due to {}."  # RDS-EVENT-0261
BG_SEQUENCE_SYNC_STARTED = ("Sequence sync for switchover of DB cluster {} initiated. Switchover when using "
                            "sequences may lead to extended downtime.")  # RDS-EVENT-0311
BG_SEQUENCE_SYNC_COMPLETED = "Sequence sync for switchover of DB cluster {} completed."  # RDS-EVENT-0312
BG_SEQUENCE_SYNC_CANCELED = ("Sequence sync for switchover of DB cluster {} was cancelled because sequences "
                             "failed to sync.")  # RDS-EVENT-0314
