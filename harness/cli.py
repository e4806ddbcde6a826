"""`gameday`: the command line of aurora-gameday.

Commands are grouped as users think of them: `gameday run` runs scenarios, `gameday certify`
runs the certification suite and makes its certificate and evidence bundle, `gameday verify`
checks a bundle, `gameday trends` prints the figures over the runs, `gameday targets` lists the
documented targets, `gameday report` renders a run's HTML report, and `gameday emulator ...`
runs the local Aurora emulator and its emulator-only controls.

Expected failures print one line on stderr, never a traceback. Game days (run, certify) exit
0 when every verdict is met, 1 on a breach, 2 on a usage error or bad input, 3 when they could
not run (`EXIT_STATUS` below, also in `gameday --help`); emulator commands exit 2 for bad input
(unknown instance, no emulator running) and 1 when the operation itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
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
from harness.environments import ENGINES

PROG = "gameday"
USAGE_ERROR = 2
FAILED = 1
COULD_NOT_RUN = 3
EXIT_STATUS = """exit status of run and certify (for schedulers and CI):
  0  every verdict met (certify: certified, quality gate passed)
  1  breached: a verdict breached, a scenario failed, or the quality gate failed
  2  usage error or bad input: nothing ran (bad option, malformed feature, bad key or
     profile, no scenario matched, or none of the suite can run on this target)
  3  could not run: the target or the harness failed with nothing breached (the emulator
     did not start, AWS did not answer, a scenario errored, the report tools failed)
verify: 0 verified, 1 not verified (each problem names its file), 2 not a bundle or a bad key.
emulator commands: 2 bad input, 1 the operation failed."""


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
    except BrokenPipeError:  # `gameday emulator status | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # e.g. a state dir we may not write
        return _fail(str(exc), FAILED)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Chaos and disaster-recovery game days for Amazon Aurora.",
                                     epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    _add_run_commands(groups)
    _add_emulator_commands(groups)
    return parser


def _game_day_options() -> argparse.ArgumentParser:
    """The options `gameday run` and `gameday certify` share."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("features", nargs="*", type=Path,
                         help="feature files or directories (default: every scenario in ./features)")
    options.add_argument("--target", choices=("emulator", "aws"), default="emulator",
                         help="where the clusters are (default: the local emulator)")
    options.add_argument("--tags", help="select scenarios by tag, e.g. '@emulator-only and not @negative-control'")
    options.add_argument("--engine", dest="engines", action="append", choices=ENGINES, default=[],
                         help="run each scenario on this engine (repeat for both; default: both on the emulator, "
                              "the engines of the profile's clusters on AWS)")
    options.add_argument("--profile", type=Path,
                         help="the TOML file naming the clusters the harness may touch (AWS), the certification "
                              "suite and the trends' margin")
    options.add_argument("--run-id", help="name of the run (default: a timestamp)")
    options.add_argument("--reports", type=Path, default=None, help="where runs are written (default: ./reports)")
    options.add_argument("--dns-ttl", type=_bounded(float, 0), default=None,
                         help="emulator only: the cluster endpoint's DNS TTL in seconds (default: 5, as on Aurora)")
    options.add_argument("--load-workers", type=_bounded(int, 0), default=0, metavar="N",
                         help="run each load as a Locust master with N local worker processes (default: one process)")
    options.add_argument("--notify", metavar="URL", help="POST a short JSON summary of the run to this webhook "
                                                         "(http or https; never printed)")
    return options


