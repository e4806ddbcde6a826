"""`gameday`: the command line of aurora-gameday.

Commands are grouped as users think of them: `gameday run` runs scenarios, `gameday targets`
lists the documented targets, `gameday report` renders a run's HTML report, and `gameday
emulator ...` runs the local Aurora emulator and its emulator-only controls.

Expected failures print one line on stderr, never a traceback: exit status 2 for a usage
error or bad input (unknown instance, no emulator running), 1 when the operation itself
failed (the daemon did not start, the emulator did not answer).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import urllib.error
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.emulator import daemon
from harness.emulator.controls import ControlError
from harness.emulator.controls import TOXIC_TYPES
from harness.emulator.emulator import DEFAULT_REGION, default_state_dir
from harness.emulator.fabric.toxics import STREAMS

PROG = "gameday"
USAGE_ERROR = 2
FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors; callers want a status
        return exit_.code if isinstance(exit_.code, int) else USAGE_ERROR
    try:
        return args.handler(args)
    except daemon.NotRunning as exc:
        return _fail(str(exc), USAGE_ERROR)
    except ControlError as exc:
        return _fail(str(exc), USAGE_ERROR if exc.bad_input else FAILED)
    except daemon.DaemonError as exc:
        return _fail(str(exc), FAILED)
    except urllib.error.URLError as exc:
        return _fail(f"the emulator did not answer: {exc.reason}", FAILED)
    except OSError as exc:  # e.g. a state dir we may not write
        return _fail(str(exc), FAILED)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Chaos and disaster-recovery game days for Amazon Aurora.")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    _add_run_commands(groups)
    _add_emulator_commands(groups)
    return parser


def _add_run_commands(groups: argparse._SubParsersAction) -> None:
    run = groups.add_parser("run", help="run game-day scenarios and write reports/<run-id>/")
    run.add_argument("features", nargs="*", type=Path,
                     help="feature files or directories (default: every scenario in features/)")
    run.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                     help="where the clusters are (default: the local emulator)")
    run.add_argument("--tags", help="select scenarios by tag, e.g. '@emulator-only and not @negative-control'")
    run.add_argument("--profile", type=Path, help="AWS only: the TOML file naming the clusters the harness may touch")
    run.add_argument("--dry-run", action="store_true", help="AWS only: show the plan without acting")
    run.add_argument("--run-id", help="name of the run (default: a timestamp)")
    run.add_argument("--reports", type=Path, default=None, help="where runs are written (default: reports/)")
    run.add_argument("--dns-ttl", type=_bounded(float, 0), default=None,
                     help="emulator only: the cluster endpoint's DNS TTL in seconds (default: 5, as on Aurora)")
    run.add_argument("--load-workers", type=_bounded(int, 0), default=0, metavar="N",
                     help="run each load as a Locust master with N local worker processes (default: one process)")
    run.set_defaults(handler=_run)

    targets = groups.add_parser("targets", help="list the documented targets verdicts are judged against")
    targets.set_defaults(handler=_targets)

    from harness.report.render import add_report_arguments

    add_report_arguments(groups.add_parser("report", help="render a run's HTML report (Allure 3, offline)"))


def _run(args: argparse.Namespace) -> int:
    from harness.run import RunError, RunOptions, run

    options = RunOptions(features=args.features, target=args.target, tags=args.tags, profile=args.profile,
                         dry_run=args.dry_run, run_id=args.run_id, dns_ttl=args.dns_ttl, load_workers=args.load_workers)
    if args.reports is not None:
        options.reports = args.reports
    try:
        return run(options)
    except RunError as exc:
        return _fail(str(exc), USAGE_ERROR)


def _targets(args: argparse.Namespace) -> int:
    from harness.targets import format_targets, load_targets

    print(format_targets(load_targets()))
    return 0


def _bounded(kind: type, low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type that also checks the range, so bad numbers are usage errors."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {bounds}")
        return value
    return parse


# --- gameday emulator ... ----------------------------------------------------------------------------
def _add_emulator_commands(groups: argparse._SubParsersAction) -> None:
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state-dir", type=Path, default=None,
                       help=f"the emulator's state directory (default: {default_state_dir()})")
    region = argparse.ArgumentParser(add_help=False, parents=[state])
    region.add_argument("--region", default=DEFAULT_REGION, help=f"emulated region (default: {DEFAULT_REGION})")

    emulator = groups.add_parser("emulator", help="run the local Aurora emulator and its emulator-only controls")
    commands = emulator.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser("up", parents=[state], help="start the emulator daemon (or show the running one)")
    up.add_argument("--port", type=_bounded(int, 0, 65535), default=daemon.DEFAULT_PORT,
                    help=f"API port on 127.0.0.1 (default: {daemon.DEFAULT_PORT}; 0 picks a free one)")
    up.add_argument("--net", type=_bounded(int, 2, 254), default=daemon.DEFAULT_NET,
                    help=f"endpoints live on 127.<net>.x.y (default: {daemon.DEFAULT_NET})")
    up.add_argument("--dns-ttl", type=_bounded(float, 0), default=daemon.DEFAULT_DNS_TTL,
                    help=f"seconds the cluster endpoint keeps pointing at an old writer (default: {daemon.DEFAULT_DNS_TTL:g})")
    up.add_argument("--timeout", type=_bounded(float, 0), default=60.0, help="seconds to wait for it to start")
    up.set_defaults(handler=_emulator_up)

    down = commands.add_parser("down", parents=[state], help="stop the emulator and everything it started")
    down.add_argument("--timeout", type=_bounded(float, 0), default=30.0,
                      help="seconds to wait for a clean stop before SIGKILL")
    down.set_defaults(handler=_emulator_down)

    status = commands.add_parser("status", parents=[state], help="regions, clusters, instances and storage nodes")
    status.add_argument("--json", action="store_true", help="print the raw status as JSON")
    status.set_defaults(handler=_emulator_status)

    logs = commands.add_parser("logs", parents=[state], help="print the daemon's log")
    logs.add_argument("-n", "--lines", type=_bounded(int, 0), default=50, help="how many last lines (default: 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing until the daemon exits")
    logs.set_defaults(handler=_emulator_logs)

    kill = commands.add_parser("kill", parents=[region], help="SIGKILL an instance's engine (Aurora then recovers it)")
    kill.add_argument("instance")
    kill.set_defaults(handler=lambda args: _say(_control(args, "kill_instance", instance=args.instance)))

    storage = commands.add_parser("storage", help="storage nodes of a cluster volume")
    storage_commands = storage.add_subparsers(dest="storage_command", metavar="COMMAND", required=True)
    for verb in ("stop", "start"):
        node = storage_commands.add_parser(verb, parents=[region], help=f"{verb} one storage node")
        node.add_argument("cluster")
        node.add_argument("node", help="e.g. sn_a1 (nodes sn_a*, sn_b*, sn_c* live in the region's AZs in order)")
        node.set_defaults(handler=_storage_node, verb=verb)
    storage_status = storage_commands.add_parser("status", parents=[region], help="state of every storage node")
    storage_status.add_argument("cluster")
    storage_status.set_defaults(handler=lambda args: _print_storage(_control(args, "storage_status", cluster=args.cluster)))

    az = commands.add_parser("az", help="lose or restore a whole availability zone")
    az_commands = az.add_subparsers(dest="az_command", metavar="COMMAND", required=True)
    for verb in ("down", "up"):
        zone = az_commands.add_parser(verb, parents=[region], help=f"take an AZ {verb} in every cluster of the region")
        zone.add_argument("az", help="e.g. us-east-1a")
        zone.set_defaults(handler=_az, verb=verb)

    links = commands.add_parser("links", parents=[region], help="replication links of a cluster that take toxics")
    links.add_argument("cluster")
    links.set_defaults(handler=lambda args: _say("\n".join(_control(args, "list_links", cluster=args.cluster))))

    toxic = commands.add_parser("toxic", help="network faults on replication links (Toxiproxy-style)")
    toxic_commands = toxic.add_subparsers(dest="toxic_command", metavar="COMMAND", required=True)
    add = toxic_commands.add_parser("add", parents=[region], help="add a toxic to a link")
    add.add_argument("cluster")
    add.add_argument("link", help="as `gameday emulator links` names it, e.g. storage:sn_a1 or reader:<instance>")
    add.add_argument("type", choices=TOXIC_TYPES)
    add.add_argument("--name", help="defaults to the type")
    add.add_argument("--latency-ms", type=_bounded(float, 0), help="latency: added delay")
    add.add_argument("--jitter-ms", type=_bounded(float, 0), help="latency: random extra delay")
    add.add_argument("--timeout-ms", type=_bounded(float, 0), help="reset: delay before the reset")
    add.add_argument("--rate-kbps", type=_bounded(float, 0), help="bandwidth: the rate limit")
    add.add_argument("--percent", type=_bounded(float, 0), help="stall: share of each period held; congestion: "
                                                               "share of chunks delayed (0-100, default 100)")
    add.add_argument("--period-ms", type=_bounded(float, 0), help="stall: the duty cycle (default 1000)")
    add.add_argument("--min-ms", type=_bounded(float, 0), help="congestion: the shortest delay")
    add.add_argument("--max-ms", type=_bounded(float, 0), help="congestion: the longest delay")
    add.add_argument("--stream", choices=STREAMS, default="both", help="direction (default: both)")
    add.set_defaults(handler=_toxic_add)
    remove = toxic_commands.add_parser("remove", parents=[region], help="remove a toxic from a link")
    remove.add_argument("cluster")
    remove.add_argument("link")
    remove.add_argument("name")
    remove.set_defaults(handler=_toxic_remove)

    dns_ttl = commands.add_parser("dns-ttl", parents=[region], help="set how long a cluster endpoint's DNS is stale")
    dns_ttl.add_argument("cluster")
    dns_ttl.add_argument("seconds", type=_bounded(float, 0))
    dns_ttl.set_defaults(handler=_dns_ttl)


def _state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir or default_state_dir()


def _control(args: argparse.Namespace, action: str, **arguments: Any) -> Any:
    return daemon.control_client(_state_dir(args)).call(action, region=args.region, **arguments)


def _say(text: str) -> int:
    print(text)
    return 0


def _emulator_up(args: argparse.Namespace) -> int:
    info = daemon.up(_state_dir(args), port=args.port, net=args.net, dns_ttl=args.dns_ttl, timeout=args.timeout)
    state_flag = f" --state-dir {shlex.quote(str(args.state_dir))}" if args.state_dir else ""
    url, region = info["endpoint_url"], info["region"]
    headline = ("an Aurora emulator is already running" if info["already_running"]
                else "Aurora emulator started")
    print(f"""{headline} (pid {info['pid']}, state dir {info['state_dir']})
  endpoint URL: {url}
  region:       {region}

