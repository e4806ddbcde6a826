"""The evidence bundle: one zip an auditor can keep, check and recompute without trusting the report.

Inside `<run id>-evidence/`:

- `scenarios/<feature>/<scenario>/`: everything the scenario left (timeline, `verdict.json` with
  the judgement calls, charts, verdict table, load reports, its own manifest) and its RDS events
  (`rds-events.json`, taken from the timeline);
- `run/`: the run's summary, environment, JUnit XML, quality gate, and its lines of the trends;
- `certificate.html`, `certificate.pdf`, `certificate.json`: the one-page certificate;
- `MANIFEST.json`: the sha256 and size of every other file, the evidence digest (over every file
  but the certificate, which names it) and who signed; `MANIFEST.json.sig`: the Ed25519
  signature of MANIFEST.json's exact bytes, in base64. Without a key the manifest says the
  bundle is unsigned, and there is no signature file.

The zip is reproducible (sorted names, fixed timestamps), and nothing secret goes in: known
passwords are redacted from every file, and the bundle is refused if any file holds the signing key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.certify.keys import Signer, public_key_text
from harness.certify.trends import read_history

__all__ = ["CERTIFICATE_FILES", "FORMAT", "MANIFEST", "SIGNATURE", "Bundle", "BundleError", "collect_evidence",
           "evidence_digest", "listing_digest", "manifest_entries", "sha256", "write_bundle"]

FORMAT = "aurora-gameday evidence bundle/1"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.json.sig"
CERTIFICATE_FILES = ("certificate.html", "certificate.pdf", "certificate.json")
RUN_FILES = ("summary.json", "summary.txt", "environment.json", "junit.xml", "quality-gate.json")
REDACTED = b"***redacted***"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the zip epoch: the same evidence makes the same archive


class BundleError(RuntimeError):
    """The bundle could not be made safely (e.g. a file would carry the signing key)."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str  # of the zip itself
    size: int
    files: int
    evidence_digest: str
    key_id: str | None  # None: unsigned


def collect_evidence(run_dir: Path, *, history: Path | None = None, secrets: Sequence[str] = ()) -> dict[str, bytes]:
    """Every evidence file of a run by its path in the bundle, with `secrets` blanked out."""
    run_dir = Path(run_dir)
    files: dict[str, bytes] = {}
    for name in RUN_FILES:
        if (run_dir / name).is_file():
            files[f"run/{name}"] = (run_dir / name).read_bytes()
    for verdict in sorted(run_dir.glob("scenarios/*/*/verdict.json")):
        directory = verdict.parent
        prefix = directory.relative_to(run_dir).as_posix()
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            files[f"{prefix}/{path.relative_to(directory).as_posix()}"] = path.read_bytes()
        if (directory / "timeline.jsonl").is_file():
            files[f"{prefix}/rds-events.json"] = _events(directory / "timeline.jsonl")
    if history is not None:
        mine = [e for e in read_history(history) if e["run_id"] == run_dir.name]
        if mine:
            files["run/trends.jsonl"] = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in mine).encode()
    return {path: _redacted(data, secrets) for path, data in files.items()}


def evidence_digest(files: Mapping[str, bytes]) -> str:
    """The sha256 of the sorted (path, sha256) list of every file but the certificate's own."""
    return listing_digest({path: sha256(data) for path, data in files.items()})


def listing_digest(sums: Mapping[str, str]) -> str:
    """`evidence_digest` from the files' sums, as a manifest lists them."""
    listed = [[path, digest] for path, digest in sorted(sums.items()) if path not in CERTIFICATE_FILES]
    return sha256(json.dumps(listed, separators=(",", ":")).encode())


def manifest_entries(files: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [{"path": path, "bytes": len(data), "sha256": sha256(data)} for path, data in sorted(files.items())]


def write_bundle(path: Path, run_id: str, files: Mapping[str, bytes], *, signer: Signer | None,
                 harness: Mapping[str, str] = {}, secrets: Sequence[str] = ()) -> Bundle:
    """Write the zip: the files, MANIFEST.json and (with a key) its signature."""
    if signer is not None:
        for name, data in files.items():
            if any(form in data for form in signer.secret_forms()):
                raise BundleError(f"{name} holds the signing key: the bundle was not written")
    leaking = [name for name, data in files.items() if any(len(s) >= 4 and s.encode() in data for s in secrets)]
    if leaking:
        raise BundleError(f"{', '.join(leaking)} hold a password: the bundle was not written")
    digest = evidence_digest(files)
    manifest: dict[str, Any] = {
        "format": FORMAT, "run_id": run_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harness": dict(harness), "algorithm": "sha256", "evidence_digest": digest,
        "files": manifest_entries(files),
        "signature": None if signer is None else {"algorithm": "Ed25519", "key_id": signer.key_id,
                                                  "public_key": public_key_text(signer.public_key),
                                                  "file": SIGNATURE},
    }
    if signer is None:
        manifest["unsigned"] = ("No signing key was given: the sums show whether a file changed since the manifest "
                                "was written, but nothing shows who wrote the manifest.")
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    members = {**files, MANIFEST: manifest_bytes}
    if signer is not None:
        members[SIGNATURE] = base64.b64encode(signer.sign(manifest_bytes)) + b"\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    top = f"{run_id}-evidence"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    data = path.read_bytes()
    return Bundle(path, sha256(data), len(data), len(members), digest, signer.key_id if signer else None)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _events(timeline: Path) -> bytes:
    """The scenario's RDS events, as the topology probe recorded them (DescribeEvents)."""
    events = []
    for line in timeline.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("kind") == "event":
            events.append({k: v for k, v in record.items() if k not in ("kind", "m")})
    return (json.dumps(events, indent=2, ensure_ascii=False) + "\n").encode()


def _redacted(data: bytes, secrets: Sequence[str]) -> bytes:
    for secret in secrets:
        if secret and len(secret) >= 4:
            data = data.replace(secret.encode(), REDACTED)
    return data
