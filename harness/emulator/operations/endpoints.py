"""Custom cluster endpoints: CreateDBClusterEndpoint, DescribeDBClusterEndpoints, DeleteDBClusterEndpoint.

DescribeDBClusterEndpoints lists the built-in writer and reader endpoints too, as on AWS.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from harness.emulator.addresses import first_free
from harness.emulator.api import fault
from harness.emulator.models import CustomEndpoint
from harness.emulator.operations.common import Filters, apply_filters, check_identifier, paginate, tags_of
from harness.emulator.operations.family import Family
from harness.emulator.operations.state import Region

MAX_CUSTOM_ENDPOINTS = 5

# Endpoint filters match the endpoint's description (built-in endpoints have no resource of their own).
ENDPOINT_FILTERS: Filters = {
    "db-cluster-endpoint-type": lambda e: e["EndpointType"].lower(),
    "db-cluster-endpoint-custom-type": lambda e: str(e.get("CustomEndpointType", "")).lower(),
    "db-cluster-endpoint-id": itemgetter("DBClusterEndpointIdentifier"),
    "db-cluster-endpoint-status": itemgetter("Status"),
}


class Endpoints(Family):
    operations = ("CreateDBClusterEndpoint", "DescribeDBClusterEndpoints", "DeleteDBClusterEndpoint")

    def create_db_cluster_endpoint(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        cluster = region.cluster(p["DBClusterIdentifier"])
        if cluster.status == "deleting":
            raise fault("InvalidDBClusterStateFault", f"DB cluster {cluster.identifier} is being deleted.")
        identifier = check_identifier(p["DBClusterEndpointIdentifier"], "DBClusterEndpointIdentifier")
        if any(identifier in c.custom_endpoints for c in region.clusters.values()):
            raise fault("DBClusterEndpointAlreadyExistsFault", f"DB cluster endpoint {identifier} already exists.")
        custom_type = p["EndpointType"].upper()
        if custom_type not in ("READER", "ANY"):
            raise fault("InvalidParameterValue", f"EndpointType must be READER or ANY (got {p['EndpointType']}).")
        if len(cluster.custom_endpoints) >= MAX_CUSTOM_ENDPOINTS:
            raise fault("DBClusterEndpointQuotaExceededFault", f"A cluster can have at most {MAX_CUSTOM_ENDPOINTS} "
                                                               f"custom endpoints.")
        static, excluded = p.get("StaticMembers") or [], p.get("ExcludedMembers") or []
        if static and excluded:
            raise fault("InvalidParameterCombination", "Specify StaticMembers or ExcludedMembers, not both.")
        for member in static + excluded:
            if member not in cluster.instances:
                raise fault("DBInstanceNotFoundFault", f"DBInstance {member} not found in DB cluster "
                                                       f"{cluster.identifier}.")
        slot = first_free({e.slot for e in cluster.custom_endpoints.values()}, MAX_CUSTOM_ENDPOINTS)
        endpoint = CustomEndpoint(
            identifier=identifier, cluster_id=cluster.identifier, region=region.name, custom_type=custom_type,
            static_members=static, excluded_members=excluded, slot=slot,
            address=self.addresses(cluster).custom_endpoint(slot), tags=tags_of(p))
        cluster.custom_endpoints[identifier] = endpoint
        result = endpoint.describe()
        region.runtimes[cluster.identifier].publish_endpoints()
        return result

    def describe_db_cluster_endpoints(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        clusters = ([region.cluster(p["DBClusterIdentifier"])] if p.get("DBClusterIdentifier")
                    else list(region.clusters.values()))
        endpoints = [e for c in clusters for e in c.endpoint_descriptions()]
        if p.get("DBClusterEndpointIdentifier"):
            endpoints = [e for e in endpoints if e.get("EndpointType") == "CUSTOM"
                         and e["DBClusterEndpointIdentifier"] == p["DBClusterEndpointIdentifier"].lower()]
        page, marker = paginate(apply_filters(endpoints, p.get("Filters"), ENDPOINT_FILTERS), p)
        return {"DBClusterEndpoints": page, "Marker": marker}

    def delete_db_cluster_endpoint(self, region: Region, p: dict[str, Any]) -> dict[str, Any]:
        identifier = p["DBClusterEndpointIdentifier"].lower()
        for cluster in region.clusters.values():
            if identifier in cluster.custom_endpoints and cluster.identifier in region.runtimes:
                endpoint = cluster.custom_endpoints.pop(identifier)
                endpoint.status = "deleting"
                region.runtimes[cluster.identifier].remove_endpoint(identifier)
                return endpoint.describe()
        raise fault("DBClusterEndpointNotFoundFault", f"DB cluster endpoint {identifier} not found.")
