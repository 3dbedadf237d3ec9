"""The Ingress annotation workflow (k8gb.md §2): deprecated by k8gb's ADR-0001, still shipped, so here too.

An Ingress annotated `k8gb.io/strategy` (and not itself owned by a Gslb) gets a k8gb.io Gslb of the
same name and namespace: `resourceRef` to the Ingress, strategy type from `k8gb.io/strategy`,
`primaryGeoTag` from `k8gb.io/primary-geotag` (required for failover), `dnsTtlSeconds` from
`k8gb.io/dns-ttl-seconds` (default 30), `k8gb.io/exposed-ip-addresses` copied to the Gslb, and the
Ingress as controller owner, so deleting the Ingress deletes the Gslb. An existing Gslb is updated
with its `weight` map kept; nothing is written when nothing changed. A broken annotation creates
nothing: the reason goes to the log and to a Warning `InvalidIngressAnnotation` event on the Ingress
(k8gb only logs). The Gslb's own create/update event then drives the normal reconcile.
"""

from __future__ import annotations

import logging
import re

from pydantic import ValidationError

from app.domain.gslb import (
    DEFAULT_DNS_TTL_SECONDS,
    EXPOSED_IPS_ANNOTATION,
    GROUP,
    TRACE_ANNOTATIONS,
    TRACE_GENERATION_ANNOTATION,
    TRACEPARENT_ANNOTATION,
    TRACESTATE_ANNOTATION,
    VERSION,
    Gslb,
    GslbSpec,
    IngressSpec,
    ObjectMeta,
    OwnerReference,
    ResourceRef,
    Strategy,
    StrategyType,
)
from app.stores.base import AlreadyExists, Conflict, NotFound, ObjectKey
from app.stores.kube.client import INGRESS, KubeApiError, KubeClient, Obj
from app.stores.kube.events import INVALID_INGRESS_ANNOTATION, KubeEvents, ObjectRef
from app.stores.kube.store import Invalid, KubeGslbStore

log = logging.getLogger("pygslb.kube.ingress_workflow")

STRATEGY_ANNOTATION = "k8gb.io/strategy"
PRIMARY_GEOTAG_ANNOTATION = "k8gb.io/primary-geotag"
DNS_TTL_ANNOTATION = "k8gb.io/dns-ttl-seconds"
DEPRECATION = (
    "configuring a Gslb through Ingress annotations is deprecated (k8gb ADR-0001): "
    "create a Gslb with spec.resourceRef to the Ingress instead"
)


# What Go's strconv.Atoi takes (k8gb parses the TTL with it): ASCII digits, an optional sign; int()
# would also take "1_0", " 7 " and non-ASCII digits.
_GO_INT = re.compile(r"[+-]?[0-9]+")


class AnnotationError(ValueError):
    """The annotations do not make a valid strategy, or the Gslb belongs to someone else."""


