"""The emulator daemon and `gameday emulator ...`: real processes, real boto3, nothing left running."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from harness.cli import main
from harness.emulator import daemon
from harness.emulator.processes import MARKER_ENV
from tests.emulator.support import wait_for

GAMEDAY = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gameday")
PASSWORD = "daemon-test-pw-1"
NO_DAEMON = "no emulator is running for state dir"


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A fresh state dir on tmpfs (engines run as another account and must traverse it)."""
    path = Path(f"/dev/shm/gd-test-cli-{time.time_ns()}")
    yield path
    daemon.down(path, timeout=10)
    shutil.rmtree(path, ignore_errors=True)


def gameday(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GAMEDAY, *args], capture_output=True, text=True, timeout=120)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`gameday ...` in-process, where no separate process is needed."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def up(state_dir: Path, net: int) -> dict[str, Any]:
    return daemon.up(state_dir, port=0, net=net, dns_ttl=0)


def rds_client(info: dict[str, Any]) -> Any:
    return boto3.client("rds", endpoint_url=info["endpoint_url"], region_name=info["region"],
                        aws_access_key_id=info["aws_access_key_id"],
                        aws_secret_access_key=info["aws_secret_access_key"])


def create_cluster_with_writer(rds: Any, cluster: str) -> str:
    writer = f"{cluster}-1"
    rds.create_db_cluster(DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="master",
                          MasterUserPassword=PASSWORD)
    rds.create_db_instance(DBInstanceIdentifier=writer, DBClusterIdentifier=cluster, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    wait_for(lambda: rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]["DBInstanceStatus"]
             == "available", timeout=60, interval=0.1, what=f"{writer} available")
    return writer


# --- looking at processes through /proc -----------------------------------------------------------------
def _read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    stat = _read(pid, "stat")
    return bool(stat) and stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def processes_of(state_dir: Path) -> dict[int, str]:
    """pid -> command line of every live process that names the state dir in its argv or owner marker."""
    names_dir = re.compile(re.escape(str(state_dir).encode()) + rb"(/|\0|$)")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        cmdline = _read(pid, "cmdline")
        marker = next((item for item in _read(pid, "environ").split(b"\0")
                       if item.startswith(f"{MARKER_ENV}=".encode())), b"")
        if (names_dir.search(cmdline) or names_dir.search(marker)) and alive(pid):
            found[pid] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def engines_of(state_dir: Path) -> set[int]:
    """Engine and storage-node processes working on the state dir (`postgres -D <dir>...`, `pg_receivewal`)."""
    return {pid for pid, cmdline in processes_of(state_dir).items()
            if re.search(r"/(postgres|pg_receivewal) ", cmdline) and f"-D {state_dir}/" in cmdline}


def watchdog_of(daemon_pid: int) -> int:
    """The watchdog's argv ends with its owner's marker, which starts with the owner's pid."""
    for entry in Path("/proc").iterdir():
        argv = _read(int(entry.name), "cmdline").decode(errors="replace").rstrip("\0").split("\0") \
            if entry.name.isdigit() else []
        if "harness.emulator.watchdog" in argv and argv[-1].startswith(f"{daemon_pid}:"):
            return int(entry.name)
    raise AssertionError(f"no watchdog found for daemon {daemon_pid}")


