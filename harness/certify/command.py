"""`gameday certify`: run the certification suite and produce what a release needs to ship.

1. The suite: scenarios tagged `@certification` (or the profile's `[certification]` tags and
   feature files), on the emulator or the profile's clusters; `--tags` narrows it further.
2. The Allure report with a quality gate any breached verdict or failed scenario fails (its
   Quality Gates tab shows each rule).
3. The one-page certificate (HTML and a PDF printed by Chromium) and the evidence bundle
   (`<run id>.evidence.zip`, signed when a key is given), both in the run directory.
4. Optionally a JSON summary posted to a webhook (`--notify`).

Exit status as `gameday run`'s (0 certified, 1 breached, 2 usage or nothing to certify, 3 could
not run), and 1 as well when the quality gate fails. Everything that could make a long run
worthless (a bad key, a bad profile, a bad webhook URL) is checked before the run starts.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.certify.bundle import (CERTIFICATE_FILES, Bundle, BundleError, collect_evidence, evidence_digest,
                                    write_bundle)
from harness.certify.certificate import (Certificate, build_certificate, print_certificate, signature_text,
                                         write_certificate)
from harness.certify.keys import KeyProblem, Signer, load_signing_key
from harness.certify.notify import NotifyError, check_url, notify, run_summary, where
from harness.certify.settings import SettingsError, certification_settings, trend_settings
from harness.certify.trends import HISTORY, run_regressions
from harness.environments import AwsEnvironment, TargetUnavailable, load_profile
from harness.report.render import RenderError, quality_gate_results, render
from harness.run import EXIT_BREACHED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, RunError, RunOptions, RunResult, execute

__all__ = ["CERTIFICATION_GATE", "CertifyOptions", "after_run", "certify"]

# Allure 3 quality gate: no failed or broken scenario, no breached one (a rule of its own, so the
# Quality Gates tab says which kind of failure it was), and at least one scenario.
CERTIFICATION_GATE: list[dict[str, Any]] = [
    {"id": "certification", "maxFailures": 0, "maxBreachedScenarios": 0, "minTestsCount": 1}]


@dataclass
class CertifyOptions:
    run: RunOptions = field(default_factory=RunOptions)
    signing_key: Path | None = None  # else $GAMEDAY_SIGNING_KEY, else unsigned
    notify: str | None = None


def certify(options: CertifyOptions) -> int:
    """The whole certification; RunError (with its exit status) when it could not start."""
    try:
        signer = load_signing_key(options.signing_key)
        settings = certification_settings(options.run.profile)
        if options.notify:
            check_url(options.notify)
    except (KeyProblem, SettingsError, ValueError) as error:
        raise RunError(str(error)) from None
    tags = f"({settings.tags}) and ({options.run.tags})" if options.run.tags else settings.tags
    result = execute(replace(options.run, tags=tags, features=options.run.features or settings.features))
    if not any(o.status in ("passed", "failed") for o in result.outcomes):
        print("gameday certify: no scenario of the suite ran to its verdicts on this target: nothing to certify",
              file=sys.stderr)
        after_run(result, command="certify", notify_url=options.notify, profile=options.run.profile)
        return EXIT_USAGE if result.status in (EXIT_OK, EXIT_USAGE) else result.status
    status = result.status
    try:
        index = render(result.run_dir, quality_gate=CERTIFICATION_GATE)
        failed = [g for g in quality_gate_results(result.run_dir) if not g.success]
        print(f"gameday: report: {index}")
        print("gameday: quality gate: " + ("passed" if not failed else "FAILED: " + "; ".join(
            f"{g.rule}: {g.message}" for g in failed)))
        if failed:
            status = EXIT_BREACHED
        regressions = [r.line() for r in run_regressions(result.run_dir.parent / HISTORY, run_id=result.run_id,
                                                         target=result.target,
                                                         settings=trend_settings(options.run.profile))]
        certificate, pdf, bundle = _certificate_and_bundle(result, signer, settings.name, options.run.profile,
                                                           regressions)
    except (RenderError, BundleError) as error:
        print(f"gameday certify: {error}", file=sys.stderr)
        after_run(result, command="certify", notify_url=options.notify, profile=options.run.profile)
        return EXIT_BREACHED if status == EXIT_BREACHED else EXIT_UNAVAILABLE
    print(f"gameday: evidence bundle: {bundle.path} ({bundle.files} files, {bundle.size / 1e6:.1f} MB, sha256 "
          f"{bundle.sha256}), {f'signed by key {bundle.key_id}' if bundle.key_id else 'UNSIGNED (no signing key)'}")
    if status == EXIT_OK and not certificate.certified:
        status = EXIT_BREACHED
    extra = {"certified": certificate.certified, "report": str(index), "certificate": str(pdf),
             "bundle": {"path": str(bundle.path), "sha256": bundle.sha256, "evidence_digest": bundle.evidence_digest,
                        "signed_by": bundle.key_id}}
    after_run(result, command="certify", notify_url=options.notify, profile=options.run.profile, status=status,
              extra=extra, regressions=regressions)
    return status


def _certificate_and_bundle(result: RunResult, signer: Signer | None, name: str | None, profile: Path | None,
                            regressions: list[str]) -> tuple[Certificate, Path, Bundle]:
    """The certificate (naming the evidence's digest) and the bundle that holds both, in the run directory."""
    run_dir = result.run_dir
    passwords = _known_passwords(profile)
    files = collect_evidence(run_dir, history=run_dir.parent / HISTORY, secrets=passwords)
    certificate = build_certificate(run_dir, evidence_digest=evidence_digest(files),
                                    signature=signature_text(signer.key_id if signer else None), name=name,
                                    clusters=_aws_clusters(result, profile), regressions=regressions)
    html, _, pdf = write_certificate(certificate, run_dir)
    view = print_certificate(html, pdf)
    print(f"gameday: certificate: {html} and {pdf.name} ({'CERTIFIED' if certificate.certified else 'NOT CERTIFIED'}"
          f"{f', shrunk to {view.scale:.0%} to fit one page' if view.scale < 1 else ''})")
    files.update({file: (run_dir / file).read_bytes() for file in CERTIFICATE_FILES})
    facts = {"version": _fact(run_dir, "harness.version"), "revision": _fact(run_dir, "git.revision")}
    bundle = write_bundle(run_dir / f"{result.run_id}.evidence.zip", result.run_id, files, signer=signer,
                          harness=facts, secrets=passwords)
    (run_dir / f"{bundle.path.name}.sha256").write_text(f"{bundle.sha256}  {bundle.path.name}\n")
    return certificate, pdf, bundle


def after_run(result: RunResult, *, command: str, notify_url: str | None, profile: Path | None,
              status: int | None = None, extra: dict[str, Any] | None = None,
              regressions: list[str] | None = None) -> None:
    """What every run ends with: its regressions said, and the webhook told (a webhook that fails
    is reported on stderr and changes no exit status: the run's outcome is what it is)."""
    if regressions is None:
        regressions = [r.line() for r in run_regressions(result.run_dir.parent / HISTORY, run_id=result.run_id,
                                                         target=result.target, settings=trend_settings(profile))]
    for regression in regressions:
        print(f"  REGRESSION  {regression}")
    if not notify_url:
        return
    summary = run_summary(replace(result, status=result.status if status is None else status), command=command,
                          regressions=regressions, extra=extra)
    try:
        code = notify(notify_url, summary)
    except NotifyError as error:
        print(f"gameday: {error}", file=sys.stderr)
        return
    print(f"gameday: notified the webhook at {where(notify_url)} (HTTP {code})")


def _known_passwords(profile: Path | None) -> list[str]:
    """The database passwords this process knows (the profile's, from the environment), to keep them
    out of the bundle; the emulator's are generated per cluster and never leave the run."""
    if profile is None:
        return []
    try:
        clusters = load_profile(profile).clusters
    except TargetUnavailable:
        return []
    return [os.environ[c.password_env] for c in clusters if os.environ.get(c.password_env)]


def _aws_clusters(result: RunResult, profile: Path | None) -> list[dict[str, str]]:
    """On AWS, the profile's clusters as DescribeDBClusters shows them (a read, never a change)."""
    if result.target != "aws" or profile is None:
        return []
    environment = AwsEnvironment(profile=profile, endpoint_url=os.environ.get("GAMEDAY_AWS_ENDPOINT_URL"))
    clusters = []
    for allowed in environment.allowed:
        entry = {"identifier": allowed.identifier, "region": allowed.region}
        try:
            described = environment.rds(allowed.region).describe_db_clusters(
                DBClusterIdentifier=allowed.identifier)["DBClusters"][0]
            entry.update(engine=described.get("Engine", "?"), version=described.get("EngineVersion", "?"))
        except Exception:  # the certificate still names the cluster; the figures are what matter
            entry.update(engine="?", version="(not readable)")
        clusters.append(entry)
    return clusters


def _fact(run_dir: Path, key: str) -> str:
    try:
        return str(json.loads((run_dir / "environment.json").read_text(encoding="utf-8")).get(key, "unknown"))
    except (OSError, ValueError):
        return "unknown"
