"""Ed25519 keys as users hold them: PEM files, seeds in the environment; never quoted back."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.certify.keys import (ENV_KEY, KeyProblem, fingerprint, load_public_key, load_signing_key,
                                  public_key_text, signature_valid)


def pem(key: Ed25519PrivateKey, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def test_the_key_from_a_pem_file_a_raw_file_or_the_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    expected = fingerprint(key.public_key())
    (tmp_path / "key.pem").write_bytes(pem(key))
    (tmp_path / "key.raw").write_bytes(seed(key))
    assert load_signing_key(tmp_path / "key.pem", {}).key_id == expected
    assert load_signing_key(tmp_path / "key.raw", {}).key_id == expected
    for given in (pem(key).decode(), base64.b64encode(seed(key)).decode(), seed(key).hex()):
        assert load_signing_key(None, {ENV_KEY: given}).key_id == expected
    assert load_signing_key(None, {}) is None, "no key: the bundle is unsigned"
    assert load_signing_key(tmp_path / "key.pem", {ENV_KEY: "ignored"}).key_id == expected, "the file wins"


def test_a_signature_verifies_with_the_public_key_in_either_form(tmp_path: Path) -> None:
    signer = load_signing_key(None, {ENV_KEY: pem(Ed25519PrivateKey.generate()).decode()})
    signature = signer.sign(b"manifest")
    public_pem = signer.public_key.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "public.pem").write_bytes(public_pem)
    for given in (tmp_path / "public.pem", public_key_text(signer.public_key)):
        key = load_public_key(given)
        assert signature_valid(key, signature, b"manifest") and not signature_valid(key, signature, b"Manifest")


def test_unusable_keys_are_refused_without_quoting_them(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "locked.pem").write_bytes(pem(key, b"passphrase"))
    ec = generate_private_key(SECP256R1()).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
    (tmp_path / "ec.pem").write_bytes(ec)
    cases = [(tmp_path / "locked.pem", {}, "encrypted PEM key"), (tmp_path / "ec.pem", {}, "not Ed25519"),
             (tmp_path / "missing.pem", {}, "cannot read the signing key"),
             (None, {ENV_KEY: "not-a-key-at-all"}, "neither a PEM Ed25519 private key nor a 32-byte seed")]
    for path, environ, said in cases:
        with pytest.raises(KeyProblem, match=said) as raised:
            load_signing_key(path, environ)
        assert "not-a-key-at-all" not in str(raised.value)
    with pytest.raises(KeyProblem, match="a private key is never needed"):
        load_public_key(tmp_path / "ec.pem")
    with pytest.raises(KeyProblem, match="neither a PEM Ed25519 public key"):
        load_public_key("c2hvcnQ=")


def test_the_signer_never_shows_its_key_and_knows_every_form_of_it() -> None:
    key = Ed25519PrivateKey.generate()
    signer = load_signing_key(None, {ENV_KEY: base64.b64encode(seed(key)).decode()})
    assert repr(signer) == f"Signer(Ed25519 key {signer.key_id})" and str(signer) == repr(signer)
    forms = signer.secret_forms()
    assert seed(key) in forms and base64.b64encode(seed(key)) in forms and seed(key).hex().encode() in forms
    body = b"".join(line for line in pem(key).splitlines() if not line.startswith(b"-----"))
    assert body in forms
