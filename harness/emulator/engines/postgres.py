"""Aurora PostgreSQL on real PostgreSQL processes.

One postmaster per DB instance, each with its own data directory, loopback address and
Unix socket. Readers are hot standbys that stream from the writer through a replication link
in the fabric (so toxics can slow or cut it); the cluster volume is six storage nodes
(see `postgres_volume`). Everything engine-specific about PostgreSQL lives here; the
orchestrator above only asks for roles: start a writer, add a reader, fence, promote, follow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import psycopg
from psycopg import sql

from harness.emulator.engines.postgres_volume import (
    NODES_PER_AZ,
    QUORUM,
    clear_catchup,
    follow_timeline,
    gather_catchup,
    lsn_value,
    segno_of,
)
from harness.emulator.engines.base import BaseBackup, EngineCluster, EngineInstance, RestoredVolume
from harness.emulator.engines import postgres_backup, postgres_blue_green, postgres_global, postgres_surface
from harness.emulator.engines.postgres_surface import PgSurfaceProbe, instance_environment, plpython_available
from harness.emulator.replication import ReaderPosition, ReplicationSnapshot
from harness.emulator.processes import Child, CommandError, ProcessRegistry, wait_until

log = logging.getLogger("harness.emulator")

ADMIN_USER = "rdsadmin"
STORAGE_AZ_COUNT = 3

ENGINE_SETTINGS = {
    # Durability is the storage quorum's job; a killed process loses nothing with fsync off
    # (the page cache survives), only a power cut would, and the emulator does not model that.
    "fsync": "off",
    "wal_level": "logical",  # rds.logical_replication: Blue/Green's green environment subscribes
    "wal_log_hints": "on",  # pg_rewind brings an old writer back as a reader
    "max_wal_senders": "40",
    "max_replication_slots": "20",
    "wal_keep_size": "1024MB",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "wal_receiver_status_interval": "1s",
    "wal_retrieve_retry_interval": "100ms",  # readers re-attach quickly after a writer change
    "wal_receiver_timeout": "10s",
    "wal_sender_timeout": "10s",
    "recovery_target_timeline": "latest",
    "synchronous_commit": "on",
    "password_encryption": "scram-sha-256",
    "log_line_prefix": "'%m [%p] '",
    "log_min_messages": "warning",
    "shared_buffers": "32MB",
    # In the data directory rather than /dev/shm, so a killed engine leaves no segment behind.
    "dynamic_shared_memory_type": "mmap",
    "max_connections": "200",
    # Global Database's managed RPO: SHOW answers -1 while unset (the emulator holds commits itself).
    "rds.global_db_rpo": "-1",
}  # and the extension settings this machine allows (postgres_surface.extension_settings)

TEMPLATE_SQL = [
    "CREATE ROLE rds_superuser NOLOGIN",
    "GRANT pg_monitor, pg_signal_backend, pg_read_all_settings, pg_read_all_stats TO rds_superuser",
]
PER_DATABASE_SQL = [
    "GRANT ALL ON SCHEMA public TO rds_superuser",
    # Aurora's built-in functions (aurora_db_instance_identifier(), aurora_replica_status(), the
    # aurora_inject_*() fault injections...) come from postgres_surface.surface_sql().
]


@dataclass(frozen=True)
class PgBinaries:
    """Where the PostgreSQL server programs are."""

    bindir: Path

    def __call__(self, program: str) -> str:
        return str(self.bindir / program)

    @staticmethod
    def find() -> PgBinaries:
        """PG_BINDIR, else the newest /usr/lib/postgresql/15 style install, else pg_config."""
        candidates: list[Path] = []
        if os.environ.get("PG_BINDIR"):
            candidates.append(Path(os.environ["PG_BINDIR"]))
        candidates += sorted(Path("/usr/lib/postgresql").glob("15/bin"))
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        pg_config = shutil.which("pg_config")
        if pg_config:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
            if out:
                candidates.append(Path(out))
        for bindir in candidates:
            if (bindir / "postgres").exists() and (bindir / "pg_receivewal").exists():
                return PgBinaries(bindir)
        raise FileNotFoundError(
            "PostgreSQL server binaries not found (looked for postgres and pg_receivewal in "
            "$PG_BINDIR and /usr/lib/postgresql/*/bin); run `make engines` to install them"
        )

    def version(self) -> str:
        """'15.20' from 'postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)'."""
        out = subprocess.run([self("postgres"), "--version"], capture_output=True, text=True).stdout
        return out.split("(PostgreSQL)", 1)[-1].split()[0]


def quorum_setting(node_names: list[str]) -> str:
    return f"ANY {QUORUM} ({', '.join(node_names)})"


def storage_node_names() -> list[str]:
    """Two storage nodes per AZ: a1 a2 b1 b2 c1 c2."""
    return [f"sn_{az}{n}" for az in "abc"[:STORAGE_AZ_COUNT] for n in range(1, NODES_PER_AZ + 1)]


class PgTemplate:
    """An initdb'd data directory, built once per emulator and copied for each new cluster.

    Why: initdb costs about a second; a copy costs a tenth of that, which keeps cluster
    creation within a few seconds.
    """

    def __init__(self, registry: ProcessRegistry, bins: PgBinaries, root: Path, admin_password: str,
                 socket_dir: Path):
        self.registry, self.bins, self.root, self.socket_dir = registry, bins, root, socket_dir
        self.admin_password = admin_password
        self.pgdata = root / "pgdata"
        self._lock = threading.Lock()

    def ensure(self) -> Path:
        """The template, rebuilt when the settings or set-up SQL it was built from changed."""
        fingerprint = hashlib.sha1(repr((self._settings(), TEMPLATE_SQL, PER_DATABASE_SQL, self._surface_sql(),
                                         str(self.bins.bindir))).encode()).hexdigest()
        stamp = self.root / "fingerprint"
        with self._lock:
            if not stamp.exists() or stamp.read_text() != fingerprint:
                self._build()
                stamp.write_text(fingerprint)
            return self.pgdata

    def _settings(self) -> dict[str, str]:
        return {**ENGINE_SETTINGS, **postgres_surface.extension_settings(self.bins.bindir)}

    def _surface_sql(self) -> list[str]:
        plpython = plpython_available(self.bins.bindir)
        if not plpython:
            log.warning("plpython3u is not installed: Aurora's aurora_inject_*() and aurora_replica_status() "
                        "functions will raise feature_not_supported (run `make engines`)")
        return postgres_surface.surface_sql(plpython)

    def _build(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        os.chmod(pwfile, 0o600)
        self.registry.give_to_engine_user(self.root)
        self.registry.run(
            [self.bins("initdb"), "-D", str(self.pgdata), "-U", ADMIN_USER, "--pwfile", str(pwfile),
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-N", "-k",
             "-E", "UTF8", "--locale=C.UTF-8"],
            timeout=120,
        )
        pwfile.unlink()
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# aurora-gameday emulator settings\n")
            for key, value in self._settings().items():
                conf.write(f"{key} = {value}\n")
        (self.pgdata / "pg_hba.conf").write_text(
            "# aurora-gameday: passwords only, never trust\n"
            "local all all scram-sha-256\n"
            "local replication all scram-sha-256\n"
            "host all all 127.0.0.0/8 scram-sha-256\n"
            "host replication all 127.0.0.0/8 scram-sha-256\n"
        )
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        self.registry.give_to_engine_user(self.root, socket_dir)
        child = self.registry.spawn(
            "template", [self.bins("postgres"), "-D", str(self.pgdata), "-c", "listen_addresses=",
                         "-c", f"unix_socket_directories={socket_dir}", "-c", "port=5432"],
            log_path=self.root / "build.log",
        )
        try:
            _wait_postmaster(self.pgdata, child, ("ready",), timeout=30)
            with psycopg.connect(host=str(socket_dir), port=5432, user=ADMIN_USER,
                                 password=self.admin_password, dbname="postgres", autocommit=True) as conn:
                for statement in TEMPLATE_SQL:
                    conn.execute(statement)
            per_database = PER_DATABASE_SQL + self._surface_sql()
            for dbname in ("postgres", "template1"):
                with psycopg.connect(host=str(socket_dir), port=5432, user=ADMIN_USER,
                                     password=self.admin_password, dbname=dbname, autocommit=True) as conn:
                    for statement in per_database:
                        conn.execute(statement)
        finally:
            child.stop(signal.SIGINT, timeout=30)
            self.registry.forget(child)


def _wait_postmaster(pgdata: Path, child: Child, states: tuple[str, ...], timeout: float) -> None:
    """Wait until postmaster.pid reports one of `states`.

    'ready' means accepting connections, read-only ones on a hot standby ('standby' is written
    while a standby is still recovering and not yet open).
    """
    pidfile = pgdata / "postmaster.pid"

    def reached() -> bool:
        if not child.alive():
            raise CommandError(f"postgres exited while starting:\n{child.log_tail()}")
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and int(lines[0]) == child.pid and lines[7].strip() in states

    wait_until(reached, timeout, what=f"postgres in {pgdata} to accept connections")


@dataclass
class PgCluster(EngineCluster):
    """Engine side of one Aurora PostgreSQL cluster: instances, storage nodes, links."""

    aurora_engine: ClassVar[str] = "aurora-postgresql"
    # Aurora PostgreSQL restarts the readers when the writer reboots (USER_RebootInstance).
    restarts_readers_with_writer: ClassVar[bool] = True
    backs_up_resting_volume: ClassVar[bool] = True
    STOP_SIGNALS: ClassVar[dict[str, int]] = {"smart": signal.SIGTERM, "fast": signal.SIGINT,
                                              "immediate": signal.SIGQUIT, "kill": signal.SIGKILL}

    bins: PgBinaries | None = None
    template: PgTemplate | None = None
    storage_link_host: Callable[[int], str] | None = None  # node index -> loopback address
    storage_nodes: dict[str, Child | None] = field(default_factory=dict)
    stopped_nodes: set[str] = field(default_factory=set)
    # How the Aurora SQL functions reach the emulator (postgres_surface.ENV_*), per cluster.
    surface_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.volume_dir = self.root / "volume"
        self.catchup_dir = self.volume_dir / "catchup"
        self.passfile = self.root / "pgpass"
        self.node_names = storage_node_names()
        self._node_lock = threading.RLock()
        for name in self.node_names:
            (self.volume_dir / name).mkdir(parents=True, exist_ok=True)
            self.storage_nodes.setdefault(name, None)
        clear_catchup(self.catchup_dir)
        self.probe = PgSurfaceProbe(self)
        self.passfile.write_text(f"*:*:*:{ADMIN_USER}:{self.admin_password}\n")
        os.chmod(self.passfile, 0o600)
        self.registry.give_to_engine_user(self.root)

    # --- links -------------------------------------------------------------------------------------
    def link_names(self) -> list[str]:
        """Replication links that take toxics: readers' and storage nodes'."""
        return super().link_names() + [f"storage:{n}" for n in self.node_names]

    def link_listener(self, link: str) -> str:
        kind, _, name = link.partition(":")
        if kind == "storage" and name in self.node_names:
            return self._link_name("sn", name)
        return super().link_listener(link)

    def storage_nodes_in(self, az: str) -> list[str]:
        """The two storage nodes of an AZ (nodes sn_a*, sn_b*, sn_c* live in the region's AZs in order)."""
        index = self.region_azs.index(az)
        return [n for n in self.node_names if n[3] == "abc"[index]]

    def _route_storage_links(self, writer: EngineInstance) -> None:
        """Point the storage nodes' links at the writer's engine."""
        route = {"targets": [writer.target()], "policy": "first", "stale": None}
        for index, name in enumerate(self.node_names):
            self.fabric.set_listener(self._link_name("sn", name), self.storage_link_host(index), self.port, route)

    # --- instances ---------------------------------------------------------------------------
    def _postgres_argv(self, instance: EngineInstance) -> list[str]:
        """Instance-specific settings go on the command line: pg_rewind and pg_basebackup copy
        the source's configuration files, so nothing that differs per instance may live there."""
        settings = {
            "listen_addresses": instance.host,
            "port": str(self.port),
            "unix_socket_directories": str(instance.socket_dir),
            "cluster_name": instance.identifier,
            "synchronous_standby_names": quorum_setting(self.node_names),
            # Each instance restores from a catch-up directory of its own: a promotion's catch-up holds
            # a partial last segment meant for the promoted reader alone, which would stop any other
            # instance recovering at that moment with "invalid record length".
            "restore_command": f"test -f '{self._catchup(instance)}/%f' && cp '{self._catchup(instance)}/%f' '%p'",
        }
        argv = [self.bins("postgres"), "-D", str(instance.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _start(self, instance: EngineInstance, *, standby: bool, timeout: float = 60) -> None:
        signal_file = instance.data_dir / "standby.signal"
        if standby:
            signal_file.touch()
            self._write_primary_conninfo(instance)
        else:
            signal_file.unlink(missing_ok=True)
            (instance.data_dir / "postgresql.auto.conf").write_text("# managed by aurora-gameday\n")
        self.registry.give_to_engine_user(instance.root, instance.socket_dir)
        instance.child = self.registry.spawn(
            instance.identifier, self._postgres_argv(instance), log_path=instance.log_path,
            env=instance_environment(self.surface_env, instance.identifier),
        )
        instance.role = "reader" if standby else "writer"
        _wait_postmaster(instance.data_dir, instance.child, ("ready",), timeout)

    def _write_primary_conninfo(self, instance: EngineInstance) -> None:
        """Readers always stream through their own link address; the link follows the writer."""
        host = self.upstream_host if self.upstream_host and instance.identifier == self.writer_id \
            else self.reader_link_host(self._slot(instance))  # a Global Database secondary's head: the primary
        conninfo = (
            f"host={host} port={self.port} user={ADMIN_USER} "
            f"passfile={self.passfile} application_name={instance.identifier} connect_timeout=2"
        )
        (instance.data_dir / "postgresql.auto.conf").write_text(
            f"# managed by aurora-gameday\nprimary_conninfo = '{conninfo}'\n"
        )

    def admin(self, instance: EngineInstance, dbname: str = "postgres", timeout: int = 5) -> psycopg.Connection:
        return psycopg.connect(host=str(instance.socket_dir), port=self.port, user=ADMIN_USER,
                               password=self.admin_password, dbname=dbname, autocommit=True,
                               connect_timeout=timeout)

    def start_first_writer(self, instance: EngineInstance, master_user: str, master_password: str,
                           database: str | None) -> None:
        """Bring up the cluster's first writer on a copy of the template (or the resting volume)."""
        resting = self.volume_dir / "pgdata"
        if resting.exists():
            shutil.move(str(resting), instance.data_dir)
            fresh = False
        else:
            self.registry.run(["cp", "-a", str(self.template.ensure()), str(instance.data_dir)],
                              as_engine_user=False)
            fresh = True
        self._start(instance, standby=False)
        self.writer_id = instance.identifier
        self._route_storage_links(instance)
        self.start_storage_nodes()
        if fresh:
            self._create_master_user(instance, master_user, master_password, database)

    def _create_master_user(self, writer: EngineInstance, user: str, password: str, database: str | None) -> None:
        with self.admin(writer) as conn:
            verifier = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256").decode()
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {} IN ROLE rds_superuser")
                         .format(sql.Identifier(user), sql.Literal(verifier)))
            if database and database != "postgres":
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database),
                                                                            sql.Identifier(user)))

    def set_master_password(self, user: str, password: str) -> None:
        writer = self.writer()
        with self.admin(writer) as conn:
            verifier = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256").decode()
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), sql.Literal(verifier)))

    def add_reader(self, instance: EngineInstance) -> None:
        """A new reader: a base backup of the writer, started as a hot standby."""
        self._clone_from_writer(instance)
        self._route_reader_link(instance, self.writer())
        self._start(instance, standby=True)

    def _clone_from_writer(self, instance: EngineInstance) -> None:
        shutil.rmtree(instance.data_dir, ignore_errors=True)
        self.registry.give_to_engine_user(instance.root)
        self.copy_writer(instance.data_dir)

    def copy_writer(self, destination: Path, timeout: float = 300) -> None:
        """A consistent online copy of the writer's data directory, with the WAL it needs (pg_basebackup)."""
        writer = self.writer()
        self.registry.run(
            [self.bins("pg_basebackup"), "-D", str(destination), "-h", str(writer.socket_dir),
             "-p", str(self.port), "-U", ADMIN_USER, "-X", "stream", "-c", "fast", "--no-sync"],
            env={"PGPASSFILE": str(self.passfile)}, timeout=timeout,
        )

    # --- process control -----------------------------------------------------------------------
    def restart(self, instance: EngineInstance, *, as_writer: bool) -> None:
        """Reboot in place: the same role afterwards, no failover."""
        self.stop(instance, "fast")
        self._start(instance, standby=not as_writer)
        if as_writer:
            self.start_storage_nodes()

    def remove(self, instance: EngineInstance, keep_as_volume: bool) -> None:
        self.stop(instance, "fast")
        if keep_as_volume:
            shutil.move(str(instance.data_dir), self.volume_dir / "pgdata")
        self.forget_instance(instance)
        if keep_as_volume:
            self.stop_storage_nodes()
            self.writer_id = None

    # --- storage nodes -------------------------------------------------------------------------
    def start_storage_nodes(self) -> None:
        with self._node_lock:
            for index, name in enumerate(self.node_names):
                if name not in self.stopped_nodes:
                    self._start_node(index, name)

    def _start_node(self, index: int, name: str) -> None:
        child = self.storage_nodes.get(name)
        if child is not None and child.alive():
            return
        conninfo = (f"host={self.storage_link_host(index)} port={self.port} user={ADMIN_USER} "
                    f"passfile={self.passfile} application_name={name} connect_timeout=2")
        self.storage_nodes[name] = self.registry.spawn(
            f"storage-{name}",
            [self.bins("pg_receivewal"), "-D", str(self.volume_dir / name), "--synchronous", "-n",
             "-d", conninfo],
            log_path=self.volume_dir / f"{name}.log",
        )

    def stop_storage_nodes(self) -> None:
        with self._node_lock:
            for name, child in self.storage_nodes.items():
                if child is not None:
                    child.stop(signal.SIGTERM, timeout=5)
                    self.registry.forget(child)
                    self.storage_nodes[name] = None

    def stop_storage_node(self, name: str) -> None:
        """Emulator-only control: the node stops acknowledging until started again."""
        with self._node_lock:
            self._check_node(name)
            self.stopped_nodes.add(name)
            child = self.storage_nodes.get(name)
            if child is not None:
                child.stop(signal.SIGKILL)
                self.registry.forget(child)
                self.storage_nodes[name] = None

    def start_storage_node(self, name: str) -> None:
        with self._node_lock:
            self._check_node(name)
            self.stopped_nodes.discard(name)
            if self.writer_id is not None and self.alive(self.instances[self.writer_id]):
                self._start_node(self.node_names.index(name), name)

    def _check_node(self, name: str) -> None:
        if name not in self.node_names:
            raise KeyError(f"no storage node {name!r}; the nodes are {', '.join(self.node_names)}")

    def revive_storage_nodes(self) -> list[str]:
        """Restart nodes that exited on their own (a dropped link): the monitor calls this."""
        restarted: list[str] = []
        if self.upstream_host:
            return restarted  # a Global Database secondary: nothing commits here
        with self._node_lock:
            writer = self.instances.get(self.writer_id or "")
            if writer is None or not self.alive(writer):
                return restarted
            for index, name in enumerate(self.node_names):
                child = self.storage_nodes.get(name)
                if name not in self.stopped_nodes and (child is None or not child.alive()):
                    if child is not None:
                        self.registry.forget(child)
                    self._start_node(index, name)
                    restarted.append(name)
        return restarted

    def storage_status(self) -> dict[str, str]:
        status = {}
        for name in self.node_names:
            child = self.storage_nodes.get(name)
            status[name] = "stopped" if name in self.stopped_nodes else (
                "running" if child is not None and child.alive() else "down")
        return status

    # --- failover mechanics --------------------------------------------------------------------
    def fence(self, old_writer: EngineInstance) -> None:
        """Stop the old writer at once; nothing it writes from now on can be acknowledged."""
        self.stop(old_writer, "immediate", timeout=10)
        self.stop_storage_nodes()

    def promote(self, target: EngineInstance, *, safe: bool = True) -> str:
        """Make `target` the writer; returns the LSN where its new timeline forked.

        Safe promotion first hands the target the most complete WAL any storage node holds,
        which includes every quorum-acknowledged commit. Unsafe promotion (emulator-only, for
        negative controls) skips that, so acknowledged commits really can be lost.
        """
        with self.admin(target) as conn:
            replayed, received = conn.execute("SELECT pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn()").fetchone()
            if safe:
                # Only reachable nodes count: any 2 of the 4 that survive an AZ outage hold every
                # quorum-acknowledged commit. What the target streamed beyond the nodes stays its own.
                reachable = [self.volume_dir / n for n in self.node_names if n not in self.stopped_nodes]
                held_to = max(lsn_value(str(replayed)), lsn_value(str(received)) if received is not None else 0)
                gather_catchup(reachable, self._catchup(target), segno_of(str(replayed)), held_to)
            try:
                promoted = conn.execute("SELECT pg_promote(true, 60)").fetchone()[0]
            finally:
                clear_catchup(self._catchup(target))
        if not promoted:
            raise CommandError(f"{target.identifier} did not finish promotion within 60 s")
        target.role = "writer"
        self.writer_id = target.identifier
        self._route_storage_links(target)
        fork_lsn, timeline = self._fork(target)
        for name in self.node_names:
            follow_timeline(self.volume_dir / name, timeline, fork_lsn)
        self.start_storage_nodes()
        return fork_lsn

    def _catchup(self, instance: EngineInstance) -> Path:
        return self.catchup_dir / instance.identifier

    def caught_up(self, instance: EngineInstance) -> bool:
        """Has streamed from a writer since it last started: not a rewound or restarted instance
        still replaying restored WAL (promoting one of those loses the end of its history). A reader
        whose writer just died keeps what it streamed, so it stays a candidate."""
        try:
            with self.admin(instance, timeout=2) as conn:
                row = conn.execute("SELECT pg_last_wal_receive_lsn() IS NOT NULL").fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])

    def _fork(self, writer: EngineInstance) -> tuple[str, int]:
        """Where the writer's newest timeline forked, and that timeline, from its history file."""
        latest = sorted((writer.data_dir / "pg_wal").glob("*.history"))[-1]
        last_line = latest.read_text().strip().splitlines()[-1]
        return last_line.split()[1], int(latest.name.removesuffix(".history"), 16)

    def follow(self, reader: EngineInstance, fork_lsn: str) -> None:
        """Make a running reader follow the new writer.

        Its link still points at the fenced old writer, so it cannot receive anything new
        while we look: if everything it replayed lies on the new writer's history (up to the
        fork point) re-pointing its link is enough; otherwise it is rewound first.
        """
        replayed = self._settled_replay_lsn(reader) if self.alive(reader) else None
        if replayed is not None and replayed <= lsn_value(fork_lsn):
            self._route_reader_link(reader, self.writer())
        else:
            self.rejoin(reader)

    def _settled_replay_lsn(self, reader: EngineInstance, timeout: float = 5.0) -> int | None:
        """The reader's replay position once it has applied everything it received."""
        try:
            with self.admin(reader, timeout=3) as conn:
                deadline = time.monotonic() + timeout
                previous = None
                while True:
                    replay, receive = conn.execute(
                        "SELECT pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn()").fetchone()
                    replayed = lsn_value(str(replay))
                    if receive is None or replayed >= lsn_value(str(receive)) or replayed == previous \
                            or time.monotonic() > deadline:
                        return replayed
                    previous = replayed
                    time.sleep(0.05)
        except psycopg.Error:
            return None

    def rejoin(self, instance: EngineInstance) -> None:
        """Bring an instance back as a reader of the current writer.

        pg_rewind discards what it holds beyond the writer's history; when it cannot (it has its
        limits with WAL that ends exactly at a fork), the instance is re-cloned instead.
        """
        writer = self.writer()
        self.stop(instance, "fast")
        # pg_rewind finishes an interrupted recovery in single-user mode, which refuses standby
        # mode; the restart below makes the instance a standby again.
        (instance.data_dir / "standby.signal").unlink(missing_ok=True)
        with self.admin(writer) as conn:
            # pg_rewind reads the source's timeline from its control file, which a freshly
            # promoted writer only updates at its first checkpoint (pg_rewind docs).
            conn.execute("CHECKPOINT")
        try:
            self.registry.run(
                [self.bins("pg_rewind"), "-D", str(instance.data_dir),
                 f"--source-server=host={writer.socket_dir} port={self.port} user={ADMIN_USER} "
                 f"passfile={self.passfile} dbname=postgres"],
                timeout=600,
            )
        except CommandError as exc:
            log.warning("%s: %s; re-cloning it from %s instead", instance.identifier, exc, writer.identifier)
            self._clone_from_writer(instance)
        self._route_reader_link(instance, writer)
        try:
            self._start(instance, standby=True)
        except (CommandError, TimeoutError) as exc:
            # A rewound copy that cannot recover (it loops on a broken record) is rebuilt from a fresh
            # copy of the writer, as Aurora replaces a replica it cannot repair.
            log.warning("%s did not come back after its rewind (%s); rebuilding it from %s", instance.identifier,
                        exc, writer.identifier)
            self.stop(instance, "kill")
            self._clone_from_writer(instance)
            self._start(instance, standby=True)

    # --- continuous backup, snapshots and point-in-time restore (postgres_backup) ------------------------
    def base_backup(self, destination: Path) -> BaseBackup:
        return postgres_backup.base_backup(self, destination)

    def restorable_until(self) -> datetime | None:
        return postgres_backup.restorable_until(self)

    def restore_volume(self, source: EngineCluster, backup: BaseBackup, point_in_time: datetime | None
                       ) -> RestoredVolume:
        if not isinstance(source, PgCluster):
            raise TypeError(f"an Aurora PostgreSQL cluster cannot be restored from {type(source).__name__}")
        return postgres_backup.restore_volume(self, source, backup, point_in_time)

    def prune_continuous_backup(self, before: datetime) -> int:
        return postgres_backup.prune_continuous_backup(self, before)

    def recover_offline(self, pgdata: Path, settings: dict[str, str], log_path: Path,
                        timeout: float = 3600) -> None:
        """Run a private postmaster (no network, no quorum) on `pgdata` until recovery has promoted it,
        then shut it down cleanly; CommandError if it stops first (its log says why)."""
        socket_dir = self.socket_root / f"{self.link_prefix}-restore"
        shutil.rmtree(socket_dir, ignore_errors=True)
        socket_dir.mkdir(parents=True)
        self.registry.give_to_engine_user(socket_dir)
        settings = {"listen_addresses": "", "unix_socket_directories": str(socket_dir), "port": str(self.port),
                    "hot_standby": "off", "synchronous_standby_names": "", **settings}
        argv = [self.bins("postgres"), "-D", str(pgdata)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        child = self.registry.spawn(f"{self.link_prefix}-restore", argv, log_path=log_path)
        try:
            _wait_postmaster(pgdata, child, ("ready",), timeout)  # hot_standby off: ready once promoted
        finally:
            child.stop(signal.SIGINT, timeout=120)
            self.registry.forget(child)
            shutil.rmtree(socket_dir, ignore_errors=True)

    # --- Global Database (postgres_global) ------------------------------------------------------------
    def start_replica_head(self, instance: EngineInstance, source: EngineCluster, link_host: str) -> None:
        postgres_global.start_replica_head(self, instance, _same_engine(source), link_host)

    def stop_volume(self) -> None:
        self.stop_storage_nodes()

    def show_global_db_rpo(self, seconds: int) -> None:
        postgres_global.show_global_db_rpo(self, seconds)

    def finish_history(self) -> int | None:
        return postgres_global.finish_history(self)

    def fence_writes(self) -> int:
        return postgres_global.fence_writes(self)

    def unfence_writes(self) -> None:
        postgres_global.unfence_writes(self)

    def replica_positions(self) -> dict[str, ReaderPosition]:
        return postgres_global.replica_positions(self)

    def stop_replicating(self) -> str:
        return postgres_global.stop_replicating(self)

    def demote_to_replica(self, source: EngineCluster, link_host: str) -> None:
        postgres_global.demote_to_replica(self, _same_engine(source), link_host)

    def rebuild_replica(self, source: EngineCluster, link_host: str) -> None:
        postgres_global.rebuild_replica(self, _same_engine(source), link_host)

    # --- Blue/Green (postgres_blue_green) -----------------------------------------------------------------
    def start_green(self, instance: EngineInstance, master_user: str, master_password: str, database: str | None,
                    source: EngineCluster, link_host: str) -> None:
        postgres_blue_green.start_green(self, instance, master_user, master_password, database,
                                        _same_engine(source), link_host)

    def green_positions(self, source: EngineCluster) -> tuple[int, int] | None:
        return postgres_blue_green.positions(self, _same_engine(source))

    def green_replication_fault(self, source: EngineCluster) -> str | None:
        return postgres_blue_green.replication_fault(self, _same_engine(source))

    def active_writes(self, older_than_s: float) -> list[str]:
        return postgres_blue_green.active_writes(self, older_than_s)

    def sync_sequences(self, source: EngineCluster) -> int:
        return postgres_blue_green.sync_sequences(self, _same_engine(source))

    def stop_green_replication(self, source: EngineCluster | None, *, open_writes: bool) -> None:
        postgres_blue_green.stop_green_replication(self, _same_engine(source) if source else None,
                                                   open_writes=open_writes)

    def stop_publishing(self) -> None:
        postgres_blue_green.drop_publications(self)

    def rename_instance(self, old: str, new: str) -> None:
        self.rename_instances({old: new})

    def rename_instances(self, names: dict[str, str]) -> None:
        """The renamed instances restart together (who each is, is set when its postmaster starts)."""
        for old, new in names.items():
            EngineCluster.rename_instance(self, old, new)
            self.probe._close(old)  # noqa: SLF001 - its session belongs to the old name
        postgres_blue_green.restart_renamed(self, [self.instances[new] for new in names.values()])

    # --- the Aurora SQL surface and fault injection (surface.py, fault_injection.py, postgres_surface) ---
    def write_position(self) -> int | None:
        """The writer's flushed WAL position (for the replica lag clock); on a Global Database
        secondary, how far its replica head has replayed the primary's."""
        if self.upstream_host and self.writer_id in self.instances:
            rows = self.probe._rows(self.instances[self.writer_id], "SELECT pg_catalog.pg_last_wal_replay_lsn()::text")
            return lsn_value(rows[0][0]) if rows and rows[0][0] else None
        return self.probe.write_position()

    def replication_snapshot(self, observe_writer: Callable[[int], None] | None = None) -> ReplicationSnapshot:
        return self.probe.snapshot(observe_writer)

    def end_client_sessions(self, instance: EngineInstance) -> int:
        """A dispatcher crash: end the sessions that came in through the endpoints."""
        return postgres_surface.end_client_sessions(self, instance)

    def destroy(self) -> None:
        self.probe.close()
        self.stop_storage_nodes()
        for name in self.node_names:
            self._remove_link(self._link_name("sn", name))
        super().destroy()


def _same_engine(source: EngineCluster) -> PgCluster:
    if not isinstance(source, PgCluster):
        raise TypeError(f"an Aurora PostgreSQL cluster cannot replicate from {type(source).__name__}")
    return source
