"""The evidence bundle and `gameday verify`: every kind of tampering is named by its file.

Bundles are made from hand-made run directories (`certify_support`): the same files, judgement
calls and manifest a certification writes, without a database or a browser (the PDF here is a
stand-in; the real one is printed by Chromium in tests/e2e/test_certify.py).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.certify.bundle import (CERTIFICATE_FILES, MANIFEST, SIGNATURE, BundleError, collect_evidence,
                                    evidence_digest, manifest_entries, write_bundle)
from harness.certify.certificate import build_certificate, certificate_html, signature_text, write_certificate
from harness.certify.keys import Signer, fingerprint
from harness.certify.trends import HISTORY
from harness.certify.verify import NotABundle, verify
from tests.unit.certify_support import make_run

SCENARIO = "scenarios/certification-drill/failover-of-a-small-cluster-on-aurora-postgresql"


def signer() -> Signer:
    key = Ed25519PrivateKey.generate()
    return Signer(key, b"stand-in for the key as given")


def make_bundle(reports: Path, key: Signer | None, *, run_id: str = "r1", rto: float = 3.0,
                secrets: tuple[str, ...] = ()) -> Path:
    run_dir = make_run(reports, run_id, rto=rto)
    files = collect_evidence(run_dir, history=reports / HISTORY, secrets=secrets)
    certificate = build_certificate(run_dir, evidence_digest=evidence_digest(files),
                                    signature=signature_text(key.key_id if key else None))
    write_certificate(certificate, run_dir)
    (run_dir / "certificate.pdf").write_bytes(b"%PDF-1.4 stand-in\n")
    files.update({name: (run_dir / name).read_bytes() for name in CERTIFICATE_FILES})
    return write_bundle(run_dir / f"{run_id}.evidence.zip", run_id, files, signer=key, secrets=secrets).path


def unpacked(bundle: Path, into: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(into)
    (top,) = into.iterdir()
    return top


def problems(bundle: Path, key: object = None) -> list[tuple[str, str]]:
    result = verify(bundle, key)  # type: ignore[arg-type]
    return [(f.kind, f.path) for f in result.findings]


def test_a_fresh_signed_bundle_verifies_as_a_zip_and_unpacked(tmp_path: Path) -> None:
    key = signer()
    bundle = make_bundle(tmp_path, key)
    names = zipfile.ZipFile(bundle).namelist()
    assert f"r1-evidence/{MANIFEST}" in names and f"r1-evidence/{SIGNATURE}" in names
    assert {f"r1-evidence/{SCENARIO}/{name}" for name in ("timeline.jsonl", "verdict.json", "chart.svg", "trend.svg",
                                                          "verdicts.html", "manifest.json", "rds-events.json")} \
        <= set(names)
    assert {f"r1-evidence/run/{name}" for name in ("summary.json", "environment.json", "trends.jsonl")} <= set(names)
    result = verify(bundle, key.public_key)
    assert result.ok, result.text()
    assert (result.verdicts, result.agreeing) == (3, 3)
    assert f"by key {key.key_id} (the public key given)" in result.signature
    assert result.text().endswith("VERIFIED")
    assert verify(unpacked(bundle, tmp_path / "out"), key.public_key).ok


def test_the_zip_is_reproducible(tmp_path: Path) -> None:
    key = signer()
    bundle = make_bundle(tmp_path, key)
    with zipfile.ZipFile(bundle) as archive:
        files = {n.split("/", 1)[1]: archive.read(n) for n in archive.namelist()
                 if not n.endswith((MANIFEST, SIGNATURE))}
        manifest = json.loads(archive.read(f"r1-evidence/{MANIFEST}"))
    first = write_bundle(tmp_path / "a.zip", "r1", files, signer=key)
    second = write_bundle(tmp_path / "b.zip", "r1", files, signer=key)
    assert first.evidence_digest == manifest["evidence_digest"]
    json_a = json.loads(zipfile.ZipFile(first.path).read(f"r1-evidence/{MANIFEST}"))
    json_b = json.loads(zipfile.ZipFile(second.path).read(f"r1-evidence/{MANIFEST}"))
    assert json_a["files"] == json_b["files"] == manifest["files"]


def test_one_byte_changed_is_named(tmp_path: Path) -> None:
    key = signer()
    root = unpacked(make_bundle(tmp_path, key), tmp_path / "out")
    chart = root / SCENARIO / "chart.svg"
    data = bytearray(chart.read_bytes())
    data[100] ^= 0x01
    chart.write_bytes(bytes(data))
    assert ("changed", f"{SCENARIO}/chart.svg") in problems(root, key.public_key)


def test_a_file_removed_and_a_file_added_are_named(tmp_path: Path) -> None:
    key = signer()
    root = unpacked(make_bundle(tmp_path, key), tmp_path / "out")
    (root / SCENARIO / "rds-events.json").unlink()
    (root / SCENARIO / "notes.txt").write_text("added later\n")
    found = problems(root, key.public_key)
    assert ("missing", f"{SCENARIO}/rds-events.json") in found
    assert ("added", f"{SCENARIO}/notes.txt") in found


def test_a_wrong_key_is_named(tmp_path: Path) -> None:
    key, other = signer(), signer()
    bundle = make_bundle(tmp_path, key)
    result = verify(bundle, other.public_key)
    assert [(f.kind, f.path) for f in result.findings] == [("signature", SIGNATURE)]
    assert f"key {fingerprint(other.public_key)}; the manifest names key {key.key_id}" in result.findings[0].detail
    assert "NOT VERIFIED: 1 problem(s)" in result.text()


def test_a_verdict_edited_by_hand_disagrees_with_its_recomputation(tmp_path: Path) -> None:
    """Even with the manifest rewritten to match (all an unsigned bundle can show), the verdict the
    timeline gives is not the one written."""
    root = unpacked(make_bundle(tmp_path, None, rto=7.5), tmp_path / "out")  # breached: 7.5 s > 5 s
    verdict_file = root / SCENARIO / "verdict.json"
    document = json.loads(verdict_file.read_text())
    document["status"] = "PolicyMet"
    document["verdicts"][0].update(measured=4.2, status="PolicyMet")
    verdict_file.write_text(json.dumps(document, indent=2))
    _rehash(root)
    result = verify(root)
    assert {(f.kind, f.path) for f in result.findings} == {("verdict", f"{SCENARIO}/verdict.json")}
    details = " | ".join(f.detail for f in result.findings)
    assert "verdict 1 (writes back (RTO)) disagrees" in details
    assert "measured recorded 4.2, recomputed 7.5" in details and "status recorded 'PolicyMet', recomputed " \
                                                                  "'PolicyBreached'" in details
    assert "the scenario's status is PolicyMet; its recomputed verdicts make it PolicyBreached" in details


def test_a_verdict_without_its_judgement_call_cannot_pass(tmp_path: Path) -> None:
    root = unpacked(make_bundle(tmp_path, None), tmp_path / "out")
    verdict_file = root / SCENARIO / "verdict.json"
    document = json.loads(verdict_file.read_text())
    for key in ("judgement", "arguments", "timeline_records", "call"):
        document["verdicts"][1].pop(key)
    verdict_file.write_text(json.dumps(document))
    _rehash(root)
    (finding,) = verify(root).findings
    assert finding.path == f"{SCENARIO}/verdict.json" and "names no judgement call" in finding.detail


def test_a_signed_bundle_edited_shows_the_file_and_the_signature_still_holds_for_the_manifest(tmp_path: Path) -> None:
    key = signer()
    root = unpacked(make_bundle(tmp_path, key), tmp_path / "out")
    verdict_file = root / SCENARIO / "verdict.json"
    verdict_file.write_text(verdict_file.read_text().replace('"PolicyMet"', '"PolicyBreached"', 1))
    found = problems(root, key.public_key)
    assert ("changed", f"{SCENARIO}/verdict.json") in found and ("verdict", f"{SCENARIO}/verdict.json") in found
    assert ("signature", SIGNATURE) not in found, "the manifest itself was not touched"


def test_a_rewritten_manifest_breaks_the_signature(tmp_path: Path) -> None:
    key = signer()
    root = unpacked(make_bundle(tmp_path, key), tmp_path / "out")
    (root / SCENARIO / "chart.svg").write_text("<svg/>")
    _rehash(root)
    assert problems(root, key.public_key) == [("signature", SIGNATURE)]


def test_an_unsigned_bundle_says_so_and_cannot_pass_for_signed(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, None)
    result = verify(bundle)
    assert result.ok and "unsigned" in result.signature
    manifest = json.loads(zipfile.ZipFile(bundle).read(f"r1-evidence/{MANIFEST}"))
    assert manifest["signature"] is None and "No signing key was given" in manifest["unsigned"]
    assert "unsigned" in json.loads(zipfile.ZipFile(bundle).read("r1-evidence/certificate.json"))["signature"]
    assert problems(bundle, signer().public_key) == [("signature", MANIFEST)]


def test_without_a_public_key_the_named_key_is_checked_and_said_to_be_the_bundles_own(tmp_path: Path) -> None:
    result = verify(make_bundle(tmp_path, signer()))
    assert result.ok and "the key the manifest names" in result.signature
    assert any("not who signed it" in warning for warning in result.warnings)


def test_the_signing_key_and_known_passwords_never_go_in(tmp_path: Path) -> None:
    key = signer()
    run_dir = make_run(tmp_path, "r1")
    timeline = next(run_dir.glob("scenarios/*/*/timeline.jsonl"))
    with open(timeline, "a") as out:
        out.write(json.dumps({"kind": "note", "t": 0, "m": 0, "text": "dsn postgresql://gameday:Sekr1t-pw@x"}) + "\n")
    files = collect_evidence(run_dir, history=tmp_path / HISTORY, secrets=["Sekr1t-pw"])
    assert not any(b"Sekr1t-pw" in data for data in files.values())
    assert b"***redacted***" in files[f"{SCENARIO}/timeline.jsonl"]
    with pytest.raises(BundleError, match="holds the signing key"):
        write_bundle(tmp_path / "x.zip", "r1", {**files, "run/key.pem": key.secret_forms()[0]}, signer=key)
    with pytest.raises(BundleError, match="hold a password"):
        write_bundle(tmp_path / "y.zip", "r1", {"run/x": b"Sekr1t-pw"}, signer=None, secrets=["Sekr1t-pw"])
    assert not (tmp_path / "x.zip").exists()


def test_an_archive_path_that_leaves_the_bundle_is_named_not_followed(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, None)
    with zipfile.ZipFile(bundle, "a") as archive:
        archive.writestr("r1-evidence/../../etc/evil", b"x")
    found = problems(bundle)
    assert ("added", "r1-evidence/../../etc/evil") in found


def test_something_that_is_no_bundle(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(NotABundle, match="neither a zip"):
        verify(tmp_path / "plain.txt")
    with pytest.raises(NotABundle, match="no MANIFEST.json"):
        verify(tmp_path)


def test_the_certificate_says_what_was_run_and_how_it_went(tmp_path: Path) -> None:
    met = build_certificate(make_run(tmp_path, "ok"), evidence_digest="ab" * 32, signature="Ed25519, key k",
                            name="Orders")
    assert met.certified and met.title == "Disaster-recovery certification: Orders"
    assert [(line.check, line.measured, line.target, line.status) for line in met.lines] == [
        ("writes back (RTO)", "3 s", "≤ 5 s", "PolicyMet"), ("data loss (RPO)", "0 writes", "≤ 0 writes", "PolicyMet"),
        ("promoted reader", "holds", "must hold", "PolicyMet")]
    assert met.lines[1].source.startswith("Amazon Aurora under the hood") and met.lines[1].url
    assert met.lines[0].source == "limit set in the scenario"
    system = dict(met.system)
    assert system["Engines and versions"] == "Aurora PostgreSQL 15.10 (emulated on PostgreSQL 15.20)", \
        "only the engines of the run"
    assert system["Clusters"].endswith(": orders") and system["Regions"] == "us-east-1"
    assert dict(met.harness)["Git revision"] == "0" * 40
    page = certificate_html(met)
    assert "CERTIFIED" in page and "ab" * 32 in page and "<script" not in page
    breached = build_certificate(make_run(tmp_path, "bad", rto=9.0), evidence_digest="cd" * 32, signature="unsigned")
    assert not breached.certified and breached.reason.startswith("1 of 3 checks breached")
    assert "NOT CERTIFIED" in certificate_html(breached)
    gate_failed = make_run(tmp_path, "gate")
    (gate_failed / "quality-gate.json").write_text(json.dumps([{"rule": "certification/maxFailures",
                                                                "success": False, "expected": 0, "actual": 1}]))
    assert not build_certificate(gate_failed, evidence_digest="", signature="").certified


def test_a_scenario_that_never_ran_is_a_line_of_its_own(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "r1")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["outcomes"].append({"name": "test_x[no-engine]", "status": "skipped", "title": None, "feature": None,
                                "message": "@aurora-mysql-only: this run's engines are aurora-postgresql"})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    certificate = build_certificate(run_dir, evidence_digest="", signature="")
    assert certificate.certified, "a skipped scenario does not undo the others"
    assert certificate.lines[0].status == "not run" and "aurora-mysql-only" in certificate.lines[0].measured
    html, document, _ = write_certificate(certificate, tmp_path)
    assert json.loads(document.read_text())["lines"][0]["status"] == "not run"


def _rehash(root: Path) -> None:
    """What a forger with no key can do: make the manifest match the edited files again."""
    manifest = json.loads((root / MANIFEST).read_text())
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
             if p.is_file() and p.name not in (MANIFEST, SIGNATURE)}
    manifest["files"] = manifest_entries(files)
    manifest["evidence_digest"] = evidence_digest(files)
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2))
    certificate = root / "certificate.json"
    document = json.loads(certificate.read_text())
    document["evidence_digest"] = manifest["evidence_digest"]
    certificate.write_text(json.dumps(document))
    manifest["files"] = manifest_entries({p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                                          if p.is_file() and p.name not in (MANIFEST, SIGNATURE)})
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2))


def test_an_evidence_digest_that_does_not_follow_from_the_listing_is_named(tmp_path: Path) -> None:
    root = unpacked(make_bundle(tmp_path, None), tmp_path / "out")
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["evidence_digest"] = "0" * 64
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert set(problems(root)) == {("digest", MANIFEST), ("digest", "certificate.json")}
