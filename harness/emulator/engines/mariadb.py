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

Continuous backup and point-in-time restore: a binlog archive follows the writer, every server
runs with the binlog clock (when each byte of its binlog was written), and a restore replays the
archive onto a `mariadb-backup` base backup up to what the writers' binlogs held at the point
(`mariadb_backup.py` says how and why).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pymysql

from harness.emulator.addresses import STORAGE_LINKS
from harness.emulator.engines import mariadb_blue_green, mariadb_global
from harness.emulator.engines.base import BaseBackup, EngineCluster, EngineInstance, RestoredVolume, evict_page_cache
from harness.emulator.engines.mariadb_backup import (
    CLOCK_ENV,
    HISTORY_MARKER,
    ONE_MICROSECOND,
    BinlogHistory,
    FlashbackPlan,
    HistoryError,
    ReplayPlan,
    Segment,
    binlog_files,
    binlog_number,
    clock_library,
    domain_gtid,
    from_ns,
    gtid_seq,
    read_transactions,
    to_ns,
)
from harness.emulator.replication import ReaderPosition, ReplicationSnapshot
from harness.emulator.processes import Child, CommandError, ProcessRegistry, wait_until

log = logging.getLogger(__name__)

ADMIN_USER = "rdsadmin"
SEMI_SYNC_TIMEOUT_MS = 365 * 24 * 3600 * 1000  # never fall back to asynchronous replication
RESTORABLE_WAIT_S = 10.0  # how long a restore waits for the binlog archive to reach its point
REPLAY_PACKET = "1G"  # max_allowed_packet for replaying large row events

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
DUMP_END_WAIT_S = 2.0  # how long ending the binlog dump sessions may take
SYSTEM_USERS = (ADMIN_USER, "system user", "event_scheduler", "unauthenticated user")

