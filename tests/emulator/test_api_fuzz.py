"""The RDS API fuzzed from botocore's own model: every operation, with malformed and missing
parameters, signed as a client would sign them; and raw garbage. The emulator must answer each
with an error of its own (4xx, never a 5xx) and stay up.

Random but reproducible (fixed seeds); a failure names the operation and the parameters sent.
"""

from __future__ import annotations

import random
import string
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

MODEL = botocore.session.get_session().get_service_model("rds")
NASTY_STRINGS = ["", " ", "x" * 300, "bad--name", "-lead", "ünïcode-✓", "a" * 64, "arn:aws:rds:us-east-1:1:cluster:",
                 "%00", "'; DROP TABLE x; --", "aurora-postgresql-but-not", "<xml/>", "1e309"]
NASTY_NUMBERS = ["-1", "0", "99999999999999999999", "abc", "1.5", ""]
NASTY_BOOLEANS = ["maybe", "TRUE", "1", ""]
NASTY_TIMES = ["yesterday", "2026-13-45T99:99:99Z", "-5", "1e400", ""]


def value_for(shape: Shape, rng: random.Random, depth: int = 0) -> list[tuple[str, str]]:
    """Form pairs (relative keys) for one value of `shape`, mostly malformed."""
    if isinstance(shape, StructureShape):
        pairs = []
        for name, member in shape.members.items():
            if rng.random() < (0.3 if name in shape.required_members else 0.6) or depth > 2:
                continue  # leave it out: missing required members must be refused too
            pairs += [(f"{name}{'.' + key if key else ''}", v) for key, v in value_for(member, rng, depth + 1)]
        return pairs
    if isinstance(shape, ListShape):
        member = shape.member.serialization.get("name", "member")
        return [(f"{member}.{i}{'.' + key if key else ''}", v) for i in range(1, rng.randint(0, 3) + 1)
                for key, v in value_for(shape.member, rng, depth + 1)]
    if isinstance(shape, MapShape):
        return [("entry.1.key", rng.choice(NASTY_STRINGS)), ("entry.1.value", rng.choice(NASTY_STRINGS))]
    choices = {"integer": NASTY_NUMBERS, "long": NASTY_NUMBERS, "double": NASTY_NUMBERS, "float": NASTY_NUMBERS,
               "boolean": NASTY_BOOLEANS, "timestamp": NASTY_TIMES}.get(shape.type_name, NASTY_STRINGS)
    enum = getattr(shape, "enum", None)
    if enum and rng.random() < 0.5:
        choices = list(enum)
    return [("", rng.choice(choices) + (rng.choice(string.printable) if rng.random() < 0.2 else ""))]


def send(emulator: Any, body: bytes, sign: bool = True) -> tuple[int, bytes]:
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=emulator.endpoint_url + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if sign:
        credentials = botocore.credentials.Credentials(emulator.access_key, emulator.secret_for(emulator.access_key))
        botocore.auth.SigV4Auth(credentials, "rds", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_every_operation_with_malformed_parameters_gets_a_client_error(emulator: Any, rds: Any) -> None:
    rng = random.Random(20261206)
    answered: dict[int, int] = {}
    for operation in sorted(MODEL.operation_names):
        shape = MODEL.operation_model(operation).input_shape
        for _ in range(4):
            pairs = [("Action", operation), ("Version", MODEL.api_version)]
            if shape is not None:
                pairs += value_for(shape, rng)
            body = urllib.parse.urlencode(pairs).encode()
            status, answer = send(emulator, body)
            assert status < 500, f"{operation} {pairs}: {status} {answer[:300]!r}"
            answered[status] = answered.get(status, 0) + 1
    assert answered.get(400, 0) > len(MODEL.operation_names), answered  # most are refused as bad requests
    assert rds.describe_db_clusters()["DBClusters"] is not None, "still answering"


def test_garbage_bodies_get_a_client_error(emulator: Any, rds: Any) -> None:
    rng = random.Random(7)
    garbage = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 2000))) for _ in range(60)]
    garbage += [b"Action=" + b"A" * 5000, b"%ff%fe%00", b"x" * (1024 * 1024 + 1)]
    odd = [b"Action=DescribeDBClusters&" + b"&".join([b"x=1"] * 3000),
           b"Action=DescribeDBClusters&Filters.Filter.1.Name=engine&Filters.Filter.999999999.Values.x=1"]
    for body in garbage + odd:
        for sign in (True, False):
            status, answer = send(emulator, body, sign)
            low = 400 if body in garbage or not sign else 200
            assert low <= status < 500, f"{body[:80]!r} signed={sign}: {status} {answer[:300]!r}"
    assert rds.describe_db_clusters()["DBClusters"] is not None, "still answering"