# --- tests ------------------------------------------------------------------------------------------------
def test_up_serves_boto3_and_down_leaves_nothing_running(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = gameday("emulator", "up", "--state-dir", str(state_dir), "--port", "0", "--net", "50", "--dns-ttl", "0")
    assert started.returncode == 0, started.stderr
    printed = {key: re.search(pattern, started.stdout).group(1) for key, pattern in {
        "endpoint_url": r"endpoint URL:\s+(\S+)", "region": r"region:\s+(\S+)",
        "aws_access_key_id": r"export AWS_ACCESS_KEY_ID=(\S+)",
        "aws_secret_access_key": r"export AWS_SECRET_ACCESS_KEY=(\S+)"}.items()}
    assert "import boto3" in started.stdout and "boto3.client(\"rds\"" in started.stdout
    rds = rds_client(printed)
    assert rds.describe_db_clusters()["DBClusters"] == []

    code, out, _ = cli(capsys, "emulator", "up", "--state-dir", str(state_dir), "--net", "50")
    assert code == 0 and "already running" in out and printed["endpoint_url"] in out

    writer = create_cluster_with_writer(rds, "gd-daemon")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="gd-daemon")["DBClusters"][0]
    instance_address = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]["Endpoint"]["Address"]
    code, out, _ = cli(capsys, "emulator", "status", "--state-dir", str(state_dir))
    assert code == 0
    assert "cluster gd-daemon" in out and f"writer {writer}" in out
    assert cluster["Endpoint"] in out and cluster["ReaderEndpoint"] in out and instance_address in out
    assert re.search(rf"{writer}\s+writer\s+available\s+us-east-1\w", out)
    assert "sn_a1 running" in out

    reader_gone = subprocess.Popen([GAMEDAY, "emulator", "status", "--state-dir", str(state_dir)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()  # as `gameday emulator status | head` once head has its lines
    assert (reader_gone.wait(30), reader_gone.stderr.read()) == (0, b""), "no Broken pipe error"

    code, out, _ = cli(capsys, "emulator", "requests", "--mutating", "--state-dir", str(state_dir))
    assert code == 0 and re.search(r"us-east-1  CreateDBCluster\n", out) and "DescribeDBClusters" not in out
    code, out, _ = cli(capsys, "emulator", "requests", "--clear", "--state-dir", str(state_dir))
    assert code == 0 and re.match(r"forgot \d+ call", out)
    code, out, _ = cli(capsys, "emulator", "requests", "--state-dir", str(state_dir))
    assert (code, out.strip()) == (0, "no call")

    code, out, _ = cli(capsys, "emulator", "storage", "stop", "gd-daemon", "sn_a1", "--state-dir", str(state_dir))
    assert code == 0 and re.search(r"sn_a1\s+stopped", out)
    code, out, _ = cli(capsys, "emulator", "storage", "status", "gd-daemon", "--state-dir", str(state_dir))
    assert code == 0 and re.search(r"sn_a1\s+stopped", out) and re.search(r"sn_b1\s+running", out)
    code, out, _ = cli(capsys, "emulator", "kill", writer, "--state-dir", str(state_dir))
    assert (code, out.strip()) == (0, f"killed {writer}")
    code, out, err = cli(capsys, "emulator", "kill", "no-such-instance", "--state-dir", str(state_dir))
    assert code == 2 and "DBInstance no-such-instance not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    log = (state_dir / daemon.LOG_FILE).read_text()
    secrets = [PASSWORD, (state_dir / "admin.secret").read_text().strip(),
               daemon.connection_info(state_dir)["control_token"]]
    assert "emulator up at" in log and not [s for s in secrets if s in log]

    code, out, _ = cli(capsys, "emulator", "logs", "-n", "200", "--state-dir", str(state_dir))
    assert code == 0 and "emulator up at" in out
    follower = subprocess.Popen([GAMEDAY, "emulator", "logs", "-n", "0", "-f", "--state-dir", str(state_dir)],
                                stdout=subprocess.PIPE, text=True)

    stopped = gameday("emulator", "down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0 and "stopped the emulator" in stopped.stdout, stopped.stderr
    assert processes_of(state_dir).keys() <= {follower.pid}, "down returns once everything else is gone"
    followed, _ = follower.communicate(timeout=10)
    assert follower.returncode == 0 and "emulator stopped" in followed, "`logs -f` follows until the daemon exits"
    code, _, err = cli(capsys, "emulator", "status", "--state-dir", str(state_dir))
    assert code == 2 and NO_DAEMON in err


def test_commands_without_a_daemon_are_usage_errors(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["status"], ["kill", "x-1"], ["storage", "status", "x"], ["az", "down", "us-east-1a"]):
        code, out, err = cli(capsys, "emulator", *command, "--state-dir", str(state_dir))
        assert code == 2 and out == ""
        assert err.strip() == (f"gameday: {NO_DAEMON} {state_dir.resolve()}; start one with `gameday emulator up`")
    code, out, _ = cli(capsys, "emulator", "down", "--state-dir", str(state_dir))
    assert code == 0 and "no emulator was running" in out


def test_up_on_a_taken_port_fails_with_the_log_tail(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = gameday("emulator", "up", "--state-dir", str(state_dir), "--port", str(port), "--net", "83")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "exited during start" in result.stderr and f"127.0.0.1:{port}: Address already in use" in result.stderr
    assert processes_of(state_dir) == {}


def test_next_up_cleans_up_after_a_killed_daemon_and_watchdog(state_dir: Path) -> None:
    info = up(state_dir, net=81)
    create_cluster_with_writer(rds_client(info), "gd-orphans")
    engines = {pid for pid in engines_of(state_dir) if "/postgres " in processes_of(state_dir).get(pid, "")}
    assert engines

    os.kill(watchdog_of(info["pid"]), signal.SIGKILL)
    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: daemon.daemon_pid(state_dir) is None, timeout=10, what="the daemon's lock to be released")
    # Storage nodes exit once the fabric (their links) has gone; the postmasters stay.
    assert all(alive(pid) for pid in engines), "with the watchdog gone too, nobody stops the engines"

    again = up(state_dir, net=81)
    assert again["pid"] != info["pid"] and not again["already_running"]
    wait_for(lambda: not any(alive(pid) for pid in engines), timeout=10, what="the orphaned engines to be swept")
    assert not engines_of(state_dir)
    assert rds_client(again).describe_db_clusters()["DBClusters"] == [], "a new emulator starts without clusters"

    assert "stopped the emulator" in daemon.down(state_dir)
    assert processes_of(state_dir) == {}


def test_watchdog_removes_the_engines_of_a_killed_daemon(state_dir: Path) -> None:
    info = up(state_dir, net=82)
    create_cluster_with_writer(rds_client(info), "gd-watchdog")
    engines = engines_of(state_dir)
    assert engines

    os.kill(info["pid"], signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in engines), timeout=15, what="the watchdog to kill the engines")
    wait_for(lambda: processes_of(state_dir) == {}, timeout=10, what="the watchdog and fabric to exit")
    assert "no emulator was running" in daemon.down(state_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the engines as another account")
def test_a_state_dir_the_engines_cannot_reach_is_refused_at_up_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    private = Path(f"/dev/shm/gd-test-private-{time.time_ns()}")  # as `mktemp -d` makes it: 0700, root's
    private.mkdir(mode=0o700)
    try:
        code, out, err = cli(capsys, "emulator", "up", "--state-dir", str(private / "emulator"), "--port", "0",
                             "--net", "50")
    finally:
        shutil.rmtree(private)
    assert code != 0 and err.count("\n") == 1, err
    assert f"cannot enter {private} (mode 0700)" in err and f"chmod o+x {private}" in err
    assert not (private / "emulator" / "emulator.json").exists(), "nothing started"
