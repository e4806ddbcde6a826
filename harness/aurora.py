"""Aurora's documented rules that both the harness and the emulator apply.

Promotion order (Aurora User Guide, "High availability for Amazon Aurora"): tiers 0 (first)
to 15; on a tie, "Amazon RDS promotes the replica that is largest in size"; on equal size, an
arbitrary replica.
"""

from __future__ import annotations

import re

INSTANCE_CLASS_SIZES = {"micro": 1, "small": 2, "medium": 3, "large": 4, "xlarge": 5}


def instance_size(instance_class: str) -> int:
    """Relative size of an instance class (db.r6g.2xlarge > db.r6g.xlarge > db.r6g.large); 0 if unknown."""
    size = instance_class.rsplit(".", 1)[-1]
    if size in INSTANCE_CLASS_SIZES:
        return INSTANCE_CLASS_SIZES[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 5 + int(match.group(1)) if match else 0


def promotion_rank(promotion_tier: int, instance_class: str) -> tuple[int, int]:
    """Sort key: the reader with the smallest rank is promoted first."""
    return promotion_tier, -instance_size(instance_class)