# The master user gets what Aurora MySQL's does: everything but the server-wide admin powers.
MASTER_REVOKED = ["SUPER", "READ_ONLY ADMIN", "BINLOG ADMIN", "REPLICATION MASTER ADMIN",
                  "REPLICA MONITOR", "SHUTDOWN", "FILE"]


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
    client: Path

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
                 "backup": program("mariadb-backup", "mariabackup"), "binlog": program("mariadb-binlog"),
                 "client": program("mariadb", "mysql")}
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
    """The server's settings beside `path`, with a temporary directory of its own there: with the default
    (/tmp), two emulators bootstrapping their templates at once can trip over each other's files."""
    tmpdir = path.parent / "tmp"
    tmpdir.mkdir(exist_ok=True)
    settings = {**ENGINE_SETTINGS, "tmpdir": str(tmpdir), **(extra or {})}
    path.write_text("\n".join(["[mariadbd]"] + [f"{k}={v}" for k, v in settings.items()]) + "\n")


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

    aurora_engine: ClassVar[str] = "aurora-mysql"
    # Aurora MySQL 2.10+: "the reader DB instances typically remain available while you reboot the writer".
    restarts_readers_with_writer: ClassVar[bool] = False
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
        self.archiving: str | None = None  # the history the running archive receives
        self.history = BinlogHistory(self.volume_dir)
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
        if self.upstream_host and instance.identifier == self.writer_id:
            argv.append("--rpl-semi-sync-slave-enabled=OFF")  # a Global Database head never acknowledges commits
        self.registry.give_to_engine_user(instance.root, instance.socket_dir)
        instance.child = self.registry.spawn(instance.identifier, argv, log_path=instance.log_path,
                                             env=self._clock_env(instance))
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
        self._set_apply_delay(self._reader(reader), -(-milliseconds // 1000))

    def unlag_reader(self, reader: str) -> bool:
        """Undo `lag_reader`: the reader applies what it receives at once again."""
        instance = self._reader(reader)
        with self.admin(instance) as conn, conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute("SHOW SLAVE STATUS")
            delay = int((cursor.fetchone() or {}).get("SQL_Delay") or 0)
        if delay == 0:
            return False
        self._set_apply_delay(instance, 0)
        return True

    def caught_up(self, instance: EngineInstance) -> bool:
        """Applying the writer's changes: its SQL thread runs (its IO thread may be reconnecting to
        a writer that just died; what it received is still there to apply)."""
        try:
            with self.admin(instance, timeout=2) as conn, conn.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                status = cursor.fetchone() or {}
        except (pymysql.MySQLError, OSError):
            return False
        return status.get("Slave_SQL_Running") == "Yes"

    def _reader(self, reader: str) -> EngineInstance:
        if reader not in self.instances or reader == self.writer_id:
            raise KeyError(f"no reader {reader!r}; the readers are "
                           f"{', '.join(i for i in self.instances if i != self.writer_id) or 'none'}")
        return self.instances[reader]

    def _set_apply_delay(self, reader: EngineInstance, seconds: int) -> None:
        self._query(reader, "STOP SLAVE", f"CHANGE MASTER TO MASTER_DELAY = {seconds}", "START SLAVE")

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
        writer = "" if self.upstream_host else self.writer_id or ""  # a Global Database secondary has none
        return {"@@aurora_server_id": f"'{identifier}'",
                "@@aurora_version": f"'{self.aurora_version}'",
                "@@innodb_read_only": "0" if identifier == writer else "1",
                "@@hostname": f"'ip-{self.instances[identifier].host.replace('.', '-')}'",
                "aurora": {"region": self.root.parent.name, "cluster": self.root.name, "instance": identifier,
                           "master_user": self.master_user, "writer": writer,
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
        if self._history_of(instance) is None:  # a new cluster's volume, or a restored one
            self._begin_history(instance)
        self._start(instance, writer=True)
        self.writer_id = instance.identifier
        self.history.became_writer(self._history_of(instance))  # before any write of its own
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
        self._replicate(instance, self._backup_gtid(instance.data_dir))

    def _clone_from_writer(self, instance: EngineInstance) -> None:
        """A fresh copy of the writer as the instance's data directory: a new history begins."""
        backup = instance.root / "backup"
        shutil.rmtree(backup, ignore_errors=True)
        shutil.rmtree(instance.data_dir, ignore_errors=True)
        self.registry.give_to_engine_user(instance.root)
        self._copy_writer(backup)
        backup.rename(instance.data_dir)
        self._begin_history(instance)

    def _copy_writer(self, target: Path) -> datetime:
        """An online, consistent copy of the writer (mariadb-backup --backup, then --prepare) in
        `target`; returns when the copy was complete (the consistent point is before it)."""
        tool = [str(self.bins.backup), f"--defaults-extra-file={self.client_settings}"]
        self.registry.run(tool + ["--backup", f"--target-dir={target}", f"--socket={self._socket(self.writer())}"],
                          timeout=600)
        copied = datetime.now(timezone.utc)
        self.registry.run(tool + ["--prepare", f"--target-dir={target}"], timeout=600)
        return copied

    @staticmethod
    def _backup_gtid(data_dir: Path) -> str:
        info = (data_dir / "xtrabackup_binlog_info").read_text().split()
        return info[2] if len(info) > 2 else ""

    # --- histories: whose binlog is whose, and the clock each server writes ---------------------------
    def _history_of(self, instance: EngineInstance) -> str | None:
        """The history the instance's data directory (its binlog) belongs to."""
        try:
            return (instance.data_dir / HISTORY_MARKER).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _begin_history(self, instance: EngineInstance) -> None:
        """A data directory that was just made (a clone, a new or restored volume) starts a history."""
        (instance.data_dir / HISTORY_MARKER).write_text(self.history.new_history(instance.identifier) + "\n")
        self.registry.give_to_engine_user(self.history.clock_root)

    def _clock_env(self, instance: EngineInstance) -> dict[str, str]:
        """The binlog clock, preloaded into the server (every one: a reader may be promoted)."""
        history, library = self._history_of(instance), clock_library(self.socket_root)
        if history is None or library is None:
            return {}
        return {"LD_PRELOAD": str(library), CLOCK_ENV: str(self.history.clock_path(history))}

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
            self.history.became_writer(self._history_of(instance))
            self._start_archive(instance)
        else:
            self._query(instance, "START SLAVE")

    def remove(self, instance: EngineInstance, keep_as_volume: bool) -> None:
        self.stop(instance, "fast")
        if keep_as_volume:
            self._stop_archive()
        self._drain_to_archive(instance)
        if keep_as_volume:
            shutil.move(str(instance.data_dir), self.volume_dir / "data")
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
            if safe:
                self._catch_up_from_volume(target, sessions[target.identifier])
            self.history.became_writer(self._history_of(target))  # its binlog is the cluster's from here
            # What the catch-up replayed through a client session is in the binlog (log_slave_updates
            # logs the replicated part too) but not in gtid_slave_pos; with another server's GTID last
            # in the binlog, gtid_current_pos would read gtid_slave_pos and lag the data, and every
            # copy of this writer would start replicating before what it already holds.
            fork = _rows(sessions[target.identifier], "RESET SLAVE ALL",
                         "SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos", "SET GLOBAL read_only = OFF",
                         "SET GLOBAL rpl_semi_sync_master_enabled = ON", "SELECT @@gtid_current_pos")[0][0]
        finally:
            for session in sessions.values():
                session.close()
        target.role = "writer"
        self.writer_id = target.identifier
        return fork  # the monitor starts the binlog archive of the new writer (off the failover's clock)

    def _catch_up_from_volume(self, target: EngineInstance, session: pymysql.Connection) -> None:
        """Replay what the old writer's binlog holds beyond the target, logged on the target so its
        readers and its archive have it too. Commits acknowledged while no reader received them
        (a replica failure to all, when semi-sync falls back) are in Aurora's cluster volume, so
        its failover keeps them; here the old writer's binlog plays that volume."""
        old = self.instances.get(self.writer_id or "")
        if old is None or old is target:
            return
        self._drain_to_archive(old)
        position = _rows(session, "SELECT @@gtid_current_pos")[0][0]
        try:
            plan = self.history.plan_beyond(position)
        except (HistoryError, OSError) as error:
            log.warning("%s cannot catch up from the binlog archive: %s", target.identifier, error)
            return
        if not plan.transactions:
            return
        client = shlex.join([str(self.bins.client), f"--defaults-extra-file={self.client_settings}",
                             f"--socket={self._socket(target)}", "--binary-mode", f"--max-allowed-packet={REPLAY_PACKET}"])
        self.registry.run(["bash", "-o", "pipefail", "-c", f"{plan.command(self.bins.binlog, logged=True)} | {client}"],
                          timeout=120)
        log.info("%s caught up %d transactions from the old writer's binlog", target.identifier, plan.transactions)

    def _drain_relay_log(self, reader: EngineInstance, session: pymysql.Connection, timeout: float = 30.0) -> None:
        """Wait until a reader has applied everything its replication received that it can apply.

        The relay log can end in the middle of a transaction (the old writer was fenced while
        sending it; it was never acknowledged, semi-sync acknowledges whole transactions) and the
        SQL thread can have stopped on an error: neither will ever reach the IO thread's position,
        so a reader whose SQL thread waits at the relay log's end while its IO thread is
        disconnected, or whose SQL thread stopped, has applied all it can."""
        def applied() -> bool:
            with session.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                status = cursor.fetchone() or {}
            current = _rows(session, "SELECT @@gtid_current_pos")[0][0]
            if not status or gtid_seq(current) >= gtid_seq(status.get("Gtid_IO_Pos")):
                return True
            if status.get("Slave_SQL_Running") != "Yes":
                log.warning("%s: replication stopped at %s before %s: %s", reader.identifier, current,
                            status.get("Gtid_IO_Pos"), status.get("Last_SQL_Error") or "no error given")
                return True
            return "read all relay log" in (status.get("Slave_SQL_Running_State") or "") and \
                status.get("Slave_IO_Running") != "Yes"

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
        self._drain_to_archive(instance)
        self._clone_from_writer(instance)
        self._start(instance, writer=False)
        self._replicate(instance, self._backup_gtid(instance.data_dir))

    # --- Global Database (mariadb_global) ----------------------------------------------------------------
    def start_replica_head(self, instance: EngineInstance, source: EngineCluster, link_host: str) -> None:
        mariadb_global.start_replica_head(self, instance, _same_engine(source), link_host)

    def stop_volume(self) -> None:
        self._stop_archive()

    def fence_writes(self) -> int:
        return mariadb_global.fence_writes(self)

    def unfence_writes(self) -> None:
        mariadb_global.unfence_writes(self)

    def replica_positions(self) -> dict[str, ReaderPosition]:
        return mariadb_global.replica_positions(self)

    def stop_replicating(self) -> str:
        return mariadb_global.stop_replicating(self)

    def demote_to_replica(self, source: EngineCluster, link_host: str) -> None:
        mariadb_global.demote_to_replica(self, _same_engine(source), link_host)

    def rebuild_replica(self, source: EngineCluster, link_host: str) -> None:
        mariadb_global.rebuild_replica(self, _same_engine(source), link_host)

    # --- Blue/Green (mariadb_blue_green) -------------------------------------------------------------------
    def start_green(self, instance: EngineInstance, master_user: str, master_password: str, database: str | None,
                    source: EngineCluster, link_host: str) -> None:
        mariadb_blue_green.start_green(self, instance, _same_engine(source), link_host)

    def green_positions(self, source: EngineCluster) -> tuple[int, int] | None:
        return mariadb_blue_green.positions(self, _same_engine(source))

    def green_replication_fault(self, source: EngineCluster) -> str | None:
        return mariadb_blue_green.replication_fault(self)

    def active_writes(self, older_than_s: float) -> list[str]:
        return mariadb_blue_green.active_writes(self, older_than_s)

    def stop_green_replication(self, source: EngineCluster | None, *, open_writes: bool) -> None:
        mariadb_blue_green.stop_green_replication(self, open_writes=open_writes)

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

    # --- what fault injection and the SQL surface ask (fault_injection.py, surface.py) ------------
    def write_position(self) -> int | None:
        """The writer's last GTID sequence number (domain 0): the position replica lag is timed on."""
        try:
            return gtid_seq(self._query(self.writer(), "SELECT @@gtid_binlog_pos")[0][0])
        except (LookupError, pymysql.MySQLError, OSError):
            return None

    def replica_status(self, instance: EngineInstance) -> tuple[dict[str, Any], int] | None:
        """An instance's SHOW SLAVE STATUS row and the GTID sequence it has replayed (None when it
        does not answer): where a reader, or a secondary's replica head, stands."""
        try:
            with self.admin(instance, timeout=2) as conn, conn.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                status = cursor.fetchone() or {}
                cursor.execute("SELECT @@gtid_slave_pos AS pos")
                return status, gtid_seq(cursor.fetchone()["pos"])
        except (pymysql.MySQLError, OSError):
            return None

    def replication_snapshot(self, observe_writer: Callable[[int], None] | None = None) -> ReplicationSnapshot:
        """Where the writer and each reader stand, in GTID sequence numbers.

        Received is what a reader's relay log holds (its semi-sync acknowledgement), replayed what
        its sessions see. `durable` is the writer's position: semi-sync acknowledged it.
        """
        written = self.write_position()
        if written is not None and observe_writer is not None:
            observe_writer(written)
        readers = {}
        for identifier, instance in list(self.instances.items()):
            if identifier == self.writer_id or not instance.alive():
                continue
            found = self.replica_status(instance)
            if found is None:
                continue
            status, replayed = found
            received = max(gtid_seq(status.get("Gtid_IO_Pos")), replayed)
            delay = status.get("SQL_Delay") or 0
            readers[identifier] = ReaderPosition(received=received, replayed=replayed,
                                                 replay_latency_us=int(delay) * 1_000_000 if delay else None)
        return ReplicationSnapshot(durable=written, written=written, readers=readers)

    def readers_cut_off(self, readers: list[str]) -> None:
        """With every reader held, end the writer's binlog dump sessions now.

        A dump session learns that its reader's link was reset only when it next writes to it,
        so the first commit after a replica failure to all readers would wait for a
        semi-synchronous acknowledgement until the next heartbeat (a second). Ending them makes
        the writer count no semi-sync replica before the client writes: it commits at once, as
        Aurora's writer does. The readers reconnect through their held links and catch up when
        the hold ends. (A Global Database secondary's dump session ends too and reconnects.)
        """
        if not self.instances or set(readers) < {i for i in self.instances if i != self.writer_id}:
            return  # a healthy reader still acknowledges at once
        writer = self.writer()
        with self.admin(writer) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE command = 'Binlog Dump'")
            for (session,) in cursor.fetchall():
                try:
                    cursor.execute(f"KILL CONNECTION {int(session)}")
                except pymysql.MySQLError:
                    pass  # gone meanwhile
            deadline = time.monotonic() + DUMP_END_WAIT_S
            while time.monotonic() < deadline:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")
                row = cursor.fetchone()
                if row is None or int(row[1]) == 0:
                    return
                time.sleep(0.01)
            log.warning("%s still counts a semi-sync replica after a replica failure to all", writer.identifier)

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
        """Stream the writer's binlog into the cluster volume: the history PITR replays. It resumes
        at the last file already archived (earlier ones are complete), else at the writer's first."""
        self._stop_archive()
        history = self._history_of(writer)
        directory = self.history.archive_dir(history)
        directory.mkdir(parents=True, exist_ok=True)
        self.registry.give_to_engine_user(directory)
        logs = [row[0] for row in self._query(writer, "SHOW BINARY LOGS")]
        archived = self.history.archived_sizes(history)
        first = next((name for name in reversed(logs) if binlog_number(name) in archived), logs[0])
        self.archive = self.registry.spawn(
            "binlog-archive",
            [str(self.bins.binlog), f"--defaults-extra-file={self.client_settings}", "--read-from-remote-server",
             f"--socket={self._socket(writer)}", "--raw", "--stop-never",
             f"--stop-never-slave-server-id={self.cluster_slot * 100 + 99}", f"--result-file={directory}/", first],
            log_path=self.volume_dir / "binlog-archive.log", cwd=directory)
        self.archiving = history

    def _stop_archive(self) -> None:
        if self.archive is not None:
            self.archive.stop(signal.SIGTERM, timeout=5)
            self.registry.forget(self.archive)
            self.archive = None
        self.archiving = None

    def _drain_to_archive(self, instance: EngineInstance) -> None:
        """Before a former writer's data directory goes (re-cloned, deleted) or rests, copy what its
        binlog holds beyond the archive: the commits the asynchronous archive had not received
        when the writer stopped (the cluster volume outlives the instance, as Aurora's does). The
        failover's lineage, not this copy, decides which of them the history keeps."""
        history = self._history_of(instance)
        if history is None or history == self.archiving or history not in self.history.writers():
            return
        directory = self.history.archive_dir(history)
        archived = self.history.archived_sizes(history)
        for path in binlog_files(instance.data_dir):
            if path.stat().st_size > archived.get(binlog_number(path.name), -1):
                partial = directory / f".{path.name}.partial"
                shutil.copyfile(path, partial)
                os.replace(partial, directory / path.name)  # a restore reading the old copy keeps it
        self.registry.give_to_engine_user(directory)

    # --- base backups, snapshots and point-in-time restore ---------------------------------------------
    def base_backup(self, destination: Path) -> BaseBackup:
        """An online mariadb-backup of the writer, prepared (a data directory ready to start);
        its position is the GTID it is consistent at."""
        if destination.exists() and any(destination.iterdir()):
            raise FileExistsError(f"{destination} is not empty")
        destination.mkdir(parents=True, exist_ok=True)
        self.registry.give_to_engine_user(destination)
        started = datetime.now(timezone.utc)
        copied = self._copy_writer(destination)
        size = sum(f.stat().st_size for f in destination.rglob("*") if f.is_file())
        return BaseBackup(destination, self._backup_gtid(destination), started, copied, size)

    def restorable_until(self) -> datetime | None:
        """LatestRestorableTime: now when the binlog archive holds all the writers wrote, else
        just before the first write it lacks; None before any writer, or without the binlog
        clock (then no point can be restored exactly)."""
        if clock_library(self.socket_root) is None:
            return None
        return self.history.restorable_until(datetime.now(timezone.utc))

    def prune_continuous_backup(self, before: datetime) -> int:
        """Drop archived binlog files written entirely before `before` (the oldest kept base
        backup's start: every backup since holds their transactions)."""
        return self.history.prune(before)

    def restore_volume(self, source: EngineCluster, backup: BaseBackup, point_in_time: datetime | None
                       ) -> RestoredVolume:
        """This cluster's resting volume from `backup` of `source`, plus `source`'s binlog archive
        replayed up to what its writers' binlogs held at `point_in_time` (None: the backup alone).
        The replay runs on a private server with the binlog off; the volume's binlog then starts
        at the GTID position reached, so the restored cluster's history continues from there."""
        if not isinstance(source, MariaDbCluster):
            raise ValueError(f"cannot restore an {self.aurora_engine} cluster from a {source.aurora_engine} one")
        resting = self.volume_dir / "data"
        if self.instances or resting.exists():
            raise FileExistsError(f"{self.root.name} already has a volume")
        plan: ReplayPlan | None = None
        began = time.monotonic()
        if point_in_time is not None:
            if clock_library(source.socket_root) is None:
                raise self._unsupported("point-in-time restore (the binlog clock cannot be built: no C compiler)")
            source._wait_restorable(point_in_time)
            planning = time.monotonic()
            plan = source.history.plan(backup.position, point_in_time, backup.started_at)
            log.info("%s: the cut at %s is %s, %d transactions after the backup (planned in %.2f s)",
                     self.root.name, point_in_time.isoformat(), plan.position, plan.transactions,
                     time.monotonic() - planning)
        work = self.volume_dir / "restoring"
        shutil.rmtree(work, ignore_errors=True)
        self.registry.run(["cp", "-a", str(backup.directory), str(work)], as_engine_user=False)
        self.registry.give_to_engine_user(self.volume_dir)
        position = plan.position if plan is not None else backup.position
        self._replay(work, plan, domain_gtid(position))
        work.rename(resting)
        reached = point_in_time if point_in_time is not None else self._backup_moment(source, backup)
        log.info("%s: volume restored from %s to %s (%s) in %.2f s", self.root.name, source.root.name,
                 reached.isoformat(), domain_gtid(position) or "no GTID", time.monotonic() - began)
        return RestoredVolume(reached=reached, position=domain_gtid(position),
                              replayed_bytes=plan.size if plan is not None else 0, resolution_s=1e-6)

    def _wait_restorable(self, point: datetime) -> None:
        """The archive trails the writer by a moment (longer just after a failover, until the new
        writer's archive starts): wait briefly for it to reach a past `point`; a point in the
        future is refused at once."""
        point = point if point.tzinfo else point.replace(tzinfo=timezone.utc)
        deadline = time.monotonic() + RESTORABLE_WAIT_S
        while True:
            until = self.restorable_until()
            if until is not None and until >= point and not self.history.unarchived_writers():
                return
            if until is None or point > datetime.now(timezone.utc) or time.monotonic() > deadline:
                pending = self.history.unarchived_writers()
                raise HistoryError(f"{self.root.name} can be restored up to {until} only, not to {point}"
                                   + (f" (the binlog archive of {', '.join(pending)} has not started)" if pending else ""))
            time.sleep(0.05)

    @staticmethod
    def _backup_moment(source: MariaDbCluster, backup: BaseBackup) -> datetime:
        """The moment a base backup holds the data of: just before the source's first commit after
        its position (within [started_at, taken_at]); taken_at if that cannot be told."""
        try:
            ns = source.history.first_commit_after(backup.position)
        except (HistoryError, OSError):
            ns = None
        if ns is None:
            return backup.taken_at
        return max(backup.started_at, min(backup.taken_at, from_ns(ns) - ONE_MICROSECOND))

    def _replay(self, work: Path, plan: ReplayPlan | None, position: str) -> None:
        """Start a private server on `work`, pipe the plan's binlog ranges into it (binlog off,
        each transaction keeping its GTID), set the GTID state to `position`, stop cleanly."""
        socket_dir = self.socket_root / f"{self.link_prefix}-restore"
        shutil.rmtree(socket_dir, ignore_errors=True)
        socket_dir.mkdir(parents=True)
        self.registry.give_to_engine_user(socket_dir)
        socket = socket_dir / "mysqld.sock"
        argv = [str(self.bins.server), f"--defaults-file={self.settings}", f"--datadir={work}", f"--socket={socket}",
                "--skip-networking", f"--server-id={self.cluster_slot * 100 + 98}", "--read-only=OFF",
                f"--pid-file={self.volume_dir / 'restore.pid'}", f"--max-allowed-packet={REPLAY_PACKET}"]
        child = self.registry.spawn(f"{self.link_prefix}-restore", argv, log_path=self.volume_dir / "restore.log")
        try:
            _wait_ready(child, socket, self.admin_password, 120)
            if plan is not None and plan.segments:
                replaying = time.monotonic()
                client = shlex.join([str(self.bins.client), f"--defaults-extra-file={self.client_settings}",
                                     f"--socket={socket}", "--binary-mode", f"--max-allowed-packet={REPLAY_PACKET}"])
                self.registry.run(["bash", "-o", "pipefail", "-c", f"{plan.command(self.bins.binlog)} | {client}"],
                                  timeout=6 * 3600)
                took = time.monotonic() - replaying
                log.info("%s: replayed %d transactions (%.1f MB of binlog) in %.2f s", self.root.name,
                         plan.transactions, plan.size / 1e6, took)
            with _admin_connect(socket, self.admin_password) as conn:
                statements = ["RESET MASTER"]
                if position:
                    statements += [f"SET GLOBAL gtid_binlog_state = '{position}'",
                                   f"SET GLOBAL gtid_slave_pos = '{position}'"]
                _rows(conn, *statements)
        finally:
            child.stop(signal.SIGTERM, timeout=120)
            self.registry.forget(child)
            shutil.rmtree(socket_dir, ignore_errors=True)

    # --- Backtrack: the cluster rewound in place ---------------------------------------------------------
    def change_records(self) -> int:
        """The binlog writes the writers' clocks recorded (one per transaction, about): the change
        records the archive keeps, branches a backtrack passed over included."""
        return self.history.clock_records()

    def backup_reaches(self, backup: BaseBackup, point_in_time: datetime) -> bool:
        """A backup on the point's branch of the timeline, consistent by the moment that branch's
        link of the point's chain ends (`mariadb_timeline.py`)."""
        if backup.taken_at > point_in_time:
            return False
        timeline = self.history.timeline
        epochs = timeline.epochs()
        if len(epochs) == 1:
            return True
        epoch = timeline.epoch_at(epochs, to_ns(backup.started_at))
        return any(link.epoch.index == epoch.index and to_ns(backup.taken_at) <= link.until_ns
                   for link in timeline.chain(to_ns(point_in_time)))

    def rewind(self, backup: BaseBackup, point_in_time: datetime, pause: Callable[[], None] = lambda: None
               ) -> RestoredVolume:
        """Backtrack in place. The point is planned first (one the archive cannot give fails before
        anything stops). Then the database pauses, as Aurora's does for the whole backtrack: every
        instance stops and its connections close, and the writer's binlog tail is drained into the
        archive (the changes passed over stay reachable: back and forth). The writer's data then
        goes back to the point by one of two ways:

        - **flashback**, when the point is on the current branch, what it passes over is row
          changes all in the current writer's own binlog (a writer promoted since the point has
          them, replicated), and no more than a rebuild would replay: those transactions undone
          newest first on the writer's own data directory (time proportional to the change
          undone, as on Aurora);
        - **rebuild** otherwise (DDL passed over, a point on a branch an earlier backtrack left, a
          writer whose binlog lacks part of the change: cloned after the point) or if the
          flashback fails: a point-in-time restore from `backup` and the archive (the timeline's
          chain for the point) on a private server, swapped in for the writer's data directory.

        A new epoch of the timeline begins, the writer restarts as the writer and each reader is
        re-cloned from it. If the rebuild fails, the instances restart on their data as it was."""
        if clock_library(self.socket_root) is None:
            raise self._unsupported("Backtrack (the binlog clock cannot be built: no C compiler)")
        self._wait_restorable(point_in_time)
        plan = self.history.plan(backup.position, point_in_time, backup.started_at)
        position = domain_gtid(plan.position)
        writer = self.writer()
        readers = [i for i in self.instances.values() if i is not writer]
        paused = time.monotonic()
        pause()
        for reader in readers:
            self.stop(reader, "fast")  # cleanly: its binlog and data agree, for a flashback of its own
        self.stop(writer, "fast")
        self._stop_archive()
        self._drain_to_archive(writer)
        undo = self.history.passed_over(position, point_in_time)  # after the drain: all of it archived
        if undo is not None and undo.size > plan.size:
            undo = None  # more to undo than a rebuild replays: the rebuild is the shorter way
        how = "flashback" if undo is not None and self._flash_back(writer, undo, position) else "rebuild"
        if how == "rebuild":
            self._rebuild(writer, readers, backup, plan, position, resumable=undo is None)
        self.history.timeline.begin(to_ns(point_in_time), position)
        self._begin_history(writer)
        self._start(writer, writer=True)
        self.history.became_writer(self._history_of(writer))
        self._start_archive(writer)
        writes_back = time.monotonic() - paused
        flashed: list[str] = []
        for reader in readers:  # each flashed back on its own, or a fresh copy of the writer
            try:
                if how == "flashback" and self._flash_back_reader(reader, position):
                    flashed.append(reader.identifier)
                else:
                    self.rejoin(reader)
            except Exception:  # the writer is rewound: the backtrack stands, this reader is down
                log.exception("%s could not rejoin after the backtrack", reader.identifier)
        log.info("%s: rewound to %s (%s) by %s in %.2f s, writes back after %.2f s", self.root.name,
                 point_in_time.isoformat(), position or "no GTID", how, time.monotonic() - paused, writes_back)
        return RestoredVolume(reached=point_in_time, position=position,
                              replayed_bytes=plan.size if how == "rebuild" else 0, resolution_s=1e-6,
                              paused_s=writes_back, how=how, readers_flashed_back=tuple(flashed))

    def _flash_back(self, writer: EngineInstance, undo: FlashbackPlan, position: str) -> bool:
        """Undo what the backtrack passes over on the writer's own (stopped) data directory, its
        GTID state set to the point's; False if that failed (the data must then be rebuilt)."""
        try:
            self._replay(writer.data_dir, undo, position)
        except Exception:
            log.warning("%s: flashback to %s failed; rebuilding instead", self.root.name, position, exc_info=True)
            return False
        return True

    def _flash_back_reader(self, reader: EngineInstance, position: str) -> bool:
        """A stopped reader back at `position` by undoing, on its own data, what its own binlog
        holds after it (it logs what it replicates), then replicating from the rewound writer; as
        Aurora's readers, which share the volume, it needs no copy of the writer. Only when its
        binlog holds the very transaction at `position` (the same GTID: the same branch) and
        nothing after it but row changes; False otherwise (then it is re-cloned)."""
        transactions = [tx for path in binlog_files(reader.data_dir) for tx in read_transactions(path)]
        at = next((index for index, tx in enumerate(transactions) if tx.gtid == position), None)
        after = transactions[at + 1:] if at is not None else []
        if at is None or any(tx.standalone for tx in after) or \
                [tx.seq for tx in after] != list(range(gtid_seq(position) + 1, gtid_seq(position) + 1 + len(after))):
            return False
        files = tuple(path for path in binlog_files(reader.data_dir)
                      if after and binlog_number(after[0].file) <= binlog_number(path.name) <= binlog_number(after[-1].file))
        segments = (Segment(files, after[0].start, after[-1].end, after[-1].end - after[0].start),) if after else ()
        try:
            self._replay(reader.data_dir, FlashbackPlan(segments, after[-1] if after else None, position, len(after)),
                         position)
        except Exception:
            log.warning("%s: flashback to %s failed; re-cloning it", reader.identifier, position, exc_info=True)
            return False
        self._begin_history(reader)
        self._start(reader, writer=False)
        self._replicate(reader, position)
        return True

    def _rebuild(self, writer: EngineInstance, readers: list[EngineInstance], backup: BaseBackup, plan: ReplayPlan,
                 position: str, resumable: bool) -> None:
        """The data as of the point restored from `backup` plus the archive, swapped in for the
        writer's data directory; on failure the instances restart on what they had, if `resumable`
        (not after a failed flashback changed it)."""
        work = self.volume_dir / "rewinding"
        shutil.rmtree(work, ignore_errors=True)
        try:
            self.registry.run(["cp", "-a", str(backup.directory), str(work)], as_engine_user=False)
            self.registry.give_to_engine_user(self.volume_dir)
            self._replay(work, plan, position)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            if resumable:
                self._resume(writer, readers)
            raise
        shutil.rmtree(writer.data_dir)
        work.rename(writer.data_dir)

    def _resume(self, writer: EngineInstance, readers: list[EngineInstance]) -> None:
        """A rewind that could not rebuild the data: the instances come back on their data as it was."""
        self._start(writer, writer=True)
        self._start_archive(writer)
        for reader in readers:
            self._start(reader, writer=False)
            self._query(reader, "START SLAVE")

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


def _same_engine(source: EngineCluster) -> MariaDbCluster:
    if not isinstance(source, MariaDbCluster):
        raise TypeError(f"an Aurora MySQL cluster cannot replicate from {type(source).__name__}")
    return source
