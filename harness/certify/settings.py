"""What the profile says about certification and trends (its `[certification]` and `[trends]` tables).

    [certification]
    tags = "@certification and not @slow"   # the suite: a tag expression (default "@certification")
    features = ["dr-features"]              # where its feature files are, relative to the profile
    name = "Orders platform"                # the certificate's title names the system

    [trends]
    margin = 0.25      # a figure above the median of the earlier runs by more than 25 % ...
    window = 5         # ... of the last 5 runs ...
    min_runs = 2       # ... once there are at least 2 of them, is a regression

The profile is the same TOML file that names the clusters on AWS (`harness.environments`); on the
emulator it may hold only these tables.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.certify.trends import TrendSettings

__all__ = ["CERTIFICATION_TAG", "CertificationSettings", "SettingsError", "certification_settings", "trend_settings"]

CERTIFICATION_TAG = "@certification"


class SettingsError(ValueError):
    """The profile's certification or trends table is malformed: the message names the key."""


@dataclass(frozen=True)
class CertificationSettings:
    tags: str = CERTIFICATION_TAG
    features: list[Path] = field(default_factory=list)  # empty: the command line's, else ./features
    name: str | None = None


def certification_settings(profile: Path | None) -> CertificationSettings:
    table = _table(profile, "certification")
    if not table:
        return CertificationSettings()
    tags = table.get("tags", CERTIFICATION_TAG)
    features = table.get("features", [])
    name = table.get("name")
    if not isinstance(tags, str) or not tags.strip():
        raise SettingsError(f"profile {profile}: [certification] tags must be a tag expression, e.g. "
                            f"\"{CERTIFICATION_TAG}\"")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise SettingsError(f"profile {profile}: [certification] features must be a list of paths")
    if name is not None and not isinstance(name, str):
        raise SettingsError(f"profile {profile}: [certification] name must be text")
    base = Path(profile).parent if profile else Path.cwd()
    return CertificationSettings(tags, [(base / f).resolve() for f in features], name)


def trend_settings(profile: Path | None) -> TrendSettings:
    table = _table(profile, "trends")
    defaults = TrendSettings()
    margin = table.get("margin", defaults.margin)
    window = table.get("window", defaults.window)
    min_runs = table.get("min_runs", defaults.min_runs)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin < 0:
        raise SettingsError(f"profile {profile}: [trends] margin must be a number at least 0 (0.25 is 25 %)")
    for key, value in (("window", window), ("min_runs", min_runs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(f"profile {profile}: [trends] {key} must be a whole number at least 1")
    return TrendSettings(float(margin), window, min_runs)


def _table(profile: Path | None, name: str) -> dict[str, Any]:
    if profile is None:
        return {}
    try:
        data = tomllib.loads(Path(profile).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"cannot read profile {profile}: {error}") from None
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SettingsError(f"profile {profile}: [{name}] must be a table")
    return table
