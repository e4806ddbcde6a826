"""What every API family reads requests with: identifiers, passwords, tiers, tags, filters, pages.

Each raises the `ApiError` AWS answers with, worded once for every family.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from harness.emulator.api import fault
from harness.emulator.operations.engine_specs import ENGINE_ONLY_PARAMETERS

IDENTIFIER = re.compile(r"[a-zA-Z](?:-?[a-zA-Z0-9])*")
FORBIDDEN_PASSWORD_CHARS = set('/"@ ')

Item = TypeVar("Item")
# A resource's Describe filters: filter name -> the value of an item it matches against.
Filters = Mapping[str, Callable[[Any], str]]


def snake_case(operation: str) -> str:
    """`FailoverDBCluster` -> `failover_db_cluster`: the method that answers an operation."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", operation).lower()


def check_identifier(value: str, parameter: str, max_length: int = 63) -> str:
    """RDS identifier rules: letters, digits and single hyphens, starting with a letter."""
    if not (1 <= len(value) <= max_length and IDENTIFIER.fullmatch(value)):
        raise fault("InvalidParameterValue",
                    f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a "
                    f"letter; must contain only ASCII letters, digits, and hyphens; and must not end with "
                    f"a hyphen or contain two consecutive hyphens (got {value!r}).")
    return value.lower()


def check_password(password: str | None) -> None:
    """AWS rules for master passwords; the message never echoes the password."""
    if not password:
        raise fault("InvalidParameterValue", "The parameter MasterUserPassword must be provided and must not be "
                                             "blank.")
    if not 8 <= len(password) <= 128 or FORBIDDEN_PASSWORD_CHARS & set(password) or not password.isprintable():
        raise fault("InvalidParameterValue", "The parameter MasterUserPassword is not a valid password. Only "
                                             "printable ASCII characters besides '/', '@', '\"', ' ' may be used, "
                                             "and it must be 8 to 128 characters long.")


def check_tier(tier: int) -> None:
    if not 0 <= tier <= 15:
        raise fault("InvalidParameterValue", f"PromotionTier must be between 0 and 15 (got {tier}).")


def tags_of(p: dict[str, Any]) -> dict[str, str]:
    tags = {}
    for tag in p.get("Tags") or []:
        if not tag.get("Key"):
            raise fault("InvalidParameterValue", "A tag key must not be empty.")
        tags[tag["Key"]] = tag.get("Value", "")
    return tags


def cluster_options(p: dict[str, Any], engine: str, default_port: int) -> dict[str, Any]:
    """The settings CreateDBCluster and the restores take alike, checked as AWS checks them, as
    DBCluster fields."""
    for parameter, (only_for, message) in ENGINE_ONLY_PARAMETERS.items():
        if p.get(parameter) and engine != only_for:
            raise fault("InvalidParameterValue", message.format(engine=engine))
    if not 0 <= p.get("BacktrackWindow", 0) <= 259200:
        raise fault("InvalidParameterValue", "The BacktrackWindow must be between 0 and 259200 seconds (72 hours).")
    port = p.get("Port") or default_port
    if not 1150 <= port <= 65535:
        raise fault("InvalidParameterValue", f"Port {port} is outside the allowed range 1150-65535.")
    retention = p.get("BackupRetentionPeriod", 1)
    if not 1 <= retention <= 35:
        raise fault("InvalidParameterValue", "BackupRetentionPeriod must be between 1 and 35 days.")
    return {"port": port, "deletion_protection": bool(p.get("DeletionProtection")),
            "backup_retention_period": retention, "backtrack_window": p.get("BacktrackWindow", 0),
            "tags": tags_of(p), "vpc_security_groups": list(p.get("VpcSecurityGroupIds") or [])}


def apply_filters(items: Iterable[Item], filters: list[dict[str, Any]] | None, fields: Filters,
                  key: Callable[[Item], Any] = lambda item: item) -> list[Item]:
    """Keep the items every filter matches (a filter matches any of its values); `key` gives the
    resource a filter looks at when the items carry more than one (an instance and its cluster)."""
    selected = list(items)
    for entry in filters or []:
        name = entry["Name"]
        if name not in fields:
            raise fault("InvalidParameterValue", f"Unrecognized filter name: {name}. Supported: "
                                                 f"{', '.join(sorted(fields))}.")
        values = set(entry.get("Values") or [])
        selected = [item for item in selected if fields[name](key(item)) in values]
    return selected


def paginate(items: list[Item], params: dict[str, Any]) -> tuple[list[Item], str | None]:
    """MaxRecords (20-100, default 100) and an opaque Marker, as the Describe calls take them."""
    limit = params.get("MaxRecords", 100)
    if not 20 <= limit <= 100:
        raise fault("InvalidParameterValue", f"MaxRecords must be between 20 and 100 (got {limit}).")
    start = 0
    if params.get("Marker"):
        try:
            start = int(base64.urlsafe_b64decode(params["Marker"].encode()).decode())
        except ValueError as exc:
            raise fault("InvalidParameterValue", "The Marker is not valid.") from exc
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
