"""RDS events: DescribeEvents, with its source and category filters and working time windows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harness.emulator.api import fault
from harness.emulator.models import now
from harness.emulator.operations.common import paginate
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region

DEFAULT_DURATION_MIN = 60  # what DescribeEvents covers when neither StartTime nor Duration is given


class Events(Family):
    operations = ("DescribeEvents",)

    def describe_events(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("SourceIdentifier") and not p.get("SourceType"):
            raise fault("InvalidParameterCombination", "Cannot specify SourceIdentifier without SourceType.")
        end = p.get("EndTime") or now()
        if p.get("StartTime"):
            start = p["StartTime"]
        else:
            start = end - timedelta(minutes=p.get("Duration", DEFAULT_DURATION_MIN))
        if start > end:
            raise fault("InvalidParameterValue", "StartTime must be before EndTime.")
        categories = set(p.get("EventCategories") or [])
        events = [
            e for e in region.events.snapshot()
            if start <= e.date <= end
            and (not p.get("SourceType") or e.source_type == p["SourceType"])
            and (not p.get("SourceIdentifier") or e.source_id == p["SourceIdentifier"].lower())
            and (not categories or categories & set(e.categories))
        ]
        page, marker = paginate(events, p)
        return {"Events": [e.describe() for e in page], "Marker": marker}
