"""Kubernetes mode assembled from settings: one client shared by the store, sources, sink and watches.

`build_kube_store(settings)` is what the composition root calls for GSLB_MODE=kubernetes;
`KubeParts.of(store, settings)` then gives the reconciler's ports and the extra feeds on the same
client: `parts.servers`, `parts.health`, `parts.exposed`, `parts.sink`, `parts.migrator` for the
Reconciler, `parts.triggers(on_key)` for k8gb's secondary watches, `parts.glue` for the edge
delegation's glue addresses and `parts.elector(identity)` for the Lease.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from app.domain.migration import MIGRATOR_COMPONENT
from app.settings import Settings
from app.stores.kube.cached import ObjectCache
from app.stores.kube.client import DNS_ENDPOINT, INGRESS, SERVICE, KubeClient, connect
from app.stores.kube.dnsendpoint import DnsEndpointSink
from app.stores.kube.events import KubeEvents
from app.stores.kube.exposed import KubeExposedIps
from app.stores.kube.glue import KubeGlueSource, service_fields
from app.stores.kube.health import EndpointSliceHealth
from app.stores.kube.ingress_workflow import IngressWorkflow
from app.stores.kube.lease import LeaderElector
from app.stores.kube.migration import KubeLegacyMigrator
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.reconcile_view import ReconcilerView
from app.stores.kube.servers import KubeServerSource
from app.stores.kube.store import KubeGslbStore
from app.stores.kube.triggers import GslbTriggers, OnKey
from app.stores.kube.watch import Informer

LEASE_NAME = "pygslb-controller"


async def build_kube_store(settings: Settings, client: KubeClient | None = None) -> KubeGslbStore:
    """The Gslb store on a client configured as kubectl would be (KUBECONFIG, in-cluster, ~/.kube)."""
    owns = client is None
    client = client or await connect()
    return KubeGslbStore(client, events=KubeEvents(client, instance=default_identity()), owns_client=owns)


def default_identity() -> str:
    """This replica's name in the Lease: the pod name when the chart passes POD_NAME, else host and pid."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class KubeParts:
    store: KubeGslbStore
    settings: Settings
    events: KubeEvents
    own_writes: OwnWrites
    servers: KubeServerSource
    health: EndpointSliceHealth
    exposed: KubeExposedIps
    sink: DnsEndpointSink
    workflow: IngressWorkflow
    glue: KubeGlueSource
    ingresses: Informer
    dnsendpoints: Informer
    migrator: KubeLegacyMigrator

    @classmethod
    def of(cls, store: KubeGslbStore, settings: Settings) -> KubeParts:
        client = store.client
        events = store.events or KubeEvents(client)
        own_writes = OwnWrites()
        # One informer per kind, read by the reconciler (cached reads) and mapped by the triggers.
        ingresses, dnsendpoints = Informer(client, INGRESS), Informer(client, DNS_ENDPOINT)
        # Services: health reads their existence, the glue source the DNS Service's address.
        services = Informer(client, SERVICE, keep=service_fields(settings.pod_namespace))
        ingress_cache, dnsendpoint_cache = ObjectCache(ingresses), ObjectCache(dnsendpoints)
        servers = KubeServerSource(client, events=events, own_writes=own_writes, ingresses=ingress_cache)
        return cls(
            store=store,
            settings=settings,
            events=events,
            own_writes=own_writes,
            servers=servers,
            health=EndpointSliceHealth(client, services=services),
            exposed=KubeExposedIps(
                servers,
                cluster_exposed_ips=settings.cluster_exposed_ips,
                edge_servers=settings.edge_servers,
                events=events,
            ),
            sink=DnsEndpointSink(
                client, own_writes=own_writes, dnsendpoints=dnsendpoint_cache, events=events
            ),
            workflow=IngressWorkflow(client, store=store, events=events),
            glue=KubeGlueSource(
                services=services,
                ingresses=ingresses,
                namespace=settings.pod_namespace,
                fixed=settings.dns_exposed_ips or settings.cluster_exposed_ips,
                service_name=settings.dns_service_name,
                coredns_service_type=settings.coredns_service_type,
                edge_servers=settings.edge_servers,
            ),
            ingresses=ingresses,
            dnsendpoints=dnsendpoints,
            migrator=KubeLegacyMigrator(
                store,
                events=KubeEvents(client, component=MIGRATOR_COMPONENT, instance=events.instance),
                own_writes=own_writes,
                ingresses=ingress_cache,
                dnsendpoints=dnsendpoint_cache,
            ),
        )

    @property
    def reconciler_store(self) -> ReconcilerView:
        """The store for the Reconciler: reads from the informers (the REST API keeps direct reads)."""
        return ReconcilerView(self.store)

    def triggers(self, on_key: OnKey) -> GslbTriggers:
        return GslbTriggers(
            self.store.client,
            store=self.store,
            on_key=on_key,
            health=self.health,
            workflow=self.workflow,
            own_writes=self.own_writes,
            ingresses=self.ingresses,
            dnsendpoints=self.dnsendpoints,
        )

    def elector(self, identity: str | None = None) -> LeaderElector:
        return LeaderElector(
            self.store.client, self.settings.pod_namespace, LEASE_NAME, identity or default_identity()
        )
