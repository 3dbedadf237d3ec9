"""Infoblox over WAPI (httpx): the delegation lives in one `zone_delegated` object per load-balanced zone.

Mapping onto the provider shape: `records(parent)` reads the delegated zones under `parent` (k8gb's
ZoneRead, by FQDN and view) and reports each as the NS record set of the zone plus one glue A per
`delegate_to` name. `apply(parent, changes)` checks the change set against those records, works
out each object's new `delegate_to` list (sorted by address text, as k8gb writes it) and then:
creates the object when it had no NS yet (ZoneCreate), rewrites it only when the list or TTL
differs (ZoneUpdate, so other clusters' entries are kept as they are), deletes it when the last
NS name goes (ZoneDelete). The comments stay k8gb's ("created by k8gb" / "updated by k8gb") so a
grid shared with k8gb clusters, and scripts that look for them, see one kind of owner.
WAPI has no compare-and-swap: the read-check-write is as safe as k8gb's, no safer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
from opentelemetry import propagate, trace
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from app.domain.endpoint import Changes, Endpoint
from app.providers.base import ChangeConflictError, ProviderError, TransientProviderError
from app.providers.changeset import Key, applied, check_against, check_shape, in_zone, norm_name

RETURN_FIELDS = "fqdn,delegate_to,view,ttl,use_ttl,comment"
CREATED_COMMENT = "created by k8gb"
UPDATED_COMMENT = "updated by k8gb"
BUCKETS = tuple(0.2 * 4**n for n in range(5))

_histograms: dict[int, tuple[CollectorRegistry, Histogram]] = {}


def request_duration(registry: CollectorRegistry = REGISTRY) -> Histogram:
    """k8gb's `k8gb_infoblox_request_duration{request, success}`, one per registry."""
    found = _histograms.get(id(registry))
    if found is None or found[0] is not registry:
        histogram = Histogram(
            "k8gb_infoblox_request_duration",
            "Duration of Infoblox WAPI requests",
            ["request", "success"],
            buckets=BUCKETS,
            registry=registry,
        )
        found = _histograms[id(registry)] = (registry, histogram)
    return found[1]


