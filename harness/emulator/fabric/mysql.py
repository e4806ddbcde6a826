"""Aurora MySQL's SQL surface on MariaDB, in the fabric's MySQL client endpoints.

MariaDB knows nothing of Aurora. The fabric knows which instance a client connection reached,
so its MySQL endpoints speak enough of the MySQL protocol to answer for Aurora. This module is
what the fabric's server imports; the work is done in:

* `mysql_session`: one client connection, followed packet by packet; it answers the
  fault-injection statements itself and decides which statements are rewritten or held.
* `mysql_protocol`: the wire protocol (packet framing, the OK and ERR packets we answer with).
* `mysql_settings`: what an endpoint knows of its instance, published with the route.
* `mysql_surface`: Aurora's system variables, `SHOW VARIABLES` and
  `information_schema.replica_host_status`, rewritten into SQL MariaDB answers.
* `mysql_quorum`: the 4-of-6 write quorum of the virtual storage volume, and the release of
  semi-synchronous replication from failed replicas.
* `controller`: the emulator's control API (topology, volume status, fault injection).

A connection starts on the fabric's C pump (`pump.c`), which passes every packet and hands the
connection to the session only while it needs it (see `mysql_session`).
"""

from __future__ import annotations

from harness.emulator.fabric.controller import configure
from harness.emulator.fabric.mysql_session import MySqlSession
from harness.emulator.fabric.mysql_settings import parse_rewrite

__all__ = ["MySqlSession", "configure", "parse_rewrite"]
