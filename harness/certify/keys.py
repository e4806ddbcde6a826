"""Ed25519 keys: the private key that signs an evidence bundle, the public key that verifies it.

The signing key is the user's, given as a file (`--signing-key FILE`) or in the environment
(`GAMEDAY_SIGNING_KEY`), never on a command line where `ps` would show it. Either holds a PEM
private key (`openssl genpkey -algorithm ed25519`, unencrypted) or the 32-byte seed in base64 or
hex. The key never leaves this module's objects: it is not logged, not written into a bundle,
and `Signer.secret_forms()` lets the bundle prove no file carries it.

A public key is a PEM file (`openssl pkey -in key.pem -pubout`) or the 32 raw bytes in base64,
as a bundle's manifest names the key that signed it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["ENV_KEY", "KeyProblem", "Signer", "fingerprint", "load_public_key", "load_signing_key", "public_key_text",
           "signature_valid"]

ENV_KEY = "GAMEDAY_SIGNING_KEY"
SEED_BYTES = 32


class KeyProblem(ValueError):
    """A key that cannot be used; the message never quotes the key."""


@dataclass(frozen=True, repr=False)
class Signer:
    """Signs with the user's Ed25519 key; its repr names the key's fingerprint, never the key."""

    _key: Ed25519PrivateKey
    _given: bytes  # the text or bytes the key was given as (to prove no file holds it)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        return fingerprint(self.public_key)

    def secret_forms(self) -> list[bytes]:
        """Every way the private key could show up in a file: as given, as its seed in raw, base64
        and hex, and as PEM."""
        seed = self._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        forms = {self._given.strip(), seed, base64.b64encode(seed), seed.hex().encode(), body}
        return [form for form in forms if len(form) >= 16]

    def __repr__(self) -> str:
        return f"Signer(Ed25519 key {self.key_id})"


def load_signing_key(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> Signer | None:
    """The key from `path`, else from $GAMEDAY_SIGNING_KEY, else None (the bundle is unsigned)."""
    if path is not None:
        try:
            given = Path(path).read_bytes()
        except OSError as error:
            raise KeyProblem(f"cannot read the signing key {path}: {error.strerror}") from None
        where = f"the signing key file {path}"
    elif environ.get(ENV_KEY):
        given, where = environ[ENV_KEY].encode(), f"${ENV_KEY}"
    else:
        return None
    return Signer(_private_key(given, where), given)


def _private_key(given: bytes, where: str) -> Ed25519PrivateKey:
    text = given.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text, password=None)
        except TypeError:
            raise KeyProblem(f"{where} is an encrypted PEM key: give an unencrypted one") from None
        except ValueError:
            raise KeyProblem(f"{where} is not a PEM private key that can be read") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyProblem(f"{where} is a {type(key).__name__.removesuffix('PrivateKey')} key, not Ed25519")
        return key
    seed = given if len(given) == SEED_BYTES else _decoded(text)
    if seed is None or len(seed) != SEED_BYTES:
        raise KeyProblem(f"{where} holds neither a PEM Ed25519 private key nor a 32-byte seed (raw, base64 or hex)")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_public_key(given: str | Path) -> Ed25519PublicKey:
    """A public key from a PEM file, or its 32 raw bytes in base64 (as a manifest names it)."""
    path = Path(given)
    try:
        data = path.read_bytes() if path.is_file() else str(given).encode()
    except OSError as error:
        raise KeyProblem(f"cannot read the public key {given}: {error.strerror}") from None
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError:
            raise KeyProblem(f"{given} is not a PEM public key (a private key is never needed to verify)") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyProblem(f"{given} is not an Ed25519 public key")
        return key
    raw = _decoded(text)
    if raw is None or len(raw) != SEED_BYTES:
        raise KeyProblem(f"{given} is neither a PEM Ed25519 public key file nor 32 bytes in base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw public key in base64: how a manifest names the key that signed it."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its sha256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _decoded(text: bytes) -> bytes | None:
    """Hex or base64, whichever the text is; None if neither."""
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
