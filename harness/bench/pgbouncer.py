"""pgbouncer, the yardstick for the fabric's PostgreSQL endpoint proxy.

Installed from the Debian package when missing, run as the engine account (it refuses root)
through the emulator's process registry, so even a SIGKILLed benchmark leaves none behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.bench.common import DbPath, find_program, processes_mentioning, progress, wait_for
from harness.emulator.emulator import Emulator
from harness.emulator.engines.postgres import PgCluster
from harness.emulator.processes import Child

HOST, PORT = "127.77.250.1", 6432  # outside every cluster's /24 in practice


def apt_get(*args: str) -> bool:
    """Run apt-get as root (sudo -n when we are not root); True when it succeeded."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    command = [*sudo, "apt-get", *args]
    progress(f"running: {' '.join(command)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode == 0


def ensure_pgbouncer() -> str | None:
    """The pgbouncer program; install it (Debian package) when missing. None if that failed."""
    found = find_program("pgbouncer")
    if found:
        return found
    progress("pgbouncer is not installed: installing the Debian package")
    if not apt_get("install", "-y", "-qq", "--no-install-recommends", "pgbouncer"):
        apt_get("update", "-qq")
        apt_get("install", "-y", "-qq", "--no-install-recommends", "pgbouncer")
    found = find_program("pgbouncer")
    if found is None:
        progress("pgbouncer could not be installed; its figure is left out")
    elif started := processes_mentioning("/etc/pgbouncer/pgbouncer.ini"):
        # Where no policy-rc.d blocks it, the package starts the system's own pgbouncer service.
        progress(f"note: installing pgbouncer started its system service (pids {started}); "
                 f"`service pgbouncer stop` stops it")
    return found


def scram_secret(engine: PgCluster, writer: str, user: str) -> str:
    """The user's SCRAM verifier: with it in its auth_file pgbouncer can log in to the engine
    on the client's behalf (SCRAM pass-through) without knowing the password."""
    with engine.admin(engine.instances[writer]) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,)).fetchone()
    if not row or not str(row[0]).startswith("SCRAM-SHA-256$"):
        raise RuntimeError(f"no SCRAM verifier for {user}")
    return str(row[0])


def config(directory: Path, engine_host: str, engine_port: int, database: str) -> Path:
    """Session pooling in front of one engine; no Unix socket (it would collide with others')."""
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{database} = host={engine_host} port={engine_port} dbname={database}\n"
        "[pgbouncer]\n"
        f"listen_addr = {HOST}\n"
        f"listen_port = {PORT}\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = session\n"
        "max_client_conn = 100\n"
        "default_pool_size = 20\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    return ini


def wait_listening(host: str, port: int, child: Child, timeout: float = 10.0) -> None:
    def up() -> bool:
        if not child.alive():
            raise RuntimeError(f"pgbouncer exited at start:\n{child.log_tail()}")
        with socket.socket() as sock:
            return sock.connect_ex((host, port)) == 0
    wait_for(up, timeout, f"pgbouncer on {host}:{port}", interval=0.02)


@contextmanager
def pgbouncer(em: Emulator, program: str, engine_host: str, engine_port: int, database: str, user: str,
              secret: str) -> Iterator[DbPath]:
    """pgbouncer in front of one engine for the duration of the block; stopped and checked on exit."""
    directory = em.state_dir / "pgbouncer"
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "userlist.txt").write_text(f'"{user}" "{secret}"\n')
    os.chmod(directory / "userlist.txt", 0o600)
    ini = config(directory, engine_host, engine_port, database)
    em.registry.give_to_engine_user(directory)
    child = em.registry.spawn("pgbouncer", [program, str(ini)], log_path=directory / "stdout.log")
    try:
        wait_listening(HOST, PORT, child)
        yield DbPath(HOST, PORT, proxy_pids=(child.pid,))
    finally:
        child.stop(signal.SIGTERM, timeout=5)
        em.registry.forget(child)
        leftovers = processes_mentioning(str(ini))
        progress("pgbouncer stopped" + (f"; LEFT RUNNING: pids {leftovers}" if leftovers else ", none left"))
