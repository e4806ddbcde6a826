"""Tags on clusters, instances, custom endpoints and cluster snapshots: AddTagsToResource,
ListTagsForResource, RemoveTagsFromResource. Resources are named by ARN, and only this region's count."""

from __future__ import annotations

import re
from typing import Any

from harness.emulator.api import fault
from harness.emulator.models import Tagged
from harness.emulator.operations.common import tags_of
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region

TAGGABLE_ARN = re.compile(r"arn:aws:rds:([a-z0-9-]+):(\d{12}):(cluster|db|cluster-endpoint|cluster-snapshot):(.+)")


class Tags(Family):
    operations = ("AddTagsToResource", "ListTagsForResource", "RemoveTagsFromResource")

    def add_tags_to_resource(self, region: Region, p: dict[str, Any]) -> None:
        resource = self._tagged(region, p["ResourceName"])
        resource.tags.update(tags_of(p))
        return None

    def list_tags_for_resource(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        return {"TagList": self._tagged(region, p["ResourceName"]).tag_list()}

    def remove_tags_from_resource(self, region: Region, p: dict[str, Any]) -> None:
        resource = self._tagged(region, p["ResourceName"])
        for key in p["TagKeys"]:
            resource.tags.pop(key, None)
        return None

    @staticmethod
    def _tagged(region: Region, resource_name: str) -> Tagged:
        match = TAGGABLE_ARN.fullmatch(resource_name)
        if not match:
            raise fault("InvalidParameterValue", f"The specified resource name does not match an RDS resource "
                                                 f"in this region: {resource_name}")
        arn_region, _, kind, name = match.groups()
        if arn_region != region.name:
            raise fault("InvalidParameterValue", f"The resource {resource_name} is in region {arn_region}, not "
                                                 f"{region.name}.")
        if kind == "cluster":
            return region.cluster(name)
        if kind == "db":
            return region.instance(name)[1]
        if kind == "cluster-snapshot":
            return region.cluster_snapshot(name)
        for cluster in region.clusters.values():
            if name in cluster.custom_endpoints:
                return cluster.custom_endpoints[name]
        raise fault("DBClusterEndpointNotFoundFault", f"DB cluster endpoint {name} not found.")
