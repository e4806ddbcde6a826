"""`gameday certify` end to end on the emulator: report, quality gate, certificate, bundle, trends.

One small drill, three runs in a row on Aurora PostgreSQL (loopback net 63), shared by every test:

1. `gameday certify` (DNS TTL 2 s, key in a file, webhook): certified, signed bundle;
2. `gameday run` (DNS TTL 2 s): a second point for the trends;
3. `gameday certify` (DNS TTL 8 s, key in the environment, webhook) with a tight scenario added:
   the stale DNS stretches the RTO past 7 s, so that scenario breaches (the gate fails, exit 1)
   and the drill's own RTO, still within its documented target, regresses against runs 1 and 2.

The emulator's clusters get a known password (the launcher fixes the generator), so the test can
grep every file, archive member, output and webhook body for it and for the signing key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.certify.keys import ENV_KEY, load_public_key, public_key_text
from harness.certify.trends import HISTORY, read_history, run_regressions
from harness.certify.verify import verify
from harness.report.inspect import ensure_chromium, inspect_report
from tests.e2e.conftest import PROJECT

NET = 63
PASSWORD = "Certify-e2e-db-pw-7f3a9c"  # every emulator cluster's master password in these runs
TOKEN = "hook-token-5b1e"  # the secret part of the webhook URL
DRILL = "Failover within the documented time on Aurora PostgreSQL"
TIGHT = "Failover within a tight limit on Aurora PostgreSQL"
FEATURE = """\
@certification
Feature: Certification drill
  Background:
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a steady state of 1 seconds

  Scenario: Failover within the documented time
    When the cluster fails over
    Then writes are back within the documented failover time
    And no acknowledged write is lost
"""
TIGHT_FEATURE = """\
@certification
Feature: Certification drill, tight
  Scenario: Failover within a tight limit
    Given an Aurora cluster with a writer and 1 reader
    And the probes are watching the cluster
    And a steady state of 1 seconds
    When the cluster fails over
    Then writes are back within 7 seconds
"""
# `gameday` with the emulator's password generator fixed: nothing else differs from the real command.
LAUNCHER = f"""\
import sys
import harness.environments as environments
class KnownSecrets:
    @staticmethod
    def token_urlsafe(nbytes=None):
        return {PASSWORD!r}
