"""`gameday verify BUNDLE`: is this the evidence the game day wrote, and do its verdicts follow from it?

Three independent checks, each naming the file at fault:

1. **Digests**: every file against MANIFEST.json (a changed byte, a file missing, a file added);
   the evidence digest against the one the certificate shows.
2. **Signature**: MANIFEST.json's exact bytes against MANIFEST.json.sig, with the public key the
   auditor gives (`--public-key`); without one, with the key the manifest names, said as such
   (that only shows the manifest was not edited after signing, not who signed).
3. **Verdicts**: each verdict recomputed by the same judgement over the same prefix of its
   bundled timeline (`harness.judgements.replay`), and compared field by field with the
   recorded one, so an auditor need not trust the report or the certificate.

A bundle is untrusted input: it is read in memory (never extracted), and replay only runs the
harness's own judgements.
"""

from __future__ import annotations

import base64
import binascii
import json
import zipfile
from collections import defaultdict
from importlib import metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness.certify.bundle import FORMAT, MANIFEST, SIGNATURE, listing_digest, sha256
from harness.certify.keys import KeyProblem, fingerprint, load_public_key, signature_valid
from harness.judgements.replay import CALL_FIELDS, replay
from harness.verdicts import Verdict, overall_status

__all__ = ["Finding", "NotABundle", "Verification", "verify"]

VERDICT_FIELDS = tuple(Verdict.__dataclass_fields__)


class NotABundle(ValueError):
    """The path is not an evidence bundle (no zip, no directory, no MANIFEST.json)."""


@dataclass(frozen=True)
class Finding:
    kind: str  # changed | missing | added | signature | digest | verdict
    path: str
    detail: str

    def line(self) -> str:
        return f"{self.kind.upper():<9} {self.path}: {self.detail}"


@dataclass
class Verification:
    bundle: Path
    run_id: str | None = None
    files: int = 0
    signature: str = ""  # what was established about the signature, in words
    verdicts: int = 0
    agreeing: int = 0
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def text(self) -> str:
        lines = [f"bundle: {self.bundle} (run {self.run_id}, {self.files} files listed in {MANIFEST})",
                 f"signature: {self.signature}",
                 f"verdicts: {self.agreeing} of {self.verdicts} recomputed from their timelines agree with the "
                 f"recorded ones"]
        lines += [f"WARNING   {warning}" for warning in self.warnings]
        lines += [finding.line() for finding in self.findings]
        lines.append("VERIFIED" if self.ok else f"NOT VERIFIED: {len(self.findings)} problem(s)")
        return "\n".join(lines)


