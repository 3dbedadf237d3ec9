"""Kubernetes Events as k8gb's recorder writes them (core/v1, source component `gslb-controller`).

k8gb's reasons: Warning `ReconcileError` and Warning `ExposedIPResolutionError` (k8gb.md §8.3); pygslb
adds Warning `InvalidIngressAnnotation` (the annotation workflow) and `InvalidSpec` (a CR our models
reject). Like client-go's recorder, a repeat of the same event bumps `count` and `lastTimestamp` of the
existing Event instead of creating another. Events are best effort: a failure is logged, never raised.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from app.stores.kube.client import EVENT, KubeApiError, KubeClient, Obj

log = logging.getLogger("pygslb.kube.events")

RECONCILE_ERROR = "ReconcileError"
EXPOSED_IP_RESOLUTION_ERROR = "ExposedIPResolutionError"
INVALID_INGRESS_ANNOTATION = "InvalidIngressAnnotation"
INVALID_SPEC = "InvalidSpec"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The `involvedObject` of an Event."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""
    resource_version: str = ""

    @classmethod
    def of(cls, obj: Obj) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion") or ""),
            kind=str(obj.get("kind") or ""),
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
        )

    def wire(self) -> Obj:
        ref = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "apiVersion": self.api_version,
        }
        if self.uid:
            ref["uid"] = self.uid
        if self.resource_version:
            ref["resourceVersion"] = self.resource_version
        return ref


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeEvents:
    def __init__(self, client: KubeClient, *, component: str = "gslb-controller", instance: str = "") -> None:
        self.client = client
        self.component = component
        self.instance = instance
        self._seen: dict[tuple[str, str, str, str, str], tuple[str, int]] = {}

    async def warning(self, ref: ObjectRef, reason: str, message: str) -> None:
        await self.emit(ref, "Warning", reason, message)

    async def normal(self, ref: ObjectRef, reason: str, message: str) -> None:
        await self.emit(ref, "Normal", reason, message)

    async def emit(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        message = message[:1024]
        key = (ref.namespace, ref.name, ref.uid, reason, message)
        now = _now()
        try:
            if key in self._seen:
                name, count = self._seen[key]
                try:
                    await self.client.patch(
                        EVENT, ref.namespace, name, {"count": count + 1, "lastTimestamp": now}
                    )
                    self._seen[key] = (name, count + 1)
                    return
                except KubeApiError as exc:
                    if exc.status != 404:
                        raise
            name = f"{ref.name}.{time.time_ns():x}"
            body: Obj = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ref.namespace},
                "involvedObject": ref.wire(),
                "reason": reason,
                "message": message,
                "source": {"component": self.component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type_,
                "reportingComponent": self.component,
                "reportingInstance": self.instance,
            }
            await self.client.create(EVENT, ref.namespace, body)
            if len(self._seen) >= 4096:  # a bounded memory of recent events is all aggregation needs
                self._seen.clear()
            self._seen[key] = (name, 1)
        except KubeApiError as exc:
            log.warning("could not record event %s on %s/%s: %s", reason, ref.namespace, ref.name, exc)
