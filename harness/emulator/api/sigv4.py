"""AWS Signature Version 4 verification, so the emulator authenticates callers as AWS does.

Signatures are recomputed from the request exactly as the AWS SDKs compute them;
the credential scope's region is how the emulator learns which region is targeted.
Both the ``Authorization`` header form and the presigned query form
(``X-Amz-Signature=...``, e.g. RDS IAM database auth tokens) are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote

from .faults import fault

__all__ = ["Caller", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRY = 7 * 24 * 3600  # seconds
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_PRESIGNED_PARAMS = (
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Expires",
)


@dataclass(frozen=True)
class Caller:
    """Who signed a request, and for which region and service."""

    access_key: str
    region: str
    service: str


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature."""

    access_key: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    amz_date: str
    signed_headers: str
    signature: str
    expires: int | None  # seconds; presigned requests only


def verify(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
) -> Caller:
    """Authenticate a request, or raise the ``ApiError`` AWS would answer with.

    ``path`` is the raw (still percent-encoded) path without the query string;
    ``secret_for`` maps an access key id to its secret, or None if unknown;
    ``now`` (timezone-aware) defaults to the current time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    query = parse_qsl(query_string, keep_blank_values=True)
    if any(name == "X-Amz-Algorithm" for name, _ in query):
        claim = _claim_from_query(dict(query))
    else:
        claim = _claim_from_header(lowered)
    signed_at = _parse_amz_date(claim.amz_date)
    if claim.date != claim.amz_date[:8]:
        raise fault(
            "SignatureDoesNotMatch",
            f"Date in Credential scope ({claim.date}) does not match X-Amz-Date ({claim.amz_date}).",
        )
    secret = secret_for(claim.access_key)
    if secret is None:
        raise fault("InvalidClientTokenId", "The security token included in the request is invalid.")

    # We hash the body ourselves: a declared X-Amz-Content-Sha256 cannot vouch for a different body.
    unsigned = lowered.get("x-amz-content-sha256") == _UNSIGNED_PAYLOAD
    canonical_request = "\n".join(
        [
            method.upper(),
            _canonical_uri(path),
            _canonical_query([(name, value) for name, value in query if name != "X-Amz-Signature"]),
            _canonical_headers(lowered, claim.signed_headers),
            claim.signed_headers,
            _UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body).hexdigest(),
        ]
    )
    if not hmac.compare_digest(_signature(secret, claim, canonical_request), claim.signature):
        raise fault(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    _check_fresh(signed_at, claim.expires, now or datetime.now(timezone.utc))
    return Caller(access_key=claim.access_key, region=claim.region, service=claim.service)


def _signature(secret: str, claim: _Claim, canonical_request: str) -> str:
    scope = (claim.date, claim.region, claim.service, "aws4_request")
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = "\n".join([ALGORITHM, claim.amz_date, "/".join(scope), digest])
    key = f"AWS4{secret}".encode()
    for part in scope:
        key = _hmac(key, part)
    return _hmac(key, string_to_sign).hex()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _claim_from_header(headers: Mapping[str, str]) -> _Claim:
    authorization = headers.get("authorization")
    if authorization is None:
        raise fault("MissingAuthenticationToken", "Request is missing Authentication Token")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise fault("IncompleteSignature", f"Unsupported Authorization algorithm '{algorithm}'.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise fault("IncompleteSignature", f"Authorization header requires '{name}' parameter.")
    if "x-amz-date" not in headers:
        raise fault("IncompleteSignature", "Authorization header requires an 'X-Amz-Date' header.")
    return _claim(
        fields["Credential"], headers["x-amz-date"], fields["SignedHeaders"], fields["Signature"], None
    )


def _claim_from_query(params: Mapping[str, str]) -> _Claim:
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise fault("IncompleteSignature", f"Unsupported X-Amz-Algorithm '{params['X-Amz-Algorithm']}'.")
    for name in _PRESIGNED_PARAMS:
        if not params.get(name):
            raise fault("IncompleteSignature", f"Presigned request requires the '{name}' query parameter.")
    expires = params["X-Amz-Expires"]
    if not expires.isascii() or not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGNED_EXPIRY:
        message = f"X-Amz-Expires must be 1 to {MAX_PRESIGNED_EXPIRY} seconds, not '{expires}'."
        raise fault("IncompleteSignature", message)
    return _claim(
        params["X-Amz-Credential"],
        params["X-Amz-Date"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        int(expires),
    )


def _claim(
    credential: str, amz_date: str, signed_headers: str, signature: str, expires: int | None
) -> _Claim:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise fault(
            "IncompleteSignature",
            "Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request, "
            f"not '{credential}'.",
        )
    access_key, date, region, service, _ = parts
    return _Claim(access_key, date, region, service, amz_date, signed_headers, signature, expires)


def _parse_amz_date(amz_date: str) -> datetime:
    try:
        return datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        message = f"X-Amz-Date must look like 20261124T100000Z, not '{amz_date}'."
        raise fault("IncompleteSignature", message) from None


def _check_fresh(signed_at: datetime, expires: int | None, now: datetime) -> None:
    """Header-signed requests live 15 minutes either side; presigned ones until they expire."""
    latest = signed_at + (timedelta(seconds=expires) if expires is not None else MAX_CLOCK_SKEW)
    if not signed_at - MAX_CLOCK_SKEW <= now <= latest:
        signed, current = signed_at.strftime(_AMZ_DATE_FORMAT), now.strftime(_AMZ_DATE_FORMAT)
        raise fault("RequestExpired", f"Request signed at {signed} is not valid at {current}.")


def _canonical_uri(path: str) -> str:
    """Dot segments and empty segments removed, then URI-encoded again (SigV4 for non-S3 services)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def _canonical_headers(headers: Mapping[str, str], signed_headers: str) -> str:
    """``name:value`` lines for the signed headers, values trimmed and inner whitespace collapsed."""
    names = signed_headers.split(";")
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names)


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)
