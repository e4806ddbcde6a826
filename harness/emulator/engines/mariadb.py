"""Aurora MySQL on real MariaDB processes.

One `mariadbd` per DB instance. Readers replicate from the writer by GTID through their link
in the fabric, with semi-synchronous replication waiting `AFTER_SYNC`: a commit is
acknowledged to the client only once a reader has it in its relay log. MariaDB has no N-of-M
acknowledgement, so this stands in for Aurora's storage quorum (a fidelity gap the README
names): while no reader is attached, the writer commits alone.

Failover keeps every acknowledged commit: the readers finish applying what they received, the
target catches up from the most advanced of them (one of them acknowledged each commit), and
only then takes writes. An instance that may hold transactions nobody acknowledged (the old
writer, or a reader ahead of an unsafe promotion) comes back as a reader by being re-cloned
from the writer with mariadb-backup: GTID replication cannot rewind.

The cluster volume's six storage nodes are virtual here: fabric listeners (`storage:sn_a1` ...
`storage:sn_c2`, the names Aurora PostgreSQL's real nodes have) that carry no bytes but take
toxics. The fabric's MySQL endpoints hold the writer's commits while fewer than 4 of them take
writes and delay them by the 4th-fastest one's acknowledgement (see `fabric/mysql_quorum.py`), so the
engine-neutral disk-failure and disk-congestion faults act on MariaDB through the same links
as on PostgreSQL. They are not processes: `storage_status()` stays empty and they cannot be
stopped or lost with an AZ.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pymysql

from harness.emulator.addresses import STORAGE_LINKS
from harness.emulator.engines.base import EngineCluster, EngineInstance, evict_page_cache
from harness.emulator.fault_injection import ReaderPosition, ReplicationSnapshot
from harness.emulator.processes import Child, CommandError, ProcessRegistry, wait_until

ADMIN_USER = "rdsadmin"
SEMI_SYNC_TIMEOUT_MS = 365 * 24 * 3600 * 1000  # never fall back to asynchronous replication
DOMAIN = 0  # every writer logs in GTID domain 0, so sequence numbers order the whole history

ENGINE_SETTINGS = {
    "skip-name-resolve": "ON",
    "performance_schema": "OFF",
    "innodb_buffer_pool_size": "32M",
    "innodb_log_file_size": "16M",
    # Durability is replication's job; a killed process loses nothing from the OS page cache.
    "innodb_flush_log_at_trx_commit": "2",
    "sync_binlog": "0",
    "log_bin": "binlog",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "log_slave_updates": "ON",  # any reader can become the writer with the whole history
    "gtid_strict_mode": "ON",
    "expire_logs_days": "0",
    "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
    "rpl_semi_sync_master_timeout": str(SEMI_SYNC_TIMEOUT_MS),
    # With no reader attached the writer commits alone rather than stalling (a fidelity gap).
    "rpl_semi_sync_master_wait_no_slave": "OFF",
    "rpl_semi_sync_slave_enabled": "ON",
    "skip_slave_start": "ON",  # the emulator starts replication itself
    "slave_net_timeout": "5",
    "max_connections": "200",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_general_ci",
}

STORAGE_NODES = ["sn_a1", "sn_a2", "sn_b1", "sn_b2", "sn_c1", "sn_c2"]  # two per AZ, as Aurora's six copies
WRITE_QUORUM = 4
# Accounts whose sessions a dispatcher crash leaves alone: the emulator's own and the server's threads.
SYSTEM_USERS = (ADMIN_USER, "system user", "event_scheduler", "unauthenticated user")

# The master user gets what Aurora MySQL's does: everything but the server-wide admin powers.
MASTER_REVOKED = ["SUPER", "READ_ONLY ADMIN", "BINLOG ADMIN", "REPLICATION MASTER ADMIN",
                  "REPLICA MONITOR", "SHUTDOWN", "FILE"]


def gtid_seq(gtid: str | None) -> int:
    """Sequence number of domain 0 in a GTID position such as '0-3-1234' (0 when empty)."""
    for part in (gtid or "").split(","):
        part = part.strip()
        if part.startswith(f"{DOMAIN}-"):
            return int(part.rsplit("-", 1)[1])
    return 0


def _rows(conn: pymysql.Connection, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements on a session; the last one's rows."""
    rows: list[tuple[Any, ...]] = []
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            rows = list(cursor.fetchall())
    return rows


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form, so no plain password is ever sent in SQL."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