def _record_request(operation: str, response: httpx.Response) -> None:
    """One event per WAPI request on the provider span (whose id the request's `traceparent` names): a
    provider call may make several (read, then create), and a reader sees each one's method, path and
    status, not only the error text of a failed one."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(
            "wapi.request",
            {
                "pygslb.wapi.operation": operation,
                "http.request.method": response.request.method,
                "url.path": response.request.url.path,
                "http.response.status_code": response.status_code,
            },
        )


class InfobloxProvider:
    name = "infoblox"

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        wapi_version: str = "v2",
        view: str = "default",
        ttl: int = 30,
        timeout: float = 20.0,
        verify_tls: bool = True,
        client: httpx.AsyncClient | None = None,
        *,
        zones: Sequence[str] = (),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.view = view
        self.ttl = ttl
        self.timeout = timeout
        self.zones = [norm_name(z) for z in zones]
        version = wapi_version if wapi_version.startswith("v") else f"v{wapi_version}"
        self._prefix = f"{self.base_url}/wapi/{version}"
        self._auth = httpx.BasicAuth(username, password)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=verify_tls)
        self._duration = request_duration(registry)
        url = httpx.URL(self.base_url)
        self._server = (url.host, url.port or (443 if url.scheme == "https" else 80))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def span_attributes(self, zone: str) -> dict[str, str | int]:
        return {"server.address": self._server[0], "server.port": self._server[1], "dns.question.name": zone}

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """A delegated zone has one TTL: report and plan every record with the provider's."""
        return [Endpoint(e.dns_name, e.targets, e.record_type, self.ttl, e.labels) for e in endpoints]

    async def records(self, zone: str) -> list[Endpoint]:
        objects = await self._read_all(self._managed(zone, []))
        return sorted(self._held(objects).values(), key=lambda e: e.key)

    async def apply(self, zone: str, changes: Changes) -> None:
        check_shape(zone, changes, ("NS", "A"))
        if not changes.has_changes:
            return
        every = (*changes.create, *changes.update_new, *changes.delete)
        objects = await self._read_all(
            self._managed(zone, [e.dns_name for e in every if e.record_type == "NS"])
        )
        held = self._held(objects)
        check_against(held, changes)
        after = applied(held, changes)
        named = {t for e in after.values() if e.record_type == "NS" for t in e.targets}
        for endpoint in (*changes.create, *changes.update_new):
            if endpoint.record_type == "A" and endpoint.key[0] not in named:
                raise ProviderError(
                    f"glue {endpoint.dns_name}: no delegated zone under {zone} names it; Infoblox keeps glue "
                    "only as delegate_to entries of a zone_delegated"
                )
        writes = [w for fqdn, obj in objects.items() if (w := self._write_for(fqdn, obj, after)) is not None]
        for operation, method, path, body in writes:
            await self._call(operation, method, path, json=body)

    # --- translation ---------------------------------------------------------------------------
    def _managed(self, parent: str, extra: list[str]) -> list[str]:
        names = [z for z in self.zones if in_zone(z, parent) and z != norm_name(parent)]
        return list(dict.fromkeys([*names, *(norm_name(n) for n in extra)]))

    def _held(self, objects: dict[str, dict[str, Any] | None]) -> dict[Key, Endpoint]:
        ns: dict[Key, Endpoint] = {}
        glue: dict[str, set[str]] = {}
        glue_ttl: dict[str, int] = {}
        for fqdn, obj in objects.items():
            if obj is None:
                continue
            ttl = int(obj["ttl"]) if obj.get("use_ttl") and obj.get("ttl") is not None else self.ttl
            entries = obj.get("delegate_to") or []
            names = sorted({norm_name(e["name"]) for e in entries})
            ns[(fqdn, "NS")] = Endpoint(fqdn, tuple(names), "NS", ttl)
            for entry in entries:
                glue.setdefault(norm_name(entry["name"]), set()).add(str(entry["address"]))
                glue_ttl[norm_name(entry["name"])] = ttl
        for name, addresses in glue.items():
            ns[(name, "A")] = Endpoint(name, tuple(sorted(addresses)), "A", glue_ttl[name])
        return ns

    def _write_for(
        self, fqdn: str, obj: dict[str, Any] | None, after: dict[Key, Endpoint]
    ) -> tuple[str, str, str, dict[str, Any] | None] | None:
        ns = after.get((fqdn, "NS"))
        if ns is None:
            return ("ZoneDelete", "DELETE", obj["_ref"], None) if obj is not None else None
        entries: list[dict[str, str]] = []
        for name in ns.targets:
            glue = after.get((name, "A"))
            if glue is None:
                raise ProviderError(
                    f"NS {fqdn} names {name}, which has no glue A: Infoblox delegate_to needs an address"
                )
            entries.extend({"name": name, "address": address} for address in glue.targets)
        entries.sort(key=_by_address)
        if obj is None:
            body = {
                "fqdn": fqdn,
                "view": self.view,
                "delegate_to": entries,
                "comment": CREATED_COMMENT,
                "ttl": ns.ttl,
                "use_ttl": True,
                "zone_format": "FORWARD",
            }
            return ("ZoneCreate", "POST", "zone_delegated", body)
        current = sorted(
            (
                {"name": norm_name(e["name"]), "address": str(e["address"])}
                for e in obj.get("delegate_to") or []
            ),
            key=_by_address,
        )
        if current == entries and obj.get("use_ttl") and obj.get("ttl") == ns.ttl:
            return None
        body = {"delegate_to": entries, "comment": UPDATED_COMMENT, "ttl": ns.ttl, "use_ttl": True}
        return ("ZoneUpdate", "PUT", obj["_ref"], body)

    # --- WAPI ------------------------------------------------------------------------------------
    async def _read_all(self, fqdns: list[str]) -> dict[str, dict[str, Any] | None]:
        found: dict[str, dict[str, Any] | None] = {}
        for fqdn in fqdns:
            params = {"fqdn": fqdn, "view": self.view, "_return_fields": RETURN_FIELDS}
            result = await self._call("ZoneRead", "GET", "zone_delegated", params=params)
            if not isinstance(result, list):
                raise ProviderError(
                    f"ZoneRead {fqdn}: WAPI answered {type(result).__name__}, expected a list"
                )
            found[fqdn] = _checked(fqdn, result[0]) if result else None
        return found

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        started = time.perf_counter()
        ok = False
        try:
            response = await self._client.request(
                method, f"{self._prefix}/{path}", params=params, json=json, headers=headers, auth=self._auth
            )
            _record_request(operation, response)
            result = self._result(operation, response)
            ok = True
            return result
        except httpx.TimeoutException as exc:
            raise TransientProviderError(
                f"{operation}: Infoblox {self.base_url} did not answer within {self.timeout}s"
            ) from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(
                f"{operation}: cannot reach Infoblox {self.base_url}: {exc}"
            ) from exc
        except httpx.HTTPError as exc:  # an answer httpx cannot read (DecodingError: bad Content-Encoding)
            raise ProviderError(
                f"{operation}: Infoblox {self.base_url} sent an answer that cannot be read: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._duration.labels(operation, "true" if ok else "false").observe(time.perf_counter() - started)

    def _result(self, operation: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise ProviderError(
                    f"{operation}: WAPI answered {status} with a body that is not JSON"
                ) from exc
        text, code = _wapi_error(response)
        message = f"{operation}: WAPI answered {status}: {text}"
        if status >= 500:
            raise TransientProviderError(message)
        if status in (401, 403):
            raise ProviderError(
                f"{operation}: WAPI refused the credentials of user {self.username!r} ({status})"
            )
        if status == 404 or code == "Client.Ibap.Data.Conflict":
            raise ChangeConflictError(f"{message} (changed by someone else meanwhile)")
        raise ProviderError(message)


def _checked(fqdn: str, obj: object) -> dict[str, Any]:
    """A zone_delegated as the translation reads it, or a ProviderError naming what WAPI got wrong:
    a grid (or a proxy in front of it) answering another shape is a misconfiguration, not a bug here."""

    def wrong(what: str) -> ProviderError:
        return ProviderError(f"ZoneRead {fqdn}: WAPI answered a zone_delegated {what}")

    if not isinstance(obj, dict):
        raise wrong(f"that is {type(obj).__name__}, not an object")
    if not isinstance(obj.get("_ref"), str) or not obj["_ref"]:
        raise wrong("without a _ref")
    entries = obj.get("delegate_to")
    if entries is not None and not isinstance(entries, list):
        raise wrong(f"whose delegate_to is {type(entries).__name__}, not a list")
    for entry in entries or []:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "address")):
            raise wrong(f"whose delegate_to entry {entry!r} lacks a name or address")
    ttl = obj.get("ttl")
    if obj.get("use_ttl") and ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise wrong(f"whose ttl is {ttl!r}, not a number")
    return obj


def _wapi_error(response: httpx.Response) -> tuple[str, str]:
    """WAPI errors are `{"Error": ..., "code": ..., "text": ...}`; anything else is shown as it came."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase, ""
    if isinstance(body, dict):
        return str(body.get("text") or body.get("Error") or body), str(body.get("code", ""))
    return str(body)[:200], ""


def _by_address(entry: dict[str, str]) -> tuple[str, str]:
    """k8gb's order: by address as text (so "10.0.0.10" < "10.0.0.9"); a fleet mixing k8gb and
    pygslb clusters then agrees on the list and never rewrites it back and forth."""
    return (entry["address"], entry["name"])
