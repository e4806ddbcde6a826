"""SigV4 verification of requests signed by botocore itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from harness.emulator.api import ApiError, Caller, serialize_response, verify

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SCOPE = f"{ACCESS_KEY}/20261124/us-east-1/rds"  # credential scope without its terminator
BODY = b"Action=DescribeDBClusters&Version=2014-10-31&DBClusterIdentifier=orders"


def secret_for(access_key: str) -> str | None:
    return {ACCESS_KEY: SECRET}.get(access_key)


@dataclass(frozen=True)
class Wire:
    """A request as the emulator's HTTP server receives it."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, request: Any) -> Wire:
        url = urlsplit(request.url)
        body = request.body or b""
        # The HTTP client adds Host (botocore signs it from the URL); prepared requests hold bytes.
        headers = {"Host": url.netloc}
        for name, value in request.headers.items():
            headers[name] = value.decode() if isinstance(value, bytes) else value
        body = body.encode() if isinstance(body, str) else body
        return cls(request.method, url.path, url.query, headers, body)

    def signed_at(self) -> datetime:
        return datetime.strptime(self.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)

    def verify(self, now: datetime | None = None) -> Caller:
        return verify(self.method, self.path, self.query_string, self.headers, self.body, secret_for, now)

    def error(self, now: datetime | None = None) -> ApiError:
        with pytest.raises(ApiError) as caught:
            self.verify(now)
        return caught.value


def signed(
    url: str = "http://localhost:4566/",
    body: bytes = BODY,
    secret: str = SECRET,
    region: str = "us-east-1",
    access_key: str = ACCESS_KEY,
    headers: dict[str, str] | None = None,
) -> Wire:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", **(headers or {})},
    )
    SigV4Auth(Credentials(access_key, secret), "rds", region).add_auth(request)
    return Wire.of(request)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def test_boto3_client_request_verifies_with_its_region() -> None:
    client = boto3.client(
        "rds",
        endpoint_url="http://localhost:4566",
        region_name="eu-west-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
    )
    sent: list[Wire] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(Wire.of(request))
        return AWSResponse(request.url, 200, {}, _Raw(serialize_response("DescribeDBClusters", {}, "r")))

    client.meta.events.register("before-send.rds.*", capture)
    client.describe_db_clusters(DBClusterIdentifier="orders")
    assert sent[0].verify() == Caller(access_key=ACCESS_KEY, region="eu-west-1", service="rds")
    lowered = replace(sent[0], headers={name.lower(): value for name, value in sent[0].headers.items()})
    assert lowered.verify().region == "eu-west-1"


def test_path_query_and_headers_are_canonicalised() -> None:
    wire = signed(
        url="http://localhost:4566/a/./b/../c%20d/?b=2&a=1&a=0&sp=x%20y&plus=%2B&slash=%2F",
        headers={"X-Trace": "  several   spaces  inside "},
    )
    assert wire.verify() == Caller(ACCESS_KEY, "us-east-1", "rds")


def test_wrong_secret() -> None:
    err = signed(secret="not-the-secret").error()
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)


def test_tampered_body() -> None:
    wire = signed()
    err = replace(wire, body=wire.body.replace(b"orders", b"payments")).error()
    assert err.code == "SignatureDoesNotMatch"


def test_tampered_signed_header() -> None:
    wire = signed()
    err = replace(wire, headers={**wire.headers, "Host": "elsewhere:4566"}).error()
    assert err.code == "SignatureDoesNotMatch"


def test_missing_authorization() -> None:
    wire = signed()
    err = replace(wire, headers={k: v for k, v in wire.headers.items() if k != "Authorization"}).error()
    assert (err.code, err.status, err.message) == (
        "MissingAuthenticationToken",
        403,
        "Request is missing Authentication Token",
    )


def test_unknown_access_key() -> None:
    err = signed(access_key="AKIDUNKNOWN").error()
    assert (err.code, err.status) == ("InvalidClientTokenId", 403)


@pytest.mark.parametrize("skew", [timedelta(minutes=16), timedelta(minutes=-16), timedelta(days=1)])
def test_stale_or_future_date(skew: timedelta) -> None:
    wire = signed()
    err = wire.error(now=wire.signed_at() + skew)
    assert (err.code, err.status) == ("RequestExpired", 400)


def test_date_within_fifteen_minutes() -> None:
    wire = signed()
    assert wire.verify(now=wire.signed_at() + timedelta(minutes=14)).region == "us-east-1"


@pytest.mark.parametrize(
    ("authorization", "words"),
    [
        ("garbage", ["garbage"]),
        ("AWS AKIDEXAMPLE:c2lnbmF0dXJl", ["AWS"]),
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", ["Credential"]),
        (f"AWS4-HMAC-SHA256 Credential={SCOPE}/aws4_request, Signature=abc", ["SignedHeaders"]),
        (f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host, Signature=abc", ["Credential"]),
        (f"AWS4-HMAC-SHA256 Credential={SCOPE}/v5, SignedHeaders=host, Signature=abc", ["aws4_request"]),
    ],
)
def test_garbage_authorization(authorization: str, words: list[str]) -> None:
    wire = signed()
    err = replace(wire, headers={**wire.headers, "Authorization": authorization}).error()
    assert (err.code, err.status) == ("IncompleteSignature", 400)
    for word in words:
        assert word in err.message


def test_missing_or_malformed_date_header() -> None:
    wire = signed()
    undated = {k: v for k, v in wire.headers.items() if k != "X-Amz-Date"}
    assert replace(wire, headers=undated).error().code == "IncompleteSignature"
    assert replace(wire, headers={**undated, "X-Amz-Date": "yesterday"}).error().code == "IncompleteSignature"


def test_unsigned_payload() -> None:
    request = AWSRequest(method="POST", url="https://localhost:4566/", data=BODY)
    request.context["payload_signing_enabled"] = False
    SigV4Auth(Credentials(ACCESS_KEY, SECRET), "rds", "us-east-1").add_auth(request)
    wire = Wire.of(request)
    assert wire.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert replace(wire, body=b"Action=Anything").verify().region == "us-east-1"


def presigned_token(region: str = "us-west-2") -> tuple[str, str]:
    client = boto3.client(
        "rds", region_name=region, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET
    )
    token = client.generate_db_auth_token(
        DBHostname="orders.cluster-abc.us-west-2.rds.amazonaws.com", Port=5432, DBUsername="app"
    )
    host, _, query = token.partition("/?")
    return host, query


def verify_token(host: str, query: str, now: datetime | None = None) -> Caller:
    return verify("GET", "/", query, {"Host": host}, b"", secret_for, now)


def test_presigned_iam_auth_token() -> None:
    host, query = presigned_token()
    assert verify_token(host, query) == Caller(ACCESS_KEY, "us-west-2", "rds-db")


def test_presigned_token_tampered_or_expired() -> None:
    host, query = presigned_token()
    with pytest.raises(ApiError) as caught:
        verify_token(host, query.replace("DBUser=app", "DBUser=admin"))
    assert caught.value.code == "SignatureDoesNotMatch"
    with pytest.raises(ApiError) as caught:
        verify_token(host, query, now=datetime.now(timezone.utc) + timedelta(seconds=901))
    assert caught.value.code == "RequestExpired"
    later = datetime.now(timezone.utc) + timedelta(seconds=800)
    assert verify_token(host, query, now=later).service == "rds-db"