def owned_by_gslb(obj: Obj) -> bool:
    return any(ref.get("kind") == "Gslb" for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def is_annotated(obj: Obj) -> bool:
    """k8gb's filter: carries `k8gb.io/strategy` and is not an Ingress a Gslb created."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return STRATEGY_ANNOTATION in annotations and not owned_by_gslb(obj)


def strategy_from_annotations(annotations: dict[str, str]) -> Strategy:
    kind = annotations.get(STRATEGY_ANNOTATION)
    if kind is None:
        raise AnnotationError(f"annotation {STRATEGY_ANNOTATION} not found")
    ttl = DEFAULT_DNS_TTL_SECONDS
    if DNS_TTL_ANNOTATION in annotations:
        raw = annotations[DNS_TTL_ANNOTATION]
        if not _GO_INT.fullmatch(raw):
            raise AnnotationError(f"can't parse annotation value {raw} to int for key {DNS_TTL_ANNOTATION}")
        ttl = int(raw)
    primary = annotations.get(PRIMARY_GEOTAG_ANNOTATION, "")
    if kind == StrategyType.FAILOVER and not primary:
        raise AnnotationError(
            f"{StrategyType.FAILOVER} strategy requires annotation {PRIMARY_GEOTAG_ANNOTATION}"
        )
    try:
        return Strategy(type=kind, dns_ttl_seconds=ttl, primary_geo_tag=primary or None)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise AnnotationError(f"invalid k8gb annotations: {problems}") from None


def gslb_from_ingress(ingress: Obj, existing: Gslb | None) -> Gslb:
    """The Gslb k8gb's handler would write for this Ingress (pure)."""
    meta = ingress["metadata"]
    annotations: dict[str, str] = meta.get("annotations") or {}
    strategy = strategy_from_annotations(annotations)
    if existing is not None and existing.spec.strategy.weight:
        if strategy.type != StrategyType.ROUND_ROBIN:
            # k8gb would write the pair and fail every reconcile with weightRequiresRoundRobin; the
            # Gslb is left as it is (still serving) and the Ingress says why.
            raise AnnotationError(
                f"Gslb {meta['namespace']}/{meta['name']} has spec.strategy.weight, which only "
                f"{StrategyType.ROUND_ROBIN} takes: remove the weight from the Gslb to use "
                f"{STRATEGY_ANNOTATION}: {strategy.type}"
            )
        strategy = strategy.model_copy(update={"weight": dict(existing.spec.strategy.weight)})
    metadata = (
        existing.metadata.model_copy(deep=True)
        if existing is not None
        else ObjectMeta(name=meta["name"], namespace=meta["namespace"])
    )
    if EXPOSED_IPS_ANNOTATION in annotations:
        metadata.annotations = {
            **(metadata.annotations or {}),
            EXPOSED_IPS_ANNOTATION: annotations[EXPOSED_IPS_ANNOTATION],
        }
    if TRACEPARENT_ANNOTATION in annotations and TRACE_GENERATION_ANNOTATION not in (
        metadata.annotations or {}
    ):
        # Over a copy (unmarked), never over a REST write's context (marked): that names a newer write.
        metadata.annotations = _with_trace(metadata.annotations or {}, annotations)
    owner = OwnerReference(
        api_version=INGRESS.api_version,
        kind=INGRESS.kind,
        name=meta["name"],
        uid=meta.get("uid") or "",
        controller=True,
        block_owner_deletion=True,
    )
    refs = list(metadata.owner_references or [])
    other = next((r for r in refs if r.controller and r.uid != owner.uid), None)
    if other is not None:
        raise AnnotationError(
            f"Gslb {meta['namespace']}/{meta['name']} is already controlled by {other.kind} {other.name}"
        )
    metadata.owner_references = [r for r in refs if r.uid != owner.uid] + [owner]
    # k8gb writes `ingress: {}` (Go's omitempty keeps an empty struct): kept as it is, so a Gslb k8gb
    # wrote is not rewritten only to drop it when pygslb takes over.
    kept = existing.spec.ingress if existing is not None and existing.spec.ingress == IngressSpec() else None
    spec = GslbSpec(
        ingress=kept,
        resource_ref=ResourceRef(api_version=INGRESS.api_version, kind=INGRESS.kind, name=meta["name"]),
        strategy=strategy,
    )
    return Gslb(api_version=f"{GROUP}/{VERSION}", metadata=metadata, spec=spec)


def _with_trace(gslb_annotations: dict[str, str], ingress_annotations: dict[str, str]) -> dict[str, str]:
    """The Ingress's trace context on its Gslb, so the reconcile of the change it caused joins that trace.

    Without a generation marker (the Ingress's generation is not the Gslb's): a changed traceparent is
    the cause of the Gslb write it comes with; an unchanged one belongs to an earlier write.
    """
    copied = {k: v for k, v in gslb_annotations.items() if k not in TRACE_ANNOTATIONS}
    copied.update(
        {
            k: ingress_annotations[k]
            for k in (TRACEPARENT_ANNOTATION, TRACESTATE_ANNOTATION)
            if k in ingress_annotations
        }
    )
    return copied


def _same(a: Gslb, b: Gslb) -> bool:
    return (a.spec, a.metadata.annotations, a.metadata.owner_references) == (
        b.spec,
        b.metadata.annotations,
        b.metadata.owner_references,
    )


class IngressWorkflow:
    def __init__(self, client: KubeClient, *, store: KubeGslbStore, events: KubeEvents | None = None) -> None:
        self.client = client
        self.store = store
        self.events = events

    async def handle(self, ingress: Obj) -> Gslb | None:
        """Create or update the Gslb of an annotated Ingress; None when nothing is to be done or it failed."""
        if not is_annotated(ingress):
            return None
        meta = ingress.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        log.warning("Ingress %s/%s: %s", namespace, name, DEPRECATION)
        try:
            fresh = await self.client.get(INGRESS, namespace, name)
        except KubeApiError as exc:
            if exc.status == 404:
                log.info("Ingress %s/%s does not exist anymore; no Gslb", namespace, name)
                return None
            raise
        if not is_annotated(fresh):
            return None
        key = ObjectKey(GROUP, namespace, name)
        for attempt in range(2):
            try:
                existing: Gslb | None = await self.store.get(key)
            except NotFound:
                existing = None
            except Invalid as exc:  # written by hand, refused by our model: fixing or deleting it helps
                await self._refuse(fresh, f"the Gslb cannot be read: {exc}", exists=True)
                return None
            try:
                wanted = gslb_from_ingress(fresh, existing)
            except AnnotationError as exc:
                await self._refuse(fresh, str(exc), exists=existing is not None)
                return None
            try:
                if existing is None:
                    log.info("creating Gslb %s from the annotations of its Ingress", key)
                    return await self.store.create(wanted)
                if _same(existing, wanted):
                    return existing
                log.info("updating Gslb %s from the annotations of its Ingress", key)
                return await self.store.update(wanted)
            except (AlreadyExists, Conflict):
                if attempt:
                    raise
        return None  # pragma: no cover - the loop returns or raises

    async def _refuse(self, ingress: Obj, why: str, *, exists: bool = False) -> None:
        """No Gslb written: say why in the log and, as k8gb does, in a Warning event on the Ingress."""
        meta = ingress.get("metadata") or {}
        outcome = "its Gslb is left as it is (still serving)" if exists else "no Gslb"
        log.error("Ingress %s/%s: %s: %s", meta.get("namespace"), meta.get("name"), outcome, why)
        if self.events is not None:
            await self.events.warning(ObjectRef.of(ingress), INVALID_INGRESS_ANNOTATION, why)