@dataclass(frozen=True)
class MariaDbBinaries:
    """Where the MariaDB server programs are."""

    server: Path
    install_db: Path
    backup: Path
    binlog: Path

    @staticmethod
    def find() -> MariaDbBinaries:
        def program(*names: str) -> Path | None:
            for name in names:
                for directory in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
                    if (Path(directory) / name).exists():
                        return Path(directory) / name
                found = shutil.which(name)
                if found:
                    return Path(found)
            return None

        found = {"server": program("mariadbd", "mysqld"), "install_db": program("mariadb-install-db"),
                 "backup": program("mariadb-backup", "mariabackup"), "binlog": program("mariadb-binlog")}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise FileNotFoundError(f"MariaDB server tools not found ({', '.join(missing)}); run `make engines` "
                                    f"to install them")
        return MariaDbBinaries(**found)  # type: ignore[arg-type]

    def version(self) -> str:
        """'10.11.19' from 'mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu'."""
        out = subprocess.run([str(self.server), "--version"], capture_output=True, text=True).stdout
        return out.split(" Ver ", 1)[-1].split("-", 1)[0].strip()


def _write_settings(path: Path, extra: dict[str, str] | None = None) -> None:
    lines = ["[mariadbd]"] + [f"{k}={v}" for k, v in {**ENGINE_SETTINGS, **(extra or {})}.items()]
    path.write_text("\n".join(lines) + "\n")


def _admin_connect(socket: Path, password: str | None, timeout: int = 5) -> pymysql.Connection:
    # No TLS on a Unix socket: PyMySQL would otherwise build an SSL context per connect (~40 ms).
    return pymysql.connect(unix_socket=str(socket), user=ADMIN_USER if password else "root",
                           password=password or "", autocommit=True, connect_timeout=timeout, ssl_disabled=True)


def _wait_ready(child: Child, socket: Path, password: str | None, timeout: float) -> None:
    """Poll until the server accepts the admin login on its Unix socket."""
    def ready() -> bool:
        if not child.alive():
            raise CommandError(f"mariadbd exited while starting:\n{child.log_tail()}")
        if not socket.exists():
            return False
        try:
            _admin_connect(socket, password, timeout=2).close()
            return True
        except pymysql.err.OperationalError:
            return False

    wait_until(ready, timeout, interval=0.05, what=f"mariadbd on {socket} to accept connections")