def verify(bundle: Path, public_key: Ed25519PublicKey | None = None) -> Verification:
    """Check a bundle (the zip, or the directory it was unpacked into)."""
    result = Verification(Path(bundle))
    members = _members(Path(bundle), result)
    if MANIFEST not in members:
        raise NotABundle(f"{bundle}: no {MANIFEST}: not an aurora-gameday evidence bundle")
    try:
        manifest = json.loads(members[MANIFEST])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NotABundle(f"{bundle}: {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise NotABundle(f"{bundle}: {MANIFEST} is not an {FORMAT!r} manifest")
    result.run_id = manifest.get("run_id")
    made_by = (manifest.get("harness") or {}).get("version")
    if made_by and made_by != _version():
        result.warnings.append(f"the bundle was made by aurora-gameday {made_by}; its verdicts were recomputed with "
                               f"{_version()} (a changed judgement or target catalog shows as a disagreement)")
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    result.files = len(listed)
    _check_digests(members, listed, manifest, result)
    _check_signature(members, manifest, public_key, result)
    _recompute_verdicts(members, result)
    return result


def _members(bundle: Path, result: Verification) -> dict[str, bytes]:
    """Every file of the bundle by its path inside it (the archive's one top directory dropped)."""
    if bundle.is_dir():
        return {p.relative_to(bundle).as_posix(): p.read_bytes() for p in sorted(bundle.rglob("*")) if p.is_file()}
    if not zipfile.is_zipfile(bundle):
        raise NotABundle(f"{bundle}: neither a zip archive nor a directory")
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(bundle) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        tops = {PurePosixPath(info.filename).parts[0] for info in infos}
        strip = len(tops) == 1 and all(len(PurePosixPath(i.filename).parts) > 1 for i in infos)
        for info in infos:
            parts = PurePosixPath(info.filename).parts[1 if strip else 0:]
            name = "/".join(parts)
            if info.filename.startswith("/") or ".." in parts:
                result.findings.append(Finding("added", info.filename, "a path that leaves the bundle"))
                continue
            if name in members:
                result.findings.append(Finding("added", name, "a second file of this name in the archive"))
                continue
            members[name] = archive.read(info)
    return members


def _check_digests(members: Mapping[str, bytes], listed: Mapping[str, Mapping[str, Any]],
                   manifest: Mapping[str, Any], result: Verification) -> None:
    for path, entry in sorted(listed.items()):
        if path not in members:
            result.findings.append(Finding("missing", path, "listed in the manifest, absent from the bundle"))
        elif sha256(members[path]) != entry.get("sha256"):
            size = len(members[path])
            result.findings.append(Finding("changed", path, f"sha256 {sha256(members[path])[:16]}… ({size} bytes) "
                                                            f"is not the manifest's {str(entry.get('sha256'))[:16]}… "
                                                            f"({entry.get('bytes')} bytes)"))
    for path in sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE}):
        result.findings.append(Finding("added", path, "not listed in the manifest"))
    recorded = manifest.get("evidence_digest")
    if listing_digest({path: str(entry.get("sha256")) for path, entry in listed.items()}) != recorded:
        result.findings.append(Finding("digest", MANIFEST, f"its evidence digest {str(recorded)[:16]}… does not "
                                                           "follow from the files it lists"))
    try:
        shown = json.loads(members.get("certificate.json", b"{}")).get("evidence_digest")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        shown = None
    if "certificate.json" in members and shown != recorded:
        result.findings.append(Finding("digest", "certificate.json", f"shows the evidence digest {str(shown)[:16]}…, "
                                                                     f"the manifest {str(recorded)[:16]}…"))