def _add_run_commands(groups: argparse._SubParsersAction) -> None:
    shared = _game_day_options()
    run = groups.add_parser("run", parents=[shared], help="run game-day scenarios and write reports/<run-id>/",
                            epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--dry-run", action="store_true", help="AWS only: show the plan without acting")
    run.set_defaults(handler=_run)

    cleanup = groups.add_parser("cleanup", help="delete what an interrupted run created on AWS (found by its tag)")
    cleanup.add_argument("--profile", type=Path, required=True, help="the TOML profile: its clusters' Regions")
    cleanup.add_argument("--run-id", help="only what this run created (default: everything the harness created)")
    cleanup.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    cleanup.set_defaults(handler=_cleanup)

    certify = groups.add_parser(
        "certify", parents=[shared], epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run the certification suite (@certification) and write its report, certificate and evidence bundle")
    certify.add_argument("--signing-key", type=Path, metavar="FILE",
                         help="Ed25519 private key (PEM, or a 32-byte seed in base64 or hex) that signs the bundle; "
                              "default: $GAMEDAY_SIGNING_KEY; without either the bundle is unsigned")
    certify.set_defaults(handler=_certify, dry_run=False)

    verify = groups.add_parser("verify", help="check an evidence bundle: digests, signature, verdicts recomputed",
                               epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("bundle", type=Path, help="the bundle (<run id>.evidence.zip, or the directory it was "
                                                  "unpacked into)")
    verify.add_argument("--public-key", metavar="KEY",
                        help="the signer's Ed25519 public key: a PEM file, or the key's 32 bytes in base64")
    verify.set_defaults(handler=_verify)

    trends = groups.add_parser("trends", help="each scenario's figures over the last runs, regressions flagged")
    trends.add_argument("--reports", type=Path, default=None, help="where runs are written (default: ./reports)")
    trends.add_argument("--runs", type=_bounded(int, 1), default=5, metavar="N", help="the last N runs (default: 5)")
    trends.add_argument("--scenario", metavar="TEXT", help="only scenarios whose name contains TEXT")
    trends.add_argument("--profile", type=Path, help="read the regression margin from the profile's [trends]")
    trends.set_defaults(handler=_trends)

    targets = groups.add_parser("targets", help="list the documented targets verdicts are judged against")
    targets.set_defaults(handler=_targets)

    from harness.report.render import add_report_arguments

    add_report_arguments(groups.add_parser("report", help="render a run's HTML report (Allure 3, offline)"))


def _run_options(args: argparse.Namespace) -> Any:
    from harness.run import RunOptions

    options = RunOptions(features=args.features, target=args.target, tags=args.tags, engines=args.engines,
                         profile=args.profile,
                         dry_run=args.dry_run, run_id=args.run_id, dns_ttl=args.dns_ttl, load_workers=args.load_workers)
    if args.reports is not None:
        options.reports = args.reports
    return options


def _run(args: argparse.Namespace) -> int:
    from harness.certify.command import after_run
    from harness.certify.notify import check_url
    from harness.run import RunError, execute

    try:
        if args.notify:
            check_url(args.notify)
        result = execute(_run_options(args))
    except RunError as exc:
        return _fail(str(exc), exc.status)
    except ValueError as exc:
        return _fail(str(exc), USAGE_ERROR)
    except OSError as exc:  # the run could not write its reports
        return _fail(str(exc), COULD_NOT_RUN)
    after_run(result, command="run", notify_url=args.notify, profile=args.profile)
    return result.status


def _certify(args: argparse.Namespace) -> int:
    from harness.certify.command import CertifyOptions, certify
    from harness.run import RunError

    try:
        return certify(CertifyOptions(_run_options(args), signing_key=args.signing_key, notify=args.notify))
    except RunError as exc:
        return _fail(str(exc), exc.status)
    except OSError as exc:
        return _fail(str(exc), COULD_NOT_RUN)


def _verify(args: argparse.Namespace) -> int:
    from harness.certify.keys import KeyProblem, load_public_key
    from harness.certify.verify import NotABundle, verify

    try:
        key = load_public_key(args.public_key) if args.public_key else None
        verification = verify(args.bundle, key)
    except (KeyProblem, NotABundle) as exc:
        return _fail(str(exc), USAGE_ERROR)
    print(verification.text())
    return 0 if verification.ok else FAILED


def _trends(args: argparse.Namespace) -> int:
    from harness.certify.settings import SettingsError, trend_settings
    from harness.certify.trends import HISTORY, format_trends, read_history

    history = (args.reports or Path.cwd() / "reports") / HISTORY
    try:
        settings = trend_settings(args.profile)
    except SettingsError as exc:
        return _fail(str(exc), USAGE_ERROR)
    print(format_trends(read_history(history), runs=args.runs, settings=settings, scenario=args.scenario))
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    """Find (and unless --dry-run, delete) the harness's own leftovers in every Region of the profile."""
    import boto3

    from harness.cleanup import delete_leftovers, find_leftovers
    from harness.environments import TargetUnavailable, load_profile

    try:
        regions = sorted({c.region for c in load_profile(args.profile).clusters})
    except TargetUnavailable as exc:
        return _fail(str(exc), USAGE_ERROR)
    if not regions:
        return _fail(f"profile {args.profile} names no cluster, so no Region to look in", USAGE_ERROR)
    found_any = False
    for region in regions:
        rds = boto3.client("rds", region_name=region, endpoint_url=os.environ.get("GAMEDAY_AWS_ENDPOINT_URL"))
        leftovers = find_leftovers(rds, args.run_id)
        found_any = found_any or bool(leftovers)
        for line in leftovers.lines():
            print(("would delete  " if args.dry_run else "deleting  ") + line, flush=True)
        if leftovers and not args.dry_run:
            for line in delete_leftovers(rds, leftovers):
                print(line, flush=True)
    if not found_any:
        print("nothing the harness created is left")
    return 0


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

    outage = commands.add_parser("region", help="lose or restore a whole Region (Global Database game days)")
    outage_commands = outage.add_subparsers(dest="region_command", metavar="COMMAND", required=True)
    for verb in ("down", "up"):
        whole = outage_commands.add_parser(verb, parents=[region], help=f"take the --region {verb}: every instance, "
                                                                        f"endpoint and inter-Region link of it")
        whole.set_defaults(handler=_region_outage, verb=verb)

    between = commands.add_parser("region-link", help="the replication link between two Regions")
    between_commands = between.add_subparsers(dest="link_command", metavar="COMMAND", required=True)
    for verb in ("cut", "restore"):
        pair = between_commands.add_parser(verb, parents=[state], help=f"{verb} replication between two Regions")
        pair.add_argument("region_a")
        pair.add_argument("region_b")
        pair.set_defaults(handler=_region_link, verb=verb)
    rtt = between_commands.add_parser("rtt", parents=[state], help="set the round trip between two Regions")
    rtt.add_argument("region_a")
    rtt.add_argument("region_b")
    rtt.add_argument("milliseconds", type=_bounded(float, 0))
    rtt.set_defaults(handler=_region_rtt)
    network = between_commands.add_parser("status", parents=[state], help="Regions down, links cut, round trips")
    network.set_defaults(handler=lambda args: _say(json.dumps(
        daemon.control_client(_state_dir(args)).call("region_network"), indent=2)))

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

    requests = commands.add_parser("requests", parents=[state],
                                   help="the RDS API calls the emulator received (operation names, never values)")
    requests.add_argument("--mutating", action="store_true", help="only calls that can change something")
    requests.add_argument("--clear", action="store_true", help="forget the calls received so far")
    requests.set_defaults(handler=_emulator_requests)

    dns_ttl = commands.add_parser("dns-ttl", parents=[region], help="set how long a cluster endpoint's DNS is stale")
    dns_ttl.add_argument("cluster")
    dns_ttl.add_argument("seconds", type=_bounded(float, 0))
    dns_ttl.set_defaults(handler=_dns_ttl)


def _emulator_requests(args: argparse.Namespace) -> int:
    """Which RDS calls reached the emulator: point a dry run at it and check it sent no change."""
    from harness.emulator.request_log import is_mutating

    client = daemon.control_client(_state_dir(args))
    if args.clear:
        return _say(f"forgot {client.call('clear_request_log')} call(s)")
    calls = [c for c in client.call("request_log") if not args.mutating or is_mutating(c["operation"])]
    return _say("\n".join(f"{c['index']:>6}  {c['time']}  {c['region']}  {c['operation']}" for c in calls)
                or "no call")


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
  aws rds describe-db-clusters --endpoint-url {url}    # AWS CLI v1 ignores AWS_ENDPOINT_URL_RDS

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
    for identifier, database in (report.get("global_clusters") or {}).items():
        members = ", ".join(f"{member} {sync}" for member, sync in database["members"].items())
        print(f"\nglobal cluster {identifier}: {database['status']}, primary {database['writer'] or '-'}, "
              f"writer endpoint {database['endpoint']}; members: {members or 'none'}")
    network = report.get("network") or {}
    if network.get("down") or network.get("cut"):
        print(f"\nRegions down: {', '.join(network['down']) or 'none'}; links cut: "
              f"{', '.join('-'.join(pair) for pair in network['cut']) or 'none'}")
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


def _region_outage(args: argparse.Namespace) -> int:
    affected = _control(args, f"region_{args.verb}")
    return _say(f"{args.region} is {args.verb}; clusters affected: {', '.join(affected) or 'none'}")


def _region_link(args: argparse.Namespace) -> int:
    daemon.control_client(_state_dir(args)).call(f"{args.verb}_region_link", region_a=args.region_a,
                                                 region_b=args.region_b)
    return _say(f"replication between {args.region_a} and {args.region_b}: {args.verb}")


def _region_rtt(args: argparse.Namespace) -> int:
    rtt_ms = daemon.control_client(_state_dir(args)).call("set_region_rtt", region_a=args.region_a,
                                                          region_b=args.region_b, milliseconds=args.milliseconds)
    return _say(f"round trip between {args.region_a} and {args.region_b}: {rtt_ms:g} ms")


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
