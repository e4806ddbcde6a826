"""Open a rendered report in headless Chromium and say what a person would see in it.

A report can be generated without error and still show an auditor nothing (an attachment that
does not display, a scenario missing from the tree), so the check is made the way a person
reads it: Chromium (Debian's package; `npx playwright install` cannot download browsers here),
driven by playwright-core from `inspect_report.mjs`, expands the tree, opens every scenario, and
opens its "Verdicts" and "Timeline chart" attachments, then reads the Categories and Quality
Gates tabs.

Allure 3 loads its data with fetch(), which Chromium refuses on file://, so the report is served
by a throwaway HTTP server on 127.0.0.1 (port 0) for the length of the inspection.

    python -m harness.report.inspect RUN_DIR   # or the html/ directory itself
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.report.render import OUTPUT, RenderError, latest_run, node_tool

__all__ = ["CHROMIUM", "GateView", "ReportSummary", "ScenarioView", "chromium_script", "ensure_chromium",
           "inspect_report", "main"]

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("inspect_report.mjs")
INSPECT_TIMEOUT = 300
APT_TIMEOUT = 900


@dataclass(frozen=True)
class ScenarioView:
    """One scenario as the report shows it."""

    name: str
    status: str  # passed | failed | broken | skipped | unknown, as the tree marks it
    attachments: tuple[str, ...]
    verdicts: bool  # the "Verdicts" table displays
    chart: bool  # the "Timeline chart" attachment is an SVG that displays

    @property
    def complete(self) -> bool:
        return self.verdicts and self.chart


@dataclass(frozen=True)
class GateView:
    """One rule of the quality gate, as the report's Quality Gates tab shows it."""

    rule: str
    passed: bool
    message: str


@dataclass(frozen=True)
class ReportSummary:
    title: str
    scenarios: tuple[ScenarioView, ...]
    external_requests: tuple[str, ...]  # requests the page tried to send off this machine (blocked)
    categories: tuple[str, ...] = ()  # as the Categories tab lists them
    quality_gate: tuple[GateView, ...] = ()  # as the Quality Gates tab shows them (empty: no gate)

    @property
    def complete(self) -> bool:
        """Every scenario shows its verdicts and chart, and there is at least one scenario."""
        return bool(self.scenarios) and all(s.complete for s in self.scenarios)


def inspect_report(html_dir: Path) -> ReportSummary:
    """Serve `html_dir` on loopback, open it in headless Chromium, and report what it shows."""
    index = Path(html_dir) / "index.html"
    if not index.exists():
        raise RenderError(f"no report at {index}: render it first (`gameday report`)")
    with _serve(Path(html_dir)) as url:
        seen = chromium_script(SCRIPT, [url], timeout=INSPECT_TIMEOUT, what="inspecting the report")
    return ReportSummary(
        title=seen["title"],
        scenarios=tuple(ScenarioView(s["name"], s["status"], tuple(s["attachments"]), s["verdicts"], s["chart"])
                        for s in seen["scenarios"]),
        external_requests=tuple(seen["external"]),
        categories=tuple(seen.get("categories", [])),
        quality_gate=tuple(GateView(g["rule"], g["passed"], g["message"]) for g in seen.get("qualityGate", [])),
    )


def chromium_script(script: Path, arguments: Sequence[str], *, timeout: float, what: str) -> Any:
    """Run a playwright-core script against Debian's Chromium with a throwaway profile
    (`node SCRIPT ARGUMENTS... CHROMIUM PROFILE`); the JSON it printed last."""
    chromium = ensure_chromium()
    node_tool("allure")  # playwright-core is installed with it, from the same package.json
    with tempfile.TemporaryDirectory(prefix="gameday-chromium-") as profile:
        try:
            done = subprocess.run(["node", str(script), *arguments, str(chromium), profile], capture_output=True,
                                  text=True, timeout=timeout, cwd=script.parent)
        except subprocess.TimeoutExpired as exc:
            raise RenderError(f"{what} in Chromium took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RenderError(f"{what} in Chromium failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's packages when missing (sudo unless root)."""
    if CHROMIUM.exists():
        return CHROMIUM
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT).returncode != 0:
            # a fresh machine has no package lists yet
            subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, capture_output=True, timeout=APT_TIMEOUT,
                           check=True)
            subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        raise RenderError(f"could not install Chromium with apt-get: {exc}\n{stderr.decode(errors='replace')[-2000:]}"
                          ) from exc
    if not CHROMIUM.exists():
        raise RenderError(f"apt-get installed chromium but {CHROMIUM} is missing")
    return CHROMIUM


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    """A static HTTP server for `directory` on 127.0.0.1 and a free port; yields index.html's URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    """Print what the report shows; 1 if a scenario lacks its verdicts or chart, 2 if there is no report."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m harness.report.inspect [RUN_DIR]  (default: the latest run)", file=sys.stderr)
        return 2
    try:
        target = Path(args[0]) if args else latest_run(Path.cwd() / "reports")
    except RenderError as exc:
        print(f"inspect: {exc}", file=sys.stderr)
        return 2
    html_dir = target / OUTPUT if (target / OUTPUT / "index.html").exists() else target
    try:
        summary = inspect_report(html_dir)
    except RenderError as exc:
        print(f"inspect: {exc}", file=sys.stderr)
        return 2
    print(f"{summary.title}: {len(summary.scenarios)} scenarios")
    for s in summary.scenarios:
        marks = f"verdicts {'✓' if s.verdicts else '✗ MISSING'}  chart {'✓' if s.chart else '✗ MISSING'}"
        print(f"  {s.status:<8} {s.name}  [{marks}]")
    if summary.categories:
        print(f"  categories: {', '.join(summary.categories)}")
    for rule in summary.quality_gate:
        print(f"  quality gate {'✓' if rule.passed else '✗'} {rule.rule}: {rule.message}")
    for request in summary.external_requests:
        print(f"  blocked a request off this machine: {request}")
    if not summary.complete:
        print("inspect: some scenarios lack their verdicts or chart", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
