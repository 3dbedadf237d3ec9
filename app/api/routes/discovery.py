"""API discovery in the shape Kubernetes clients know (APIGroupList, APIResourceList)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.routes.gslbs import operation_stem
from app.domain.gslb import GROUPS, KIND, PLURAL, VERSION

router = APIRouter(tags=["discovery"])


def _group(group: str) -> dict[str, Any]:
    version = {"groupVersion": f"{group}/{VERSION}", "version": VERSION}
    return {"name": group, "versions": [version], "preferredVersion": version}


@router.get("/apis", name="getAPIVersions", summary="List API groups")
async def api_groups() -> dict[str, Any]:
    """The API groups served here: k8gb.io and the legacy k8gb.absa.oss."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in GROUPS]}


def _resources(group: str) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{VERSION}",
        "resources": [
            {"name": PLURAL, "singularName": "gslb", "namespaced": True, "kind": KIND, "verbs": verbs},
            {
                "name": f"{PLURAL}/status",
                "singularName": "",
                "namespaced": True,
                "kind": KIND,
                "verbs": ["get", "update"],
            },
        ],
    }


def _add_resource_list(group: str) -> None:
    ids = operation_stem(group)

    async def resources() -> dict[str, Any]:
        return _resources(group)

    resources.__doc__ = f"The resources of {group}/{VERSION}."
    router.add_api_route(
        f"/apis/{group}/{VERSION}",
        resources,
        methods=["GET"],
        name=f"get{ids}APIResources",
        summary=f"List the resources of {group}/{VERSION}",
    )


for _g in GROUPS:
    _add_resource_list(_g)
