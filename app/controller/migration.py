"""The legacy migration in embedded mode: through the Gslb store, as kubernetes mode does it through the
API server (app/stores/kube/migration.py), with what embedded mode has of it.

Why migrate here at all: the legacy runtime leaves a Gslb labelled `k8gb.io/migration-requested` alone
(k8gb's rule, kept in both modes), so without a migrator such a Gslb would just stop being served, and
with a restart (the zone is rebuilt by reconciling) its hosts would go from DNS. So the migration
requested is done: the `k8gb.io` twin is created unless one exists (never overwritten), and the legacy
Gslb is labelled `k8gb.io/migrated-to-k8gb-io: "true"`. What embedded mode does not have is left out:
there is no Ingress object (the twin keeps `spec.ingress`, where its hosts are), no owner references
to move and so no finalizer to hold for that, and no Kubernetes events: k8gb's reasons go to the log.
"""

from __future__ import annotations

import logging

from app.domain.gslb import GROUP, Gslb
from app.domain.migration import (
    LEGACY_IGNORED,
    LEGACY_MIGRATED,
    MIGRATED_LABEL,
    MIGRATION_REQUESTED_LABEL,
    has_true_label,
    is_twin_spec,
    legacy_ignored_message,
    legacy_migrated_message,
    twin_of,
)
from app.stores.base import AlreadyExists, GslbStore, NotFound, ObjectKey

log = logging.getLogger("pygslb.migration")


class StoreLegacyMigrator:
    """`LegacyMigrator` over any `GslbStore` (embedded mode's SQLite store)."""

    def __init__(self, store: GslbStore) -> None:
        self.store = store

    async def migrate(self, legacy: Gslb) -> None:
        labels = legacy.metadata.labels
        if has_true_label(labels, MIGRATED_LABEL) or not has_true_label(labels, MIGRATION_REQUESTED_LABEL):
            return
        key = ObjectKey(GROUP, legacy.namespace, legacy.name)
        try:
            twin = await self.store.get(key)
            ours = is_twin_spec(twin, legacy, reference_ingress=False)
        except NotFound:
            try:
                await self.store.create(twin_of(legacy, reference_ingress=False))
                ours = True
            except AlreadyExists:
                ours = is_twin_spec(await self.store.get(key), legacy, reference_ingress=False)
        # The legacy Gslb as stored now: the copy the reconcile read may be older (a conflict retries).
        current = await self.store.get(ObjectKey.of(legacy))
        if not has_true_label(current.metadata.labels, MIGRATED_LABEL):
            labelled = {**(current.metadata.labels or {}), MIGRATED_LABEL: "true"}
            metadata = current.metadata.model_copy(update={"labels": labelled})
            await self.store.update(current.model_copy(update={"metadata": metadata}))
        if ours:
            log.info("%s: %s", LEGACY_MIGRATED, legacy_migrated_message(legacy))
        else:
            log.warning("%s: %s", LEGACY_IGNORED, legacy_ignored_message(legacy, twin_existed=True))

    async def release(self, legacy: Gslb) -> None:
        """Nothing is held on a legacy Gslb here (no finalizer, no owner references)."""
