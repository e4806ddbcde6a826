"""What a MySQL client endpoint knows of the Aurora instance behind it.

The emulator publishes it with the route, in the target's `rewrite` object next to the
'@@variable' rewrites, so a session can answer for its instance without asking the emulator.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SETTINGS_KEY = "aurora"  # the target's Aurora identity, next to its '@@variable' rewrites
_VARIABLE = re.compile(r"@@[A-Za-z0-9_$]+")  # a system variable's name (the C pump scans queries for it)


@dataclass(frozen=True)
class AuroraSettings:
    """What a client endpoint knows of the instance behind a target (published with the route)."""

    region: str
    cluster: str
    instance: str
    master_user: str
    writer: str  # the cluster's writer
    members: tuple[str, ...]  # every instance of the cluster
    version: str  # e.g. 3.05.2
    storage_links: tuple[str, ...] = ()  # fabric listeners standing for the volume's storage nodes
    quorum: int = 4  # storage nodes that must take a write
    disks: int = 6  # SHOW VOLUME STATUS when the emulator does not answer
    nodes: int = 6

    @property
    def is_writer(self) -> bool:
        return self.instance == self.writer

    @staticmethod
    def from_json(raw: dict[str, Any]) -> AuroraSettings:
        try:
            return AuroraSettings(region=str(raw["region"]), cluster=str(raw["cluster"]),
                                  instance=str(raw["instance"]), master_user=str(raw["master_user"]),
                                  writer=str(raw.get("writer") or ""), members=tuple(map(str, raw.get("members", ()))),
                                  version=str(raw.get("version", "")),
                                  storage_links=tuple(map(str, raw.get("storage_links", ()))),
                                  quorum=int(raw.get("quorum", 4)), disks=int(raw.get("disks", 6)),
                                  nodes=int(raw.get("nodes", 6)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad Aurora settings {raw!r}: {exc}") from None


def parse_rewrite(raw: object, target: str) -> tuple[tuple[str, str], ...]:
    """Validate a target's `rewrite` object: '@@variable' -> SQL literal, plus optionally
    'aurora' -> settings (kept as canonical JSON so the target stays hashable)."""
    if not raw:
        return ()
    if not isinstance(raw, dict):
        raise ValueError(f"target {target!r}: 'rewrite' must be an object")  # noqa: TRY004 - a 400 answer
    out = []
    for key, value in raw.items():
        if key == SETTINGS_KEY:
            if not isinstance(value, dict):
                raise ValueError(f"target {target!r}: 'rewrite.{SETTINGS_KEY}' must be an object")
            AuroraSettings.from_json(value)
            out.append((key, json.dumps(value, sort_keys=True)))
        elif isinstance(key, str) and _VARIABLE.fullmatch(key) and isinstance(value, str):
            out.append((key, value))
        else:
            raise ValueError(f"target {target!r}: 'rewrite' must map '@@variable' names to SQL literals "
                             f"(and '{SETTINGS_KEY}' to the instance's settings)")
    return tuple(sorted(out))