Point the AWS CLI and boto3 at it (fixed emulator credentials, not secrets):
  export AWS_ACCESS_KEY_ID={info['aws_access_key_id']}
  export AWS_SECRET_ACCESS_KEY={info['aws_secret_access_key']}
  export AWS_DEFAULT_REGION={region}
  export AWS_ENDPOINT_URL_RDS={url}

or in Python:
  import boto3
  rds = boto3.client("rds", endpoint_url="{url}", region_name="{region}", aws_access_key_id="{info['aws_access_key_id']}", aws_secret_access_key="{info['aws_secret_access_key']}")
  print(rds.describe_db_clusters()["DBClusters"])

Status: gameday emulator status{state_flag}    Stop: gameday emulator down{state_flag}""")
    return 0


def _emulator_down(args: argparse.Namespace) -> int:
    return _say(daemon.down(_state_dir(args), timeout=args.timeout))


def _emulator_status(args: argparse.Namespace) -> int:
    report = daemon.status(_state_dir(args))
    if args.json:
        return _say(json.dumps(report, indent=2))
    print(f"Aurora emulator at {report['endpoint_url']} (state dir {report['state_dir']})")
    if report["jobs"]:
        print(f"operations in progress: {', '.join(report['jobs'])}")
    if not report["regions"]:
        print("no regions used yet")
    for region, clusters in report["regions"].items():
        print(f"\nregion {region}: {len(clusters)} cluster(s)")
        for identifier, cluster in clusters.items():
            _print_cluster(identifier, cluster)
    return 0


def _print_cluster(identifier: str, cluster: dict[str, Any]) -> None:
    print(f"\n  cluster {identifier} ({cluster['engine']}): {cluster['status']}, "
          f"writer {cluster['writer'] or '-'}, DNS TTL {cluster['dns_ttl']:g} s")
    print("    endpoints: " + ", ".join(f"{name} {address}" for name, address in cluster["endpoints"].items()))
    rows = [[name, i["role"], i["status"], i["az"], i["endpoint"], str(i["promotion_tier"])]
            for name, i in cluster["instances"].items()]
    for line in _table(["INSTANCE", "ROLE", "STATUS", "AZ", "ENDPOINT", "TIER"], rows) if rows else ["no instances"]:
        print(f"    {line}")
    print("    storage nodes: " + ", ".join(f"{node} {state}" for node, state in cluster["storage_nodes"].items()))


def _print_storage(nodes: dict[str, str]) -> int:
    for line in _table(["NODE", "STATE"], [[node, state] for node, state in nodes.items()]):
        print(line)
    return 0


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [headers, *rows]]


def _emulator_logs(args: argparse.Namespace) -> int:
    daemon.logs(_state_dir(args), args.lines, args.follow)
    return 0


def _storage_node(args: argparse.Namespace) -> int:
    return _print_storage(_control(args, f"{args.verb}_storage_node", cluster=args.cluster, node=args.node))


def _az(args: argparse.Namespace) -> int:
    affected = _control(args, f"az_{args.verb}", az=args.az)
    return _say(f"{args.az} is {args.verb}; clusters affected: {', '.join(affected) or 'none'}")


def _dns_ttl(args: argparse.Namespace) -> int:
    seconds = _control(args, "set_dns_ttl", cluster=args.cluster, seconds=args.seconds)
    return _say(f"DNS TTL of {args.cluster} is now {seconds:g} s")


def _toxic_remove(args: argparse.Namespace) -> int:
    _control(args, "remove_toxic", cluster=args.cluster, link=args.link, name=args.name)
    return _say(f"removed toxic {args.name!r} from {args.link} of {args.cluster}")


def _toxic_add(args: argparse.Namespace) -> int:
    attributes = {name: value for name, value in (("latency_ms", args.latency_ms), ("jitter_ms", args.jitter_ms),
                                                  ("timeout_ms", args.timeout_ms), ("rate_kbps", args.rate_kbps),
                                                  ("percent", args.percent), ("period_ms", args.period_ms),
                                                  ("min_ms", args.min_ms), ("max_ms", args.max_ms))
                  if value is not None}
    toxic = {"type": args.type, "stream": args.stream, "attributes": attributes, **({"name": args.name} if args.name else {})}
    name = _control(args, "add_toxic", cluster=args.cluster, link=args.link, toxic=toxic)
    return _say(f"added {args.type} toxic {name!r} to {args.link} of {args.cluster}")


if __name__ == "__main__":
    sys.exit(main())
