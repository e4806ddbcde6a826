"""Aurora MySQL's SQL surface, rewritten into SQL that MariaDB answers.

* Aurora's own system variables: `@@aurora_server_id`, `@@aurora_version` and
  `@@innodb_read_only` (MariaDB keeps that one OFF on readers, since replication writes InnoDB)
  are replaced by this instance's values before MariaDB sees the query, and
  `SHOW [GLOBAL | SESSION] VARIABLES [LIKE ... | WHERE ...]` becomes a query over
  `information_schema` that lists them too (the AWS Advanced Python Wrapper recognises
  Aurora MySQL by `SHOW VARIABLES LIKE 'aurora_version'`).
* `information_schema.replica_host_status` becomes a derived table of the live topology: the
  members come with the route (republished on every topology change), the replica lag from
  the emulator at query time, so the wrapper's topology query works and is right after a
  failover.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from harness.emulator.fabric.mysql_protocol import COM_QUERY, PacketFramer, query_packet
from harness.emulator.fabric.mysql_settings import AuroraSettings

# --------------------------------------------------------------------------- system variables


# A variable that is a whole select item: after SELECT (and its modifiers) or a comma, before a
# comma, FROM, INTO or the end of the statement.
_SELECT_ITEM_BEFORE = re.compile(rb"(?is)(?:\bSELECT(?:\s+(?:ALL|DISTINCT|DISTINCTROW|HIGH_PRIORITY|"
                                 rb"SQL_NO_CACHE|SQL_CACHE|SQL_CALC_FOUND_ROWS))*|,)\s*\Z")
_SELECT_ITEM_AFTER = re.compile(rb"(?is)\s*(?:,|\bFROM\b|\bINTO\b|;|\Z)")


def _pattern(names: list[bytes]) -> re.Pattern[bytes]:
    # Longest names first, and no word character after: @@aurora_version must not eat @@aurora_version_x.
    alternatives = b"|".join(re.escape(n[2:]) for n in sorted(names, key=len, reverse=True))
    return re.compile(rb"(?i)@@(?:(?:global|session|local)\.)?(" + alternatives + rb")(?![\w$])")


class QueryRewriter:
    """Replaces Aurora's system variables in COM_QUERY packets by this instance's values.

    `feed` takes the client's bytes and returns them ready to forward; a packet split across
    reads is held until it is complete, so what it returns always ends on a packet boundary.
    """

    def __init__(self, replacements: dict[str, str]):
        self.values = {name.lower()[2:].encode(): value.encode() for name, value in replacements.items()
                       if name.startswith("@@")}
        self.pattern = _pattern([b"@@" + n for n in self.values]) if self.values else None
        self.framer = PacketFramer()

    def rewrite(self, query: bytes) -> bytes:
        """Each variable becomes its value; a whole item of a select list keeps its name as the
        column's (`SELECT @@aurora_server_id` answers a column named `@@aurora_server_id`, as MySQL
        does, which DictCursors and ORMs read by)."""
        if self.pattern is None:
            return query

        def value(match: re.Match[bytes]) -> bytes:
            literal = self.values[match.group(1).lower()]
            if _SELECT_ITEM_BEFORE.search(query, 0, match.start()) and _SELECT_ITEM_AFTER.match(query, match.end()):
                return literal + b" AS `" + match.group(0).replace(b"`", b"``") + b"`"
            return literal

        return self.pattern.sub(value, query)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for item in self.framer.feed(data):
            if isinstance(item, bytes):
                out += item
            else:
                header, payload = item
                out += self._packet(header, payload)
        return bytes(out)

    def _packet(self, header: bytes, payload: bytes) -> bytes:
        if header[3] != 0 or not payload or payload[0] != COM_QUERY:
            return header + payload
        return query_packet(self.rewrite(payload[1:])) or header + payload


# --------------------------------------------------------------------------- SQL rewriting

_SHOW_VARIABLES = re.compile(
    r"""(?is)\s*SHOW\s+(?:(?P<scope>GLOBAL|SESSION|LOCAL)\s+)?VARIABLES
        (?:\s+LIKE\s+(?P<like>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")|\s+WHERE\s+(?P<where>.+?))?
        \s*;?\s*$""", re.VERBOSE)
_REPLICA_HOST_STATUS = re.compile(r"(?i)`?information_schema`?\s*\.\s*`?replica_host_status`?(?![\w$])")
REPLICA_HOST_STATUS_BYTES = re.compile(rb"(?i)`?information_schema`?\s*\.\s*`?replica_host_status`?(?![\w$])")
_ALIAS_FOLLOWS = re.compile(r"(?is)\s+(?:AS\s+)?(?!(?:WHERE|ORDER|GROUP|LIMIT|JOIN|INNER|LEFT|RIGHT|CROSS|NATURAL|"
                            r"STRAIGHT_JOIN|ON|USING|UNION|HAVING|WINDOW|FOR|LOCK|INTO|PROCEDURE|EXCEPT|"
                            r"INTERSECT|FULL|OUTER)(?![\w$]))[A-Za-z_`$]")
REPLICA_HOST_STATUS_COLUMNS = ("SERVER_ID", "SESSION_ID", "IOPS", "READ_IOS", "PENDING_READ_IOS", "CPU",
                               "STORAGE_NETWORK_LATENCY", "MASTER_SLAVE_LATENCY_IN_MICROSECONDS",
                               "REPLICA_LAG_IN_MILLISECONDS", "LOG_STREAM_SPEED_IN_KiB_PER_SECOND",
                               "CURRENT_REPLAY_LATENCY_IN_MICROSECONDS", "LAST_UPDATE_TIMESTAMP", "IS_CURRENT")
MASTER_SESSION_ID = "MASTER_SESSION_ID"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _like(pattern: str, name: str) -> bool:
    """SQL LIKE (case-insensitive, backslash escapes), for deciding whether to touch a SHOW."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        elif ch == "%":
            regex += ".*"
        elif ch == "_":
            regex += "."
        else:
            regex += re.escape(ch)
        i += 1
    return re.fullmatch(regex, name, re.IGNORECASE | re.DOTALL) is not None


def aurora_variables(settings: AuroraSettings) -> dict[str, str]:
    """Aurora MySQL's variables as SHOW VARIABLES lists them for this instance. `report_host` is empty
    on Aurora (MariaDB's is the emulator's own): with mysql.rds_topology present (3.07+), a set
    report_host is how the AWS Advanced Python Wrapper tells an RDS Multi-AZ DB cluster from Aurora."""
    return {"aurora_server_id": settings.instance, "aurora_version": settings.version,
            "innodb_read_only": "OFF" if settings.is_writer else "ON", "report_host": ""}


def show_variables(sql: str, variables: dict[str, str]) -> str | None:
    """SHOW VARIABLES rewritten to include Aurora's variables; None when it can list none of them."""
    match = _SHOW_VARIABLES.fullmatch(sql)
    if match is None:
        return None
    like = match.group("like")
    if like is not None:
        pattern = like[1:-1].replace(like[0] * 2, like[0])
        if not any(_like(pattern, name) for name in variables):
            return None
    table = "GLOBAL_VARIABLES" if (match.group("scope") or "").upper() == "GLOBAL" else "SESSION_VARIABLES"
    names = ", ".join(_literal(n) for n in variables)
    ours = " ".join(f"UNION ALL SELECT {_literal(n)}, {_literal(v)}" for n, v in variables.items())
    condition = f"Variable_name LIKE {like}" if like is not None else match.group("where") or "TRUE"
    return (f"SELECT Variable_name, Value FROM (SELECT LOWER(VARIABLE_NAME) AS Variable_name, "
            f"VARIABLE_VALUE AS Value FROM information_schema.{table} WHERE LOWER(VARIABLE_NAME) NOT IN ({names}) "
            f"{ours}) AS variables WHERE {condition} ORDER BY Variable_name")


def session_id(instance: str) -> str:
    """A reader's SESSION_ID: stable per instance, UUID-shaped as on Aurora."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aurora-gameday:{instance}"))


def replica_host_status_sql(rows: list[dict[str, Any]]) -> str:
    """information_schema.replica_host_status as a derived table of `rows`.

    Each row: server_id, is_writer, replica_lag_ms, cpu. LAST_UPDATE_TIMESTAMP is the server's
    NOW(6): the emulator's numbers are taken at query time.
    """
    selects = []
    for row in rows:
        lag = 0.0 if row["is_writer"] else float(row.get("replica_lag_ms") or 0.0)
        values = {
            "SERVER_ID": _literal(row["server_id"]),
            "SESSION_ID": _literal(MASTER_SESSION_ID if row["is_writer"] else session_id(row["server_id"])),
            "IOPS": "CAST(0 AS DOUBLE)", "READ_IOS": "CAST(0 AS UNSIGNED)", "PENDING_READ_IOS": "CAST(0 AS UNSIGNED)",
            "CPU": f"CAST({float(row.get('cpu') or 0.0)!r} AS DOUBLE)",
            "STORAGE_NETWORK_LATENCY": "CAST(0 AS DOUBLE)",
            "MASTER_SLAVE_LATENCY_IN_MICROSECONDS": f"CAST({int(lag * 1000)} AS SIGNED)",
            "REPLICA_LAG_IN_MILLISECONDS": f"CAST({lag!r} AS DOUBLE)",
            "LOG_STREAM_SPEED_IN_KiB_PER_SECOND": "CAST(0 AS DOUBLE)",
            "CURRENT_REPLAY_LATENCY_IN_MICROSECONDS": "CAST(0 AS SIGNED)",
            "LAST_UPDATE_TIMESTAMP": "NOW(6)",
            "IS_CURRENT": "1",
        }
        selects.append("SELECT " + ", ".join(f"{values[c]} AS {c}" for c in REPLICA_HOST_STATUS_COLUMNS))
    if not selects:
        selects.append("SELECT " + ", ".join(f"NULL AS {c}" for c in REPLICA_HOST_STATUS_COLUMNS) + " FROM DUAL "
                       "WHERE FALSE")
    return "(" + " UNION ALL ".join(selects) + ")"


def substitute_replica_host_status(sql: str, table: str) -> str:
    """Every `information_schema.replica_host_status` in `sql` replaced by the derived `table`."""
    out, position = [], 0
    for match in _REPLICA_HOST_STATUS.finditer(sql):
        out.append(sql[position:match.start()])
        out.append(table)
        if not _ALIAS_FOLLOWS.match(sql, match.end()):
            out.append(" AS replica_host_status")
        position = match.end()
    out.append(sql[position:])
    return "".join(out)


def replica_rows(surface: Any) -> list[dict[str, Any]]:
    """(server_id, is_writer, replica_lag_ms, cpu) from the emulator's `aurora_surface` answer."""
    rows = surface.get("replica_status") if isinstance(surface, dict) else None
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("server_id"):
            out.append({"server_id": str(row["server_id"]), "is_writer": row.get("session_id") == MASTER_SESSION_ID,
                        "replica_lag_ms": float(row.get("replica_lag_in_msec") or 0.0),
                        "cpu": float(row.get("cpu") or 0.0)})
    return out


# --------------------------------------------------------------------------- Global Database views

# Aurora MySQL 3.04+: information_schema.aurora_global_db_status (one row per Region) and
# information_schema.aurora_global_db_instance_status (one per instance), with the emulator's figures;
# their names in information_schema.tables too (the AWS Advanced Python Wrapper checks there first).
GLOBAL_VIEW_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {  # view -> (column, source key, SQL type)
    "aurora_global_db_status": (
        ("AWS_REGION", "aws_region", "CHAR"), ("HIGHEST_LSN_WRITTEN", "highest_lsn_written", "SIGNED"),
        ("DURABILITY_LAG_IN_MILLISECONDS", "durability_lag_in_msec", "SIGNED"),
        ("RPO_LAG_IN_MILLISECONDS", "rpo_lag_in_msec", "SIGNED"),
        ("LAST_LAG_CALCULATION_TIMESTAMP", "last_lag_calculation_time", "DATETIME"),
        ("OLDEST_READ_VIEW_TRX_ID", "feedback_xmin", "SIGNED")),
    "aurora_global_db_instance_status": (
        ("SERVER_ID", "server_id", "CHAR"), ("SESSION_ID", "session_id", "CHAR"), ("AWS_REGION", "aws_region", "CHAR"),
        ("DURABLE_LSN", "durable_lsn", "SIGNED"), ("HIGHEST_LSN_RCVD", "highest_lsn_rcvd", "SIGNED"),
        ("OLDEST_READ_VIEW_TRX_ID", "feedback_xmin", "SIGNED"), ("OLDEST_READ_VIEW_LSN", "oldest_read_view_lsn", "SIGNED"),
        ("VISIBILITY_LAG_IN_MSEC", "visibility_lag_in_msec", "SIGNED")),
}
SURFACE_PART = {"aurora_global_db_status": "global_db_status",
                "aurora_global_db_instance_status": "global_db_instance_status"}
_GLOBAL_VIEW = re.compile(r"(?i)`?information_schema`?\s*\.\s*`?(aurora_global_db_status|aurora_global_db_instance_status)`?"
                          r"(?![\w$])")
GLOBAL_VIEW_BYTES = re.compile(rb"(?i)information_schema`?\s*\.\s*`?aurora_global_db_")
_TABLES = re.compile(r"(?i)`?information_schema`?\s*\.\s*`?tables`?(?![\w$])")
GLOBAL_TABLES_BYTES = re.compile(rb"(?is)information_schema`?\s*\.\s*`?tables\b.*aurora_global_db_|"
                                 rb"aurora_global_db_.*information_schema`?\s*\.\s*`?tables\b")


def _value(value: Any, sql_type: str) -> str:
    if value is None:
        return f"CAST(NULL AS {sql_type})"
    if sql_type == "SIGNED":
        return f"CAST({int(round(float(value)))} AS SIGNED)"
    if sql_type == "DATETIME":
        text = str(value).replace("T", " ").split("+")[0]
        return f"CAST({_literal(text)} AS DATETIME(6))"
    return _literal(str(value))


def global_view_sql(view: str, rows: list[dict[str, Any]]) -> str:
    """One of the global views as a derived table of the emulator's rows. RPO lag is 0 on the primary
    here (Aurora MySQL), where Aurora PostgreSQL says -1."""
    columns = GLOBAL_VIEW_COLUMNS[view]
    selects = []
    for row in rows:
        if view == "aurora_global_db_status" and row.get("rpo_lag_in_msec") == -1:
            row = {**row, "rpo_lag_in_msec": 0, "durability_lag_in_msec": 0}
        selects.append("SELECT " + ", ".join(f"{_value(row.get(key), kind)} AS {name}" for name, key, kind in columns))
    if not selects:
        selects.append("SELECT " + ", ".join(f"NULL AS {name}" for name, _, _ in columns) + " FROM DUAL WHERE FALSE")
    return "(" + " UNION ALL ".join(selects) + ")"


def global_views_in(sql: str) -> list[str]:
    return sorted({match.group(1).lower() for match in _GLOBAL_VIEW.finditer(sql)})


def substitute_global_views(sql: str, tables: dict[str, str]) -> str:
    """Every information_schema.aurora_global_db_* in `sql` replaced by its derived table."""
    out, position = [], 0
    for match in _GLOBAL_VIEW.finditer(sql):
        out.append(sql[position:match.start()])
        out.append(tables[match.group(1).lower()])
        if not _ALIAS_FOLLOWS.match(sql, match.end()):
            out.append(f" AS {match.group(1).lower()}")
        position = match.end()
    out.append(sql[position:])
    return "".join(out)


def substitute_tables(sql: str, rds_topology: bool = False) -> str:
    """information_schema.tables with Aurora's global views listed in it (the columns a lookup by
    schema and name reads), and `mysql.rds_topology` on engine versions that have it."""
    ours = " ".join(f"UNION ALL SELECT 'def', 'information_schema', {_literal(view.upper())}, 'SYSTEM VIEW', "
                    f"'MEMORY', NULL" for view in GLOBAL_VIEW_COLUMNS)
    if rds_topology:
        ours += " UNION ALL SELECT 'def', 'mysql', 'rds_topology', 'BASE TABLE', 'InnoDB', NULL"
    table = (f"(SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_ROWS "
             f"FROM information_schema.tables {ours})")
    out, position = [], 0
    for match in _TABLES.finditer(sql):
        out.append(sql[position:match.start()])
        out.append(table)
        if not _ALIAS_FOLLOWS.match(sql, match.end()):
            out.append(" AS tables")
        position = match.end()
    out.append(sql[position:])
    return "".join(out)


# --------------------------------------------------------------------------- Blue/Green metadata

# Aurora MySQL 3.07+: mysql.rds_topology, the endpoints of a blue/green deployment's environments with
# their role and the switchover's status (what the AWS Advanced Python Wrapper's `bg` plugin polls).
RDS_TOPOLOGY_COLUMNS = (("id", "id", "SIGNED"), ("version", "version", "CHAR"), ("endpoint", "endpoint", "CHAR"),
                        ("port", "port", "SIGNED"), ("role", "role", "CHAR"), ("status", "status", "CHAR"))
RDS_TOPOLOGY_BYTES = re.compile(rb"(?i)rds_topology")
_RDS_TOPOLOGY = re.compile(r"(?i)`?mysql`?\s*\.\s*`?rds_topology`?(?![\w$])")


def rds_topology_sql(rows: list[dict[str, Any]]) -> str:
    """mysql.rds_topology as a derived table of the emulator's rows."""
    selects = ["SELECT " + ", ".join(f"{_value(index + 1 if key == 'id' else row.get(key), kind)} AS {name}"
                                     for name, key, kind in RDS_TOPOLOGY_COLUMNS) for index, row in enumerate(rows)]
    if not selects:
        selects.append("SELECT " + ", ".join(f"NULL AS {name}" for name, _, _ in RDS_TOPOLOGY_COLUMNS)
                       + " FROM DUAL WHERE FALSE")
    return "(" + " UNION ALL ".join(selects) + ")"


def substitute_rds_topology(sql: str, table: str) -> str:
    """Every mysql.rds_topology in `sql` replaced by its derived table."""
    out, position = [], 0
    for match in _RDS_TOPOLOGY.finditer(sql):
        out.append(sql[position:match.start()])
        out.append(table)
        if not _ALIAS_FOLLOWS.match(sql, match.end()):
            out.append(" AS rds_topology")
        position = match.end()
    out.append(sql[position:])
    return "".join(out)
