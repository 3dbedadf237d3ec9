"""Small builders of Gslb objects for store and API tests."""

from __future__ import annotations

from typing import Any

from app.domain.gslb import GROUP, VERSION, Gslb


def gslb_body(
    name: str,
    *,
    group: str = GROUP,
    namespace: str | None = "test-gslb",
    strategy: str = "roundRobin",
    host: str = "roundrobin.cloud.example.com",
    service: str = "frontend-podinfo",
    **strategy_fields: Any,
) -> dict[str, Any]:
    """A k8gb-style Gslb with an embedded ingress, as a client would send it."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": f"{group}/{VERSION}",
        "kind": "Gslb",
        "metadata": metadata,
        "spec": {
            "ingress": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": service, "port": {"name": "http"}}},
                                }
                            ]
                        },
                    }
                ],
            },
            "strategy": {"type": strategy, **strategy_fields},
        },
    }


def make_gslb(name: str, **kwargs: Any) -> Gslb:
    return Gslb.model_validate(gslb_body(name, **kwargs))