environments.secrets = KnownSecrets
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Webhook.received.append({"path": self.path, "body": json.loads(body), "raw": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@dataclass
class Drill:
    reports: Path
    key: Ed25519PrivateKey
    key_pem: bytes
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def run_dir(self, run_id: str) -> Path:
        return self.reports / run_id

    def output(self, run_id: str) -> str:
        return self.runs[run_id].stdout + self.runs[run_id].stderr


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    root = tmp_path_factory.mktemp("certify")
    home = Path("/dev/shm") / f"gd-test-certify-{root.name}"
    (root / "drill.feature").write_text(FEATURE)
    (root / "tight.feature").write_text(TIGHT_FEATURE)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (root / "key.pem").write_bytes(pem)
    os.chmod(root / "key.pem", 0o600)
    Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}"
    result = Drill(root / "reports", key, pem)
    env = {**os.environ, "GAMEDAY_EMULATOR_NET": str(NET), "GAMEDAY_EMULATOR_HOME": str(home)}
    env.pop(ENV_KEY, None)
    common = ["--engine", "aurora-postgresql", "--reports", str(result.reports)]
    steps = {
        "c1": (["certify", str(root / "drill.feature"), *common, "--dns-ttl", "2", "--signing-key",
                str(root / "key.pem"), "--notify", hook], env),
        "c2": (["run", str(root / "drill.feature"), *common, "--dns-ttl", "2"], env),
        "c3": (["certify", str(root / "drill.feature"), str(root / "tight.feature"), *common, "--dns-ttl", "8",
                "--notify", hook], {**env, ENV_KEY: pem.decode()}),
    }
    try:
        for run_id, (arguments, environment) in steps.items():
            result.runs[run_id] = subprocess.run([sys.executable, "-c", LAUNCHER, *arguments, "--run-id", run_id],
                                                 cwd=PROJECT, env=environment, capture_output=True, text=True,
                                                 timeout=600)
        result.posts = list(Webhook.received)
        yield result
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(home, ignore_errors=True)


def test_certify_writes_the_report_the_certificate_and_a_signed_bundle(drill: Drill) -> None:
    done = drill.runs["c1"]
    assert done.returncode == 0, drill.output("c1")[-4000:]
    run_dir = drill.run_dir("c1")
    for name in ("html/index.html", "certificate.html", "certificate.pdf", "certificate.json", "junit.xml",
                 "c1.evidence.zip", "c1.evidence.zip.sha256", "quality-gate.json"):
        assert (run_dir / name).is_file(), name
    gate = json.loads((run_dir / "quality-gate.json").read_text())
    assert {g["rule"]: g["success"] for g in gate} == {"certification/maxFailures": True,
                                                       "certification/maxBreachedScenarios": True,
                                                       "certification/minTestsCount": True}
    certificate = json.loads((run_dir / "certificate.json").read_text())
    assert certificate["certified"] and [line["status"] for line in certificate["lines"]] == ["PolicyMet"] * 2
    assert (run_dir / "certificate.pdf").read_bytes().startswith(b"%PDF-")
    assert ET.parse(run_dir / "junit.xml").getroot().get("failures") == "0"
    public = load_public_key(public_key_text(drill.key.public_key()))
    verification = verify(run_dir / "c1.evidence.zip", public)
    assert verification.ok, verification.text()
    assert verification.verdicts == verification.agreeing == 2, "every real verdict is recomputed from its timeline"
    assert "signed by key" in done.stdout and "CERTIFIED" in done.stdout


def test_a_breached_verdict_fails_the_quality_gate_and_the_exit_status(drill: Drill) -> None:
    done = drill.runs["c3"]
    assert done.returncode == 1, drill.output("c3")[-4000:]
    run_dir = drill.run_dir("c3")
    gate = {g["rule"]: g for g in json.loads((run_dir / "quality-gate.json").read_text())}
    assert not gate["certification/maxFailures"]["success"] and gate["certification/maxFailures"]["actual"] == 1
    assert not gate["certification/maxBreachedScenarios"]["success"]
    assert "quality gate: FAILED" in done.stdout
    certificate = json.loads((run_dir / "certificate.json").read_text())
    assert not certificate["certified"]
    breached = [line for line in certificate["lines"] if line["status"] == "PolicyBreached"]
    assert [(line["capability"], line["check"]) for line in breached] == [("Failover within a tight limit",
                                                                          "writes back (RTO)")]
    assert verify(run_dir / "c3.evidence.zip", load_public_key(public_key_text(drill.key.public_key()))).ok, \
        "a breached certification is evidence too: the key came from the environment"


def test_three_runs_make_a_trend_and_the_larger_dns_ttl_is_flagged(drill: Drill) -> None:
    assert drill.runs["c2"].returncode == 0, drill.output("c2")[-3000:]
    history = [e for e in read_history(drill.reports / HISTORY) if e["scenario"] == DRILL]
    assert [e["run_id"] for e in history] == ["c1", "c2", "c3"]
    for figure in ("rto_s", "outage_s", "lost_count", "rpo_s", "lag_p99_s"):
        assert all(e["figures"][figure] is not None for e in history), figure
    rto = [e["figures"]["rto_s"] for e in history]
    assert rto[2] >= 8 > max(rto[:2]), f"the 8 s DNS TTL is in the third RTO: {rto}"
    regressions = run_regressions(drill.reports / HISTORY, run_id="c3", target="emulator")
    assert any(r.scenario == DRILL and r.figure == "rto_s" for r in regressions)
    assert f"REGRESSION  {DRILL}: RTO" in drill.runs["c3"].stdout
    result = next(r for r in _allure_results(drill.run_dir("c3")) if r["name"] == DRILL)
    assert result["status"] == "passed", "a regression is a warning, not a breach"
    assert any(label["name"] == "regression" and "RTO" in label["value"] for label in result["labels"])
    chart = next(a for a in result["attachments"] if a["name"] == "Trend chart")
    svg = (drill.run_dir("c3") / "allure-results" / chart["source"]).read_text()
    panel = re.search(r'<text class="panel"[^>]*>RTO \(s\)</text>(.*?)(?=<text class="panel"|</svg>)', svg, re.S)
    assert panel and panel[1].count('class="point"') == 3, "three runs, three points"
    trends = subprocess.run([sys.executable, "-m", "harness.cli", "trends", "--reports", str(drill.reports)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=60)
    row = next(line for line in trends.stdout.splitlines() if DRILL in line and "RTO (s)" in line)
    assert row.endswith("REGRESSION")


def test_the_webhook_heard_each_certification(drill: Drill) -> None:
    assert [(p["path"], p["body"]["run_id"], p["body"]["outcome"]) for p in drill.posts] == [
        (f"/services/{TOKEN}", "c1", "passed"), (f"/services/{TOKEN}", "c3", "breached")]
    breached = drill.posts[1]["body"]
    assert breached["certified"] is False and breached["exit_code"] == 1
    assert any(TIGHT in line for line in breached["breached"]) and breached["regressions_total"] >= 1
    assert breached["bundle"]["sha256"] == (drill.run_dir("c3") / "c3.evidence.zip.sha256").read_text().split()[0]


def test_no_secret_reaches_a_file_an_archive_an_output_or_the_webhook(drill: Drill) -> None:
    key = drill.key
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem_body = b"".join(line for line in drill.key_pem.splitlines() if not line.startswith(b"-----"))
    secrets = {"database password": PASSWORD.encode(), "key (PEM)": pem_body, "key (base64)": base64.b64encode(seed),
               "key (hex)": seed.hex().encode(), "webhook token": TOKEN.encode()}
    places: dict[str, bytes] = {}
    for path in drill.reports.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes()
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    places.update({f"{path}!{name}": archive.read(name) for name in archive.namelist()})
    for run_id, done in drill.runs.items():
        places[f"{run_id} stdout"], places[f"{run_id} stderr"] = done.stdout.encode(), done.stderr.encode()
    places.update({f"webhook post {i}": post["raw"] for i, post in enumerate(drill.posts)})
    assert len([p for p in places if ".zip!" in p]) > 20, "the bundles were opened"
    leaks = [(what, where) for what, secret in secrets.items() for where, data in places.items() if secret in data]
    assert not leaks, leaks


@pytest.mark.browser
def test_the_report_and_the_certificate_as_chromium_shows_them(drill: Drill, tmp_path: Path) -> None:
    from harness.certify.certificate import print_certificate

    ensure_chromium()
    passed = inspect_report(drill.run_dir("c1") / "html")
    assert [(rule.rule, rule.passed) for rule in passed.quality_gate] == [
        ("certification/maxFailures", True), ("certification/maxBreachedScenarios", True),
        ("certification/minTestsCount", True)]
    assert passed.complete and not passed.external_requests
    failed = inspect_report(drill.run_dir("c3") / "html")
    assert {rule.rule for rule in failed.quality_gate if not rule.passed} == {
        "certification/maxFailures", "certification/maxBreachedScenarios"}
    assert {"RTO breached", "Regression (warning)"} <= set(failed.categories)
    for run_id, verdict in (("c1", "CERTIFIED"), ("c3", "NOT CERTIFIED")):
        certificate = json.loads((drill.run_dir(run_id) / "certificate.json").read_text())
        view = print_certificate(drill.run_dir(run_id) / "certificate.html", tmp_path / f"{run_id}.pdf")
        assert (view.verdict, view.digest) == (verdict, certificate["evidence_digest"])
        assert view.lines == len(certificate["lines"]) and not view.external_requests
        pdf = (tmp_path / f"{run_id}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1, "one page"


def _allure_results(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
