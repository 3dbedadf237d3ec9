"""Kubernetes mode: Gslb custom resources, watches, sources and the DNSEndpoint sink.

The only package that imports kubernetes_asyncio (enforced by .importlinter). Everything speaks raw
JSON over `client.KubeClient`, so objects reach the API exactly as written and come back as served.
Modules: `client` (the door), `watch` (list+watch, informers), `store` (GslbStore over CRs), `events`,
`servers`, `health`, `exposed`, `dnsendpoint`, `triggers` (watch mappers), `ingress_workflow`, `lease`.
"""

# The composition root's entry points (the only names this package re-exports).
from app.stores.kube.mode import KubeParts, build_kube_store

__all__ = ["KubeParts", "build_kube_store"]