class MariaDbTemplate:
    """A mariadb-install-db'd data directory with the internal account, copied for each cluster."""

    def __init__(self, registry: ProcessRegistry, bins: MariaDbBinaries, root: Path, admin_password: str,
                 socket_dir: Path):
        self.registry, self.bins, self.root, self.socket_dir = registry, bins, root, socket_dir
        self.admin_password = admin_password
        self.datadir = root / "data"
        self._lock = threading.Lock()

    def ensure(self) -> Path:
        fingerprint = hashlib.sha1(repr((ENGINE_SETTINGS, MASTER_REVOKED, str(self.bins.server))).encode()).hexdigest()
        stamp = self.root / "fingerprint"
        with self._lock:
            if not stamp.exists() or stamp.read_text() != fingerprint:
                self._build()
                stamp.write_text(fingerprint)
            return self.datadir

    def _build(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        settings = self.root / "my.cnf"
        _write_settings(settings)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.registry.give_to_engine_user(self.root, self.socket_dir)
        self.registry.run([str(self.bins.install_db), f"--defaults-file={settings}", f"--datadir={self.datadir}",
                           "--auth-root-authentication-method=normal", "--skip-test-db"], timeout=120)
        socket = self.socket_dir / "mysqld.sock"
        child = self.registry.spawn("template", [str(self.bins.server), f"--defaults-file={settings}",
                                                 f"--datadir={self.datadir}", f"--socket={socket}",
                                                 "--skip-networking", f"--pid-file={self.root / 'mysqld.pid'}"],
                                    log_path=self.root / "build.log")
        try:
            _wait_ready(child, socket, None, 60)
            with _admin_connect(socket, None) as conn, conn.cursor() as cursor:
                secret = native_password_hash(self.admin_password)
                for host in ("localhost", "127.%"):
                    cursor.execute(f"CREATE USER '{ADMIN_USER}'@'{host}' IDENTIFIED BY PASSWORD '{secret}'")
                    cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'{host}' WITH GRANT OPTION")
                cursor.execute("SELECT user, host FROM mysql.user WHERE user = 'root'")
                for user, host in cursor.fetchall():
                    cursor.execute(f"DROP USER '{user}'@'{host}'")
                cursor.execute("RESET MASTER")  # every cluster starts with an empty GTID history
        finally:
            child.stop(signal.SIGTERM, timeout=60)
            self.registry.forget(child)


@dataclass
class MariaDbCluster(EngineCluster):
    """Engine side of one Aurora MySQL cluster on MariaDB."""

    # Aurora MySQL 2.10+: "the reader DB instances typically remain available while you reboot the writer".
    restarts_readers_with_writer: ClassVar[bool] = False
    rewrites_client_queries: ClassVar[bool] = True
    STOP_SIGNALS: ClassVar[dict[str, int]] = {"smart": signal.SIGTERM, "fast": signal.SIGTERM,
                                              "immediate": signal.SIGKILL, "kill": signal.SIGKILL}

    bins: MariaDbBinaries | None = None
    template: MariaDbTemplate | None = None
    cluster_slot: int = 0
    engine_version: str = ""  # the Aurora MySQL version the cluster reports, e.g. 8.0.mysql_aurora.3.05.2

    def __post_init__(self) -> None:
        self.volume_dir = self.root / "volume"
        self.volume_dir.mkdir(parents=True, exist_ok=True)
        self.settings = self.root / "my.cnf"
        _write_settings(self.settings)
        self.client_settings = self.root / "client.cnf"  # for the tools: never a password on a command line
        self.client_settings.write_text(f"[client]\nuser={ADMIN_USER}\npassword={self.admin_password}\n")
        os.chmod(self.client_settings, 0o600)
        self.archive: Child | None = None
        self.master_user = ""
        self.registry.give_to_engine_user(self.root)

    # --- processes ---------------------------------------------------------------------------------
    def _socket(self, instance: EngineInstance) -> Path:
        return instance.socket_dir / "mysqld.sock"

    def _server_id(self, instance: EngineInstance) -> int:
        return self.cluster_slot * 100 + self._slot(instance) + 1

    def _start(self, instance: EngineInstance, *, writer: bool, timeout: float = 60) -> None:
        """Instance-specific settings on the command line, so copied data directories never carry them."""
        argv = [str(self.bins.server), f"--defaults-file={self.settings}", f"--datadir={instance.data_dir}",
                f"--socket={self._socket(instance)}", f"--bind-address={instance.host}", f"--port={self.port}",
                f"--server-id={self._server_id(instance)}", f"--pid-file={instance.root / 'mysqld.pid'}",
                f"--report-host={instance.identifier}", f"--read-only={'OFF' if writer else 'ON'}",
                f"--rpl-semi-sync-master-enabled={'ON' if writer else 'OFF'}"]
        self.registry.give_to_engine_user(instance.root, instance.socket_dir)
        instance.child = self.registry.spawn(instance.identifier, argv, log_path=instance.log_path)
        instance.role = "writer" if writer else "reader"
        _wait_ready(instance.child, self._socket(instance), self.admin_password, timeout)

    def admin(self, instance: EngineInstance, timeout: int = 5) -> pymysql.Connection:
        return _admin_connect(self._socket(instance), self.admin_password, timeout)

    def _query(self, instance: EngineInstance, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements on an instance as the internal account; the last one's rows."""
        with self.admin(instance) as conn:
            return _rows(conn, *statements)

    def lag_reader(self, reader: str, milliseconds: int) -> None:
        """A reader acknowledges commits as soon as they reach its relay log (semi-sync), so a slow
        link would only slow the writer's commits down; the lag that an unsafe promotion turns
        into lost commits is in applying them: MASTER_DELAY (whole seconds, rounded up)."""
        if reader not in self.instances or reader == self.writer_id:
            raise KeyError(f"no reader {reader!r}; the readers are "
                           f"{', '.join(i for i in self.instances if i != self.writer_id) or 'none'}")
        seconds = -(-milliseconds // 1000)
        self._query(self.instances[reader], "STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY = {seconds}", "START SLAVE")

    def _gtid(self, instance: EngineInstance) -> str:
        return self._query(instance, "SELECT @@gtid_current_pos")[0][0]

    @property
    def aurora_version(self) -> str:
        return self.engine_version.rsplit("mysql_aurora.", 1)[-1]

    def client_rewrites(self, identifier: str) -> dict[str, Any]:
        """What the client endpoints need to answer as Aurora MySQL for this instance.

        `@@innodb_read_only` tells the role, as on Aurora; MariaDB keeps it OFF on readers
        (replication writes InnoDB) and uses `read_only` instead. `@@hostname` is the instance's
        own (`ip-127-43-1-61`, as Aurora names its hosts): every engine here shares the machine's,
        and the AWS Advanced Python Wrapper tells hosts apart by `CONCAT(@@hostname, ':', @@port)`.
        Under `aurora`: the instance's identity, the cluster's members (republished on every
        topology change), who may inject faults, and the virtual storage nodes whose toxics hold
        the writer's commits.
        """
        return {"@@aurora_server_id": f"'{identifier}'",
                "@@aurora_version": f"'{self.aurora_version}'",
                "@@innodb_read_only": "0" if identifier == self.writer_id else "1",
                "@@hostname": f"'ip-{self.instances[identifier].host.replace('.', '-')}'",
                "aurora": {"region": self.root.parent.name, "cluster": self.root.name, "instance": identifier,
                           "master_user": self.master_user, "writer": self.writer_id or "",
                           "members": sorted(self.instances), "version": self.aurora_version,
                           "storage_links": [self._link_name("sn", n) for n in STORAGE_NODES],
                           "quorum": WRITE_QUORUM, "disks": len(STORAGE_NODES), "nodes": len(STORAGE_NODES)}}

    # --- roles -------------------------------------------------------------------------------------
    def start_first_writer(self, instance: EngineInstance, master_user: str, master_password: str,
                           database: str | None) -> None:
        resting = self.volume_dir / "data"
        fresh = not resting.exists()
        if fresh:
            self.registry.run(["cp", "-a", str(self.template.ensure()), str(instance.data_dir)],
                              as_engine_user=False)
        else:
            shutil.move(str(resting), instance.data_dir)
        self._start(instance, writer=True)
        self.writer_id = instance.identifier
        self.master_user = master_user
        self._publish_storage_links()
        if fresh:
            self._create_master_user(instance, master_user, master_password, database)
        self._start_archive(instance)

    def _create_master_user(self, writer: EngineInstance, user: str, password: str, database: str | None) -> None:
        with self.admin(writer) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY PASSWORD %s", (user, native_password_hash(password)))
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
            cursor.execute(f"REVOKE {', '.join(MASTER_REVOKED)} ON *.* FROM %s@'%%'", (user,))
            if database:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")

    def set_master_password(self, user: str, password: str) -> None:
        with self.admin(self.writer()) as conn, conn.cursor() as cursor:
            cursor.execute("SET PASSWORD FOR %s@'%%' = %s", (user, native_password_hash(password)))

    def add_reader(self, instance: EngineInstance) -> None:
        """A new reader: a mariadb-backup of the writer, replicating from where the backup ends."""
        self._clone_from_writer(instance)
        self._start(instance, writer=False)
        self._replicate(instance, self._backup_gtid(instance))

    def _clone_from_writer(self, instance: EngineInstance) -> None:
        writer = self.writer()
        backup = instance.root / "backup"
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(instance.data_dir, ignore_errors=True)
        self.registry.give_to_engine_user(instance.root)
        tool = [str(self.bins.backup), f"--defaults-extra-file={self.client_settings}"]
        self.registry.run(tool + ["--backup", f"--target-dir={backup}", f"--socket={self._socket(writer)}"],
                          timeout=600)
        self.registry.run(tool + ["--prepare", f"--target-dir={backup}"], timeout=600)
        backup.rename(instance.data_dir)

    @staticmethod
    def _backup_gtid(instance: EngineInstance) -> str:
        info = (instance.data_dir / "xtrabackup_binlog_info").read_text().split()
        return info[2] if len(info) > 2 else ""

    def _replicate(self, reader: EngineInstance, gtid: str | None = None) -> None:
        """Point a reader at its link (which follows the writer) and start replication."""
        self._route_reader_link(reader, self.writer())
        statements = ["STOP SLAVE"]
        if gtid is not None:
            statements.append(f"SET GLOBAL gtid_slave_pos = '{gtid}'")
        statements += [
            f"CHANGE MASTER TO MASTER_HOST='{self.reader_link_host(self._slot(reader))}', "
            f"MASTER_PORT={self.port}, MASTER_USER='{ADMIN_USER}', MASTER_PASSWORD='{self.admin_password}', "
            f"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
            "START SLAVE",
        ]
        self._query(reader, *statements)

    # --- process control -----------------------------------------------------------------------------
    def restart(self, instance: EngineInstance, *, as_writer: bool) -> None:
        """Reboot in place: the same role afterwards, no failover."""
        self.stop(instance, "fast")
        self._start(instance, writer=as_writer)
        if as_writer:
            self._start_archive(instance)
        else:
            self._query(instance, "START SLAVE")

    def remove(self, instance: EngineInstance, keep_as_volume: bool) -> None:
        self.stop(instance, "fast")
        if keep_as_volume:
            shutil.move(str(instance.data_dir), self.volume_dir / "data")
            self._stop_archive()
            self.writer_id = None
        self.forget_instance(instance)

    # --- failover mechanics ----------------------------------------------------------------------------
    def fence(self, old_writer: EngineInstance) -> None:
        """Stop the old writer at once (MariaDB has no immediate shutdown: this is a crash)."""
        self.stop(old_writer, "kill", timeout=10)
        self._stop_archive()

    def promote(self, target: EngineInstance, *, safe: bool = True) -> str:
        """Make `target` the writer; returns the GTID position where its history forks.

        Safe promotion first lets every reader apply what it received and catches the target up
        from the most advanced one; unsafe promotion (negative controls) takes the target as is.
        One admin session per reader serves the whole promotion: it is on the failover's clock.
        """
        readers = [i for i in self.instances.values() if i.identifier != self.writer_id and i.alive()]
        sessions = {r.identifier: self.admin(r) for r in readers}
        try:
            if safe:
                for reader in readers:
                    self._drain_relay_log(reader, sessions[reader.identifier])
            positions = {}
            for reader in readers:
                positions[reader.identifier] = _rows(sessions[reader.identifier], "STOP SLAVE",
                                                     "SELECT @@gtid_current_pos")[0][0]
            best = max(readers, key=lambda r: gtid_seq(positions[r.identifier]))
            if safe and gtid_seq(positions[best.identifier]) > gtid_seq(positions[target.identifier]):
                self._catch_up(target, sessions[target.identifier], best, positions[best.identifier])
            fork = _rows(sessions[target.identifier], "RESET SLAVE ALL", "SET GLOBAL read_only = OFF",
                         "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SELECT @@gtid_current_pos")[0][0]
        finally:
            for session in sessions.values():
                session.close()
        target.role = "writer"
        self.writer_id = target.identifier
        return fork  # the monitor starts the binlog archive of the new writer (off the failover's clock)

    def _drain_relay_log(self, reader: EngineInstance, session: pymysql.Connection, timeout: float = 30.0) -> None:
        """Wait until a reader has applied everything its replication received."""
        def applied() -> bool:
            with session.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                status = cursor.fetchone() or {}
            current = _rows(session, "SELECT @@gtid_current_pos")[0][0]
            return not status or gtid_seq(current) >= gtid_seq(status.get("Gtid_IO_Pos"))

        wait_until(applied, timeout, interval=0.01, what=f"{reader.identifier} to apply its relay log")

    def _catch_up(self, target: EngineInstance, session: pymysql.Connection, source: EngineInstance, wanted: str,
                  timeout: float = 60.0) -> None:
        """Replicate directly from the most advanced reader until the target holds all it holds."""
        _rows(session, f"CHANGE MASTER TO MASTER_HOST='{source.host}', MASTER_PORT={self.port}, "
                       f"MASTER_USER='{ADMIN_USER}', MASTER_PASSWORD='{self.admin_password}', "
                       f"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", "START SLAVE")
        wait_until(lambda: gtid_seq(_rows(session, "SELECT @@gtid_current_pos")[0][0]) >= gtid_seq(wanted),
                   timeout, interval=0.01, what=f"{target.identifier} to catch up from {source.identifier}")
        _rows(session, "STOP SLAVE")

    def follow(self, reader: EngineInstance, fork: str) -> None:
        """A reader whose history is a prefix of the new writer's follows it; others are re-cloned."""
        if self.alive(reader) and gtid_seq(self._gtid(reader)) <= gtid_seq(fork):
            self._replicate(reader)
        else:
            self.rejoin(reader)

    def rejoin(self, instance: EngineInstance) -> None:
        """Bring an instance back as a reader: a fresh clone of the writer (GTID cannot rewind)."""
        self.stop(instance, "kill")
        self._clone_from_writer(instance)
        self._start(instance, writer=False)
        self._replicate(instance, self._backup_gtid(instance))

    # --- the cluster volume's virtual storage nodes ------------------------------------------------
    def _storage_host(self, index: int) -> str:
        """127.<net>.<cluster>.<140 + node>: the address plan's storage-link block (see addresses.py)."""
        return f"{self.reader_link_host(0).rsplit('.', 1)[0]}.{STORAGE_LINKS + index}"

    def _publish_storage_links(self) -> None:
        """A listener per storage node, routed nowhere: it exists to take toxics."""
        for index, name in enumerate(STORAGE_NODES):
            self.fabric.set_listener(self._link_name("sn", name), self._storage_host(index), self.port,
                                     {"targets": [], "policy": "first", "stale": None})

    def link_names(self) -> list[str]:
        """Replication links (readers') and the virtual storage nodes, which take toxics too."""
        return super().link_names() + [f"storage:{n}" for n in STORAGE_NODES]

    def link_listener(self, link: str) -> str:
        kind, _, name = link.partition(":")
        if kind == "storage" and name in STORAGE_NODES:
            return self._link_name("sn", name)
        return super().link_listener(link)

    # --- what fault injection asks of the engine (fault_injection.py) ------------------------------
    def write_position(self) -> int | None:
        """The writer's last GTID sequence number (domain 0): the position replica lag is timed on."""
        try:
            return gtid_seq(self._query(self.writer(), "SELECT @@gtid_binlog_pos")[0][0])
        except (LookupError, pymysql.MySQLError, OSError):
            return None

    def replication_snapshot(self, observe: Any = None) -> ReplicationSnapshot:
        """Where the writer and each reader stand, in GTID sequence numbers.

        Received is what a reader's relay log holds (its semi-sync acknowledgement), replayed what
        its sessions see. `durable` is the writer's position: semi-sync acknowledged it.
        """
        written = self.write_position()
        if written is not None and observe is not None:
            observe(written)
        readers = {}
        for identifier, instance in list(self.instances.items()):
            if identifier == self.writer_id or not instance.alive():
                continue
            try:
                with self.admin(instance, timeout=2) as conn, conn.cursor(pymysql.cursors.DictCursor) as cursor:
                    cursor.execute("SHOW SLAVE STATUS")
                    status = cursor.fetchone() or {}
                    cursor.execute("SELECT @@gtid_slave_pos AS pos")
                    replayed = gtid_seq(cursor.fetchone()["pos"])
            except (pymysql.MySQLError, OSError):
                continue
            received = max(gtid_seq(status.get("Gtid_IO_Pos")), replayed)
            delay = status.get("SQL_Delay") or 0
            readers[identifier] = ReaderPosition(received=received, replayed=replayed,
                                                 replay_latency_us=int(delay) * 1_000_000 if delay else None)
        return ReplicationSnapshot(durable=written, written=written, readers=readers)

    def end_client_sessions(self, instance: EngineInstance) -> int:
        """A dispatcher crash: every client session on the instance ends; replication stays."""
        ended = 0
        with self.admin(instance) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() "
                           f"AND user NOT IN ({', '.join(repr(u) for u in SYSTEM_USERS)})")
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL CONNECTION {int(session)}")
                    ended += 1
                except pymysql.MySQLError:
                    pass  # gone meanwhile
        return ended

    def drop_caches(self, instance: EngineInstance) -> None:
        """A node crash deletes the cache: no buffer pool dump to warm up from, data files evicted
        from the OS page cache (no-op on tmpfs, where the emulator's data usually lives)."""
        (instance.data_dir / "ib_buffer_pool").unlink(missing_ok=True)
        evict_page_cache(instance.data_dir)

    # --- the binlog archive (continuous backup) --------------------------------------------------------
    def _start_archive(self, writer: EngineInstance) -> None:
        """Stream the writer's binlog into the cluster volume: the history PITR can replay."""
        self._stop_archive()
        directory = self.volume_dir / "binlog-archive" / writer.identifier
        directory.mkdir(parents=True, exist_ok=True)
        self.registry.give_to_engine_user(directory)
        first = self._query(writer, "SHOW BINARY LOGS")[0][0]
        self.archive = self.registry.spawn(
            "binlog-archive",
            [str(self.bins.binlog), f"--defaults-extra-file={self.client_settings}", "--read-from-remote-server",
             f"--socket={self._socket(writer)}", "--raw", "--stop-never",
             f"--stop-never-slave-server-id={self.cluster_slot * 100 + 99}", f"--result-file={directory}/", first],
            log_path=self.volume_dir / "binlog-archive.log", cwd=directory)

    def _stop_archive(self) -> None:
        if self.archive is not None:
            self.archive.stop(signal.SIGTERM, timeout=5)
            self.registry.forget(self.archive)
            self.archive = None

    def revive_storage_nodes(self) -> list[str]:
        """(Re)start the binlog archive of a live writer: after a failover, or if it exited."""
        if (self.archive is None or not self.archive.alive()) and self.writer_id is not None:
            writer = self.writer()
            if writer.alive() and writer.role == "writer":
                self._start_archive(writer)
                return ["binlog-archive"]
        return []

    def destroy(self) -> None:
        self._stop_archive()
        for name in STORAGE_NODES:
            self._remove_link(self._link_name("sn", name))
        super().destroy()