def _check_signature(members: Mapping[str, bytes], manifest: Mapping[str, Any], public_key: Ed25519PublicKey | None,
                     result: Verification) -> None:
    signed = manifest.get("signature")
    if not signed:
        if public_key is not None:
            result.findings.append(Finding("signature", MANIFEST, "the bundle is unsigned, but a public key was given "
                                                                  "to check its signature"))
        result.signature = "none: the bundle is unsigned (the manifest says so); the sums show only that no file "\
                           "changed after the manifest was written"
        return
    if SIGNATURE not in members:
        result.findings.append(Finding("missing", SIGNATURE, "the manifest says the bundle is signed"))
        result.signature = "missing"
        return
    try:
        signature = base64.b64decode(members[SIGNATURE].strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    named = None
    try:
        named = load_public_key(str(signed.get("public_key", "")))
    except KeyProblem:
        pass
    key, whose = (public_key, "the public key given") if public_key is not None else (named, "the key the manifest "
                                                                                             "names")
    if key is None:
        result.findings.append(Finding("signature", MANIFEST, "names no usable public key; give one with --public-key"))
        result.signature = "not checked"
        return
    if not signature_valid(key, signature, members[MANIFEST]):
        detail = f"does not verify with {whose} (key {fingerprint(key)}"
        named_id = signed.get("key_id")
        detail += f"; the manifest names key {named_id})" if named_id != fingerprint(key) else ")"
        result.findings.append(Finding("signature", SIGNATURE, detail))
        result.signature = f"INVALID with {whose} (key {fingerprint(key)})"
        return
    result.signature = f"valid Ed25519 signature of {MANIFEST} by key {fingerprint(key)} ({whose})"
    if public_key is None:
        result.warnings.append("no --public-key given: the signature was checked with the key the bundle names, "
                               "which shows the manifest is unchanged since signing, not who signed it")


def _recompute_verdicts(members: Mapping[str, bytes], result: Verification) -> None:
    for path in sorted(p for p in members if p.startswith("scenarios/") and p.endswith("/verdict.json")):
        timeline_path = f"{path.rsplit('/', 1)[0]}/timeline.jsonl"
        try:
            document = json.loads(members[path])
            recorded = list(document["verdicts"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            result.findings.append(Finding("verdict", path, "is not a verdict file that can be read"))
            continue
        if not recorded:
            continue
        if timeline_path not in members:
            result.findings.append(Finding("verdict", path, f"cannot be recomputed: {timeline_path} is absent"))
            continue
        records = _records(members[timeline_path])
        recomputed_all: list[Verdict] = []
        complete = True
        for call, verdicts in _by_call(recorded).items():
            result.verdicts += len(verdicts)
            first = verdicts[0][1]
            if call is None:
                result.findings.append(Finding("verdict", path, f"verdict {verdicts[0][0] + 1} ({first.get('check')}) "
                                                                "names no judgement call: it cannot be recomputed"))
                complete = False
                continue
            if first.get("unreplayable"):
                result.warnings.append(f"{path}: {first.get('judgement')} was recorded as not recomputable: "
                                       f"{first['unreplayable']}")
                result.verdicts -= len(verdicts)
                complete = False
                continue
            try:
                recomputed = replay({k: first.get(k) for k in CALL_FIELDS}, records)
            except Exception as error:  # a judgement that fails on this timeline disagrees with its record
                result.findings.append(Finding("verdict", path, f"{first.get('judgement')} could not be recomputed "
                                                                f"from {timeline_path.rsplit('/', 1)[1]}: {error}"))
                complete = False
                continue
            recomputed_all += recomputed
            result.agreeing += _compare(path, verdicts, recomputed, result)
        if complete and document.get("status") != overall_status(recomputed_all):
            again = overall_status(recomputed_all)
            result.findings.append(Finding("verdict", path, f"the scenario's status is {document.get('status')}; its "
                                                            f"recomputed verdicts make it {again}"))


def _by_call(recorded: list[Any]) -> dict[int | None, list[tuple[int, dict[str, Any]]]]:
    groups: dict[int | None, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, verdict in enumerate(recorded):
        call = verdict.get("call") if isinstance(verdict, dict) and "judgement" in verdict else None
        if call is None:
            groups[None].append((index, verdict if isinstance(verdict, dict) else {}))
        else:
            groups[call].append((index, verdict))
    return groups


def _compare(path: str, recorded: list[tuple[int, dict[str, Any]]], recomputed: list[Verdict],
             result: Verification) -> int:
    """Findings for each recorded verdict the recomputation does not give; how many agree."""
    agreeing = 0
    for position, (index, verdict) in enumerate(recorded):
        again = recomputed[position].as_dict() if position < len(recomputed) else None
        if again is None:
            result.findings.append(Finding("verdict", path, f"verdict {index + 1} ({verdict.get('check')}) is not "
                                                            "given by its judgement recomputed from the timeline"))
            continue
        differing = [name for name in VERDICT_FIELDS if verdict.get(name) != again[name]]
        if not differing:
            agreeing += 1
            continue
        said = "; ".join(f"{name} recorded {verdict.get(name)!r}, recomputed {again[name]!r}" for name in differing
                         if name != "explanation") or "explanation differs"
        result.findings.append(Finding("verdict", path, f"verdict {index + 1} ({verdict.get('check')}) disagrees with "
                                                        f"its recomputation from timeline.jsonl: {said}"))
    if len(recomputed) > len(recorded):
        judgement = recorded[0][1].get("judgement")
        result.findings.append(Finding("verdict", path, f"{judgement} gives {len(recomputed)} verdicts recomputed, "
                                                        f"{len(recorded)} recorded"))
    return agreeing


def _version() -> str:
    try:
        return metadata.version("aurora-gameday")
    except metadata.PackageNotFoundError:
        return "unknown"


def _records(timeline: bytes) -> list[dict[str, Any]]:
    """As `harness.timeline.read_timeline` reads a file: complete records, a torn line skipped."""
    records = []
    for line in timeline.decode("utf-8", errors="replace").split("\n"):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
