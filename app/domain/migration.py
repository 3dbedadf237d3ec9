"""k8gb's legacy-group migration (k8gb.md §1.4, §4.8): its labels, finalizer, event reasons and the twin.

A legacy `k8gb.absa.oss` Gslb labelled `k8gb.io/migration-requested: "true"` gets a `k8gb.io` twin of the
same name; once that is done it is labelled `k8gb.io/migrated-to-k8gb-io: "true"`. With either label
"true" the legacy runtime leaves the object alone (k8gb's `hasTrueLabel(...) -> result.Stop()` in
`gslb_legacy_controller.go`): the twin is the one that serves, and two writers of one DNSEndpoint would
fight. The I/O (creating the twin, moving owner references, the finalizer) is the migrators' business:
`app/stores/kube/migration.py` and `app/controller/migration.py`.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.domain.gslb import (
    GROUP,
    LEGACY_GROUP,
    TRACE_ANNOTATIONS,
    VERSION,
    Gslb,
    GslbSpec,
    ObjectMeta,
    ResourceRef,
)

MIGRATION_REQUESTED_LABEL = "k8gb.io/migration-requested"
MIGRATED_LABEL = "k8gb.io/migrated-to-k8gb-io"
MIGRATION_LABELS = (MIGRATION_REQUESTED_LABEL, MIGRATED_LABEL)
MIGRATION_FINALIZER = "k8gb.io/legacy-migration-protection"
MIGRATOR_COMPONENT = "legacy-gslb-migrator"  # k8gb's event recorder name

LEGACY_MIGRATED = "LegacyMigrated"
LEGACY_IGNORED = "LegacyIgnored"
LEGACY_DEPRECATED = "LegacyDeprecated"

# Annotations that describe the legacy object itself, not what it asks for: not copied to the twin.
_NOT_COPIED = frozenset({"kubectl.kubernetes.io/last-applied-configuration", *TRACE_ANNOTATIONS})


def has_true_label(labels: Mapping[str, str] | None, key: str) -> bool:
    return (labels or {}).get(key) == "true"


def migration_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """The migration labels of an object: a change of these needs the migrator (a label is no spec)."""
    return {k: v for k, v in (labels or {}).items() if k in MIGRATION_LABELS}


def is_migration_paused(gslb: Gslb) -> bool:
    """The legacy runtime does not reconcile this Gslb: migration requested or done."""
    labels = gslb.metadata.labels
    return gslb.group == LEGACY_GROUP and any(has_true_label(labels, key) for key in MIGRATION_LABELS)


def has_embedded_ingress(gslb: Gslb) -> bool:
    """k8gb's `hasEmbeddedIngress`: no resourceRef and a non-empty `spec.ingress`."""
    ref, ingress = gslb.spec.resource_ref, gslb.spec.ingress
    return (
        (ref is None or ref == ResourceRef())
        and ingress is not None
        and bool(ingress.model_dump(exclude_none=True))
    )


def twin_of(legacy: Gslb, *, reference_ingress: bool) -> Gslb:
    """The `k8gb.io` Gslb the migration creates: same name, namespace, annotations and spec.

    With `reference_ingress` (kubernetes mode) an embedded ingress becomes a `resourceRef` to the Ingress
    the legacy Gslb created (same name and namespace), as k8gb converts it: the Ingress stays, with
    its load balancer address, and nothing is created twice. Embedded mode has no Ingress object: the
    hosts live in `spec.ingress`, which is kept. Labels are not copied (the migration's own would make
    no sense on the twin), nor annotations that describe the legacy object itself (kubectl's
    last-applied configuration, the trace of its last write).
    """
    annotations = {k: v for k, v in (legacy.metadata.annotations or {}).items() if k not in _NOT_COPIED}
    spec = GslbSpec(
        ingress=legacy.spec.ingress,
        resource_ref=legacy.spec.resource_ref,
        strategy=legacy.spec.strategy.model_copy(deep=True),
    )
    if reference_ingress and has_embedded_ingress(legacy):
        spec.ingress = None
        spec.resource_ref = ResourceRef(
            api_version="networking.k8s.io/v1", kind="Ingress", name=legacy.name, namespace=legacy.namespace
        )
    return Gslb(
        api_version=f"{GROUP}/{VERSION}",
        metadata=ObjectMeta(name=legacy.name, namespace=legacy.namespace, annotations=annotations or None),
        spec=spec.model_copy(deep=True),
    )


def is_twin_spec(existing: Gslb, legacy: Gslb, *, reference_ingress: bool) -> bool:
    """Whether `existing` is the twin this migration would create (one an interrupted attempt created),
    rather than a Gslb somebody wrote: its spec is the conversion's, TTL defaulting aside."""
    wanted = twin_of(legacy, reference_ingress=reference_ingress).spec
    return _comparable(existing.spec) == _comparable(wanted)


def _comparable(spec: GslbSpec) -> GslbSpec:
    strategy = spec.strategy.model_copy(update={"dns_ttl_seconds": spec.strategy.ttl})
    return spec.model_copy(update={"strategy": strategy, "service_health_policy": None})


def legacy_ignored_message(gslb: Gslb, *, twin_existed: bool) -> str:
    if twin_existed:
        return (
            f"Legacy Gslb ignored because k8gb.io Gslb {gslb.namespace}/{gslb.name} already exists. "
            "Edit the k8gb.io object instead."
        )
    return f"Legacy Gslb ignored. Edit k8gb.io Gslb {gslb.namespace}/{gslb.name} instead."


def legacy_migrated_message(gslb: Gslb) -> str:
    return (
        f"Legacy Gslb migrated to k8gb.io Gslb {gslb.namespace}/{gslb.name}. "
        "Edit the k8gb.io object going forward."
    )


def legacy_deprecated_message(gslb: Gslb) -> str:
    return (
        f"Legacy Gslb {gslb.namespace}/{gslb.name} uses deprecated API group {LEGACY_GROUP}. "
        f"Set label {MIGRATION_REQUESTED_LABEL}=true to migrate to {GROUP}."
    )
