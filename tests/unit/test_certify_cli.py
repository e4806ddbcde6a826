"""`gameday verify`, `gameday trends`, and what `gameday certify` refuses before it runs anything."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gherkin.parser import Parser

from harness.certify.keys import ENV_KEY, public_key_text
from harness.cli import main
from tests.unit.certify_support import make_run
from tests.unit.test_certify_bundle import make_bundle, signer

PROJECT = Path(__file__).resolve().parents[2]


def test_verify_exit_status_and_what_it_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = signer()
    bundle = make_bundle(tmp_path, key)
    assert main(["verify", str(bundle), "--public-key", public_key_text(key.public_key)]) == 0
    out = capsys.readouterr().out
    assert "verdicts: 3 of 3 recomputed" in out and out.rstrip().endswith("VERIFIED")
    assert main(["verify", str(bundle), "--public-key", public_key_text(signer().public_key)]) == 1
    assert "SIGNATURE MANIFEST.json.sig: does not verify" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nothing.zip")]) == 2
    assert main(["verify", str(bundle), "--public-key", "not a key"]) == 2
    assert "neither a PEM Ed25519 public key" in capsys.readouterr().err


def test_trends_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for run_id, rto in (("r1", 3.0), ("r2", 3.1), ("r3", 8.0)):
        make_run(tmp_path, run_id, rto=rto, limit=60)
    assert main(["trends", "--reports", str(tmp_path), "--runs", "3"]) == 0
    out = capsys.readouterr().out
    assert "r1" in out and "r3" in out and "REGRESSION" in out
    assert main(["trends", "--reports", str(tmp_path / "empty")]) == 0
    assert "no game day has recorded trends yet" in capsys.readouterr().out


@pytest.mark.parametrize(("arguments", "environment", "said"), [
    (["--signing-key", "/nonexistent/key.pem"], {}, "cannot read the signing key"),
    ([], {ENV_KEY: "definitely-not-a-key"}, "neither a PEM Ed25519 private key"),
    (["--notify", "ftp://example.com/hook"], {}, "http:// or https://"),
    (["--profile", "PROFILE"], {}, "margin must be"),
])
def test_certify_refuses_bad_input_before_running_anything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], arguments: list[str],
                                                          environment: dict[str, str], said: str) -> None:
    """Exit 2 at once, with no emulator started and no run directory: nothing is wasted on a long run."""
    profile = tmp_path / "gameday.toml"
    profile.write_text("[trends]\nmargin = -1\n")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    arguments = [str(profile) if a == "PROFILE" else a for a in arguments]
    status = main(["certify", str(PROJECT / "features" / "writer_reboot.feature"), "--reports", str(tmp_path / "r"),
                   *arguments])
    assert status == 2
    err = capsys.readouterr().err
    assert said in err and "definitely-not-a-key" not in err
    assert not (tmp_path / "r").exists()


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("0  every verdict met", "1  breached", "2  usage error or bad input", "3  could not run"):
        assert line in out
    assert main(["certify", "--help"]) == 0
    assert "--signing-key FILE" in capsys.readouterr().out


def test_a_key_in_the_environment_is_read_not_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    raw = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                     serialization.NoEncryption())
    monkeypatch.setenv(ENV_KEY, base64.b64encode(raw).decode())
    status = main(["certify", str(tmp_path / "missing.feature"), "--reports", str(tmp_path)])
    assert status == 2  # the key was fine; the feature file is not
    err = capsys.readouterr().err
    assert "missing.feature" in err and base64.b64encode(raw).decode() not in err


def certification_scenarios() -> dict[str, set[str]]:
    """Each @certification scenario by name, with its own and its feature's tags."""
    found = {}
    for path in sorted((PROJECT / "features").glob("*.feature")):
        feature = Parser().parse(path.read_text())["feature"]
        feature_tags = {t["name"] for t in feature["tags"]}
        for child in feature["children"]:
            scenario = child.get("scenario")
            tags = feature_tags | {t["name"] for t in (scenario or {}).get("tags", [])}
            if scenario and "@certification" in tags:
                found[scenario["name"]] = tags
    return found


def test_the_certification_suite_covers_what_an_auditor_expects_on_both_engines() -> None:
    suite = certification_scenarios()
    assert {"Managed failover promotes the reader Aurora chooses", "An instance crash restarts the writer in place",
            "Rebooting the writer restarts it without a failover", "Restore to just before a bad change",
            "Backtrack to just before a bad change", "Switchover to the green environment"} <= set(suite)
    assert not any("@negative-control" in tags for tags in suite.values()), "a certification never expects a breach"
    both = [name for name, tags in suite.items() if not any(tag.endswith("-only") for tag in tags)]
    assert len(both) >= 4, "most of the suite runs on both engines and on AWS"
