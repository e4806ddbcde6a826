"""The drivers a game day's probes write through.

- `plain` (the default): the dialect's own driver (psycopg, PyMySQL) with short timeouts and
  reconnects, as `harness.probes.WriteProbe` does;
- `aws-wrapper`: the AWS Advanced Python Wrapper (failover plugin) over the same driver, in a
  child process (`harness.drivers.aws_wrapper`), which on the emulator runs in a private mount
  namespace whose /etc/hosts gives the cluster Aurora-style names (`harness.drivers.names`).

Every `write` record carries `driver`; records without one are the plain driver's.
"""

PLAIN = "plain"
AWS_WRAPPER = "aws-wrapper"
DRIVERS = (PLAIN, AWS_WRAPPER)
DRIVER_TITLES = {PLAIN: "plain driver", AWS_WRAPPER: "AWS Advanced Python Wrapper"}
