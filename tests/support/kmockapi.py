"""A Kubernetes API server for tests: kmock's HTTP server, with the API semantics our code relies on.

What kmock 0.8 gives us and we keep: a real aiohttp server on 127.0.0.1 (a free port), the parsing of
every request into Kubernetes terms (resource, namespace, name, subresource), the request log
(`api.requests`), and the reaction DSL for fault injection: a reaction a test adds wins over the
emulation, e.g. `api[kmock.resource("k8gb.io", "v1beta1", "gslbs")][:1] << 503`.

What kmock 0.8 lacks (toolbox.md, "known gaps"), and how this fixture adapts, smallest first:
 1. `watch=True` (what kubernetes-asyncio sends) is a watch, like `watch=true`.
 2. POST answers 201 Created; PUT replaces (kmock maps PUT to nothing); PATCH takes merge, strategic
    (treated as a merge patch: lists are replaced) and JSON patches.
 3. Lists carry `kind: <Kind>List`, `apiVersion` and `metadata.resourceVersion`.
 4. Core discovery says `groupVersion: v1`; a created CustomResourceDefinition registers its resource
    (kind, scope, short names, status subresource, printer columns) for discovery and serving.
 5. `uid`, `resourceVersion` (one counter, as etcd's revision), `generation` (bumped when anything but
    metadata and a subresource-managed status changes) and `creationTimestamp` are set by the server;
    a write with a stale `resourceVersion` is 409 Conflict; a PUT of a custom resource without one is
    422, as the real server answers; a no-op write changes nothing and emits no event.
 6. Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`) and field selectors (`a.b=c`,
    `a.b!=c`) filter lists and watches; a watch reports objects entering/leaving a selector as
    ADDED/DELETED, like the real server.
 7. The status subresource: writes to `/status` change only status; writes to the object ignore status.
 8. Watches replay history from `resourceVersion`; `compact()` forgets history so older versions get
    the real "410 Expired" ERROR event (so does a version older than the last `history_limit`
    changes, 100,000 unless given, as etcd compacts its revisions); `bookmark()` sends BOOKMARKs to
    watches that asked for them; `drop_watches()` ends (or aborts) open streams; `timeoutSeconds` ends
    a stream like the server does.
 9. Deletion honours finalizers (deletionTimestamp first) and preconditions, and garbage-collects
    dependents through ownerReferences by the DELETE's `propagationPolicy`, as the API server and its
    garbage collector do: `Background` (the default) deletes the owner at once, then its dependents;
    `Orphan` and `Foreground` first mark the owner deleting with the `orphan` or `foregroundDeletion`
    finalizer (MODIFIED), then the dependents lose their reference to it or are deleted, then the
    finalizer goes and, with the last one, the owner (DELETED). The collector works at once, unless
    `gc_paused` holds its work back until `collect_garbage()` (a real one lags behind the deletion).
10. Server-side printing: `Accept: ...;as=Table` answers a meta.k8s.io/v1 Table built from the CRD's
    additionalPrinterColumns, which is what `kubectl get` prints.
11. TokenReview (authentication.k8s.io/v1) and SubjectAccessReview (authorization.k8s.io/v1) POSTs are
    answered from `api.access`, a table the test fills: `add_token(token, user, groups)` and
    `allow(subject, verbs, resource, group, namespace)` (subject: a user or one of its groups; "*"
    matches anything). Unknown tokens are unauthenticated; anything not allowed is denied.
12. Structural defaulting: a custom resource created or updated without a property its CRD schema
    gives a `default` gets that default (inside objects that are present, and in array items).
13. `dryRun=All` (query, or `dryRun: [All]` in DeleteOptions) on a write: everything is checked and
    answered, nothing is kept and no watch hears of it; a dry-run create has no uid or resourceVersion.
Not emulated: admission, schema validation/pruning, server-side apply, pagination (`limit` returns all).

kmock's own `KubernetesEmulator` keeps objects without versions or history, so its state model is
replaced here wholesale rather than patched piecemeal; the transport, parsing and DSL stay kmock's.

Stored objects are never changed in place: a write stores a new dict (copying only the levels it
changes), so history, watch events and replies share objects instead of deep-copying them (the copies
were most of the per-request cost). What comes in (a request body, a test's dict) is cloned once and
what a test gets back is a clone, so nothing a client or a test holds aliases the stored state.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import functools
import random
import re
import string
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiohttp.web
import attrs
import kmock
import orjson
import yaml

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" for cluster scope), name


# --- resource types ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    json_path: str
    priority: int = 0
    description: str = ""
    format: str = ""


@dataclass
class ResourceType:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has the status subresource
    custom: bool = False  # defined by a CRD (PUT requires a resourceVersion)
    short_names: tuple[str, ...] = ()
    singular: str = ""
    columns: tuple[Column, ...] = ()
    schema: Obj | None = None  # the CRD's openAPIV3Schema (storage version), for defaulting

    @functools.cached_property
    def defaults(self) -> Obj | None:
        """The part of `schema` that defaulting walks (None: nothing to default)."""
        return defaulting_schema(self.schema) if self.schema is not None else None

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def discovery(self) -> list[Obj]:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        entry = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        entries = [entry]
        if self.status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


BUILTINS: tuple[ResourceType, ...] = (
    ResourceType("", ("v1",), "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)),
    ResourceType("", ("v1",), "services", "Service", status=True, short_names=("svc",)),
    ResourceType("", ("v1",), "events", "Event", short_names=("ev",)),
    ResourceType("", ("v1",), "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("networking.k8s.io", ("v1",), "ingresses", "Ingress", status=True, short_names=("ing",)),
    ResourceType("discovery.k8s.io", ("v1",), "endpointslices", "EndpointSlice"),
    ResourceType("coordination.k8s.io", ("v1",), "leases", "Lease"),
    ResourceType("events.k8s.io", ("v1",), "events", "Event", short_names=("ev",)),
    ResourceType("authentication.k8s.io", ("v1",), "tokenreviews", "TokenReview", namespaced=False),
    ResourceType(
        "authorization.k8s.io", ("v1",), "subjectaccessreviews", "SubjectAccessReview", namespaced=False
    ),
    ResourceType(
        "apiextensions.k8s.io",
        ("v1",),
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        status=True,
        short_names=("crd", "crds"),
    ),
)


def resource_type_from_crd(crd: Obj) -> ResourceType:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    storage = next((v for v in served if v.get("storage")), served[0])
    columns = tuple(
        Column(
            name=c["name"],
            type=c.get("type", "string"),
            json_path=c["jsonPath"],
            priority=c.get("priority", 0),
            description=c.get("description", ""),
            format=c.get("format", ""),
        )
        for c in storage.get("additionalPrinterColumns", [])
    )
    return ResourceType(
        group=spec["group"],
        versions=tuple(v["name"] for v in served),
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        status="status" in (storage.get("subresources") or {}),
        custom=True,
        short_names=tuple(names.get("shortNames", [])),
        singular=names.get("singular", ""),
        columns=columns,
        schema=(storage.get("schema") or {}).get("openAPIV3Schema"),
    )


def clone[T](value: T) -> T:
    """A deep copy of JSON-like data (dicts, lists, tuples, scalars): copy.deepcopy's result, 4x faster."""
    return cast(T, _clone(value))


def clone_decoded(value: Any) -> Any:
    """A deep copy of what a JSON parser returned (no tuples, no NaN): through orjson, 3x faster than
    `clone`. Anything orjson refuses (an int beyond 64 bits) takes `clone`."""
    try:
        return orjson.loads(orjson.dumps(value))
    except orjson.JSONEncodeError:
        return _clone(value)


def _clone(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    if kind is list:
        return [_clone(v) for v in value]
    if kind is tuple:
        return tuple(_clone(v) for v in value)
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def defaulting_schema(schema: Obj) -> Obj | None:
    """The branches of an openAPIV3Schema that lead to a `default`, or None if there is none: defaulting
    with it does what it does with the whole schema, without walking what can get no default."""
    properties = {name: defaulting_schema(sub) for name, sub in (schema.get("properties") or {}).items()}
    pruned: Obj = {"default": schema["default"]} if "default" in schema else {}
    for key in ("additionalProperties", "items"):
        sub = schema.get(key)
        if isinstance(sub, dict) and (inner := defaulting_schema(sub)) is not None:
            pruned[key] = inner
    if "additionalProperties" in pruned or any(sub is not None for sub in properties.values()):
        pruned["properties"] = {name: sub or {} for name, sub in properties.items()}  # not additional
    return pruned or None


def with_defaults(value: Any, schema: Obj) -> Any:
    """Adaptation 12: `value` with missing properties that have a `default` filled in, as the API server
    does. Copy on write: untouched parts (and `value` itself, if nothing is missing) are returned as is."""
    if not schema:
        return value
    out = value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, item in list(value.items()) + [(n, None) for n in properties if n not in value]:
            sub = properties[name] if name in properties else extra
            if not isinstance(sub, dict):
                continue
            if name in value:
                new = with_defaults(item, sub)
            elif "default" in sub:
                new = with_defaults(clone(sub["default"]), sub)
            else:
                continue
            if name not in value or new is not item:
                if out is value:
                    out = dict(value)
                out[name] = new
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = [with_defaults(item, schema["items"]) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            out = items
    return out


# --- selectors and patches ----------------------------------------------------------------------------


class BadRequest(ValueError):
    pass


_REQ = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[A-Za-z0-9._-]*)|\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def label_matcher(text: str | None) -> Any:
    """A predicate over a labels dict from a Kubernetes label selector string."""
    if not text:
        return lambda labels: True
    checks = []
    for part in _split_selector(text):
        m = _REQ.match(part)
        if not m or (m["neg"] and (m["op"] or m["setop"])):
            raise BadRequest(f"unable to parse requirement: {part!r}")
        key = m["key"]
        if m["op"] in ("=", "=="):
            checks.append(lambda lb, k=key, v=m["val"]: lb.get(k) == v)
        elif m["op"] == "!=":
            checks.append(lambda lb, k=key, v=m["val"]: lb.get(k) != v)
        elif m["setop"]:
            values = {v.strip() for v in m["vals"].split(",") if v.strip()}
            if m["setop"] == "in":
                checks.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                checks.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
        elif m["neg"]:
            checks.append(lambda lb, k=key: k not in lb)
        else:
            checks.append(lambda lb, k=key: k in lb)
    return lambda labels: all(check(labels or {}) for check in checks)


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def field_matcher(text: str | None) -> Any:
    if not text:
        return lambda obj: True
    checks = []
    for part in text.split(","):
        m = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise BadRequest(f"invalid field selector: {part!r}")
        path, op, value = m.groups()
        if op == "!=":
            checks.append(lambda o, p=path, v=value: str(_dig(o, p) or "") != v)
        else:
            checks.append(lambda o, p=path, v=value: str(_dig(o, p) or "") == v)
    return lambda obj: all(check(obj) for check in checks)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: a new object; parts of `target` the patch leaves alone are shared."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise BadRequest(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 JSON patch: add, remove, replace, test."""
    doc = clone(target)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        kind = op["op"]
        if kind == "test":
            current = node[int(last)] if isinstance(node, list) else node.get(last)
            if current != op.get("value"):
                raise BadRequest(f"test failed at {op['path']}")
        elif kind == "remove":
            if isinstance(node, list):
                del node[int(last)]
            else:
                node.pop(last)
        elif kind in ("add", "replace"):
            if isinstance(node, list):
                if last == "-":
                    node.append(clone(op["value"]))
                elif kind == "add":
                    node.insert(int(last), clone(op["value"]))
                else:
                    node[int(last)] = clone(op["value"])
            else:
                node[last] = clone(op["value"])
        else:
            raise BadRequest(f"unsupported JSON patch op {kind!r}")
    return doc


# --- access reviews (adaptation 11) ------------------------------------------------------------------------


@dataclass
class AccessTable:
    """Who each bearer token is and what each subject may do, as the test sets it."""

    tokens: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    grants: set[tuple[str, str, str, str, str]] = field(default_factory=set)  # subject, verb, group, res, ns

    def add_token(self, token: str, user: str, groups: Iterable[str] = ()) -> None:
        self.tokens[token] = (user, tuple(groups))

    def allow(
        self,
        subject: str,
        verbs: Iterable[str],
        resource: str = "gslbs",
        group: str = "k8gb.io",
        namespace: str = "*",
    ) -> None:
        """Grant `verbs` on `resource` (e.g. "gslbs/status") of `group` in `namespace` ("*": all)."""
        for verb in verbs:
            self.grants.add((subject, verb, group, resource, namespace))

    def review(self, plural: str, body: Any) -> Obj:
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            raise BadRequest("a review needs a spec")
        spec = body["spec"]
        if plural == "tokenreviews":
            found = self.tokens.get(str(spec.get("token") or ""))
            status: Obj = {"authenticated": False, "user": {}, "error": "invalid bearer token"}
            if found is not None:
                user, groups = found
                status = {
                    "authenticated": True,
                    "user": {
                        "username": user,
                        "uid": f"uid-{user}",
                        "groups": [*groups, "system:authenticated"],
                    },
                }
            return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
        attrs_ = spec.get("resourceAttributes") or {}
        resource = str(attrs_.get("resource") or "")
        if attrs_.get("subresource"):
            resource += f"/{attrs_['subresource']}"
        wanted = (str(attrs_.get("verb") or ""), str(attrs_.get("group") or ""), resource)
        subjects = {str(spec.get("user") or ""), *(spec.get("groups") or [])}
        namespace = str(attrs_.get("namespace") or "")

        def grants(grant: tuple[str, str, str, str, str]) -> bool:
            subject, *what, where = grant
            return (
                subject in subjects | {"*"}
                and all(g in (w, "*") for g, w in zip(what, wanted, strict=True))
                and where in ("*", namespace)
            )

        allowed = any(grants(grant) for grant in self.grants)
        verdict: Obj = {"allowed": allowed}
        if allowed:
            verdict["reason"] = "kmock: allowed by the test's grant"
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "status": verdict}


_REVIEWS = {("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")}


# --- watches ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)  # kept by the thousand in the history: no __dict__ each
class Change:
    rv: int
    type: str  # ADDED / MODIFIED / DELETED
    group: str
    plural: str
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    rtype: ResourceType
    version: str
    namespace: str | None
    labels: Any
    fields: Any
    bookmarks: bool
    queue: asyncio.Queue[bytes | str] = field(default_factory=asyncio.Queue)  # lines, or "end"/"abort"

    @property
    def api_version(self) -> str:
        return self.rtype.api_version(self.version)

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return bool(self.labels(meta.get("labels")) and self.fields(obj))

    def event_type(self, change: Change) -> str | None:
        """The event this watcher sees for a change, with selector transitions as the API server has them."""
        if (change.group, change.plural) != (self.rtype.group, self.rtype.plural):
            return None
        now, before = self._matches(change.obj), self._matches(change.old)
        if change.type == "DELETED":
            kind = "DELETED" if before or now else None
        elif now and before:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif before:
            kind = "DELETED"
        else:
            kind = None
        return kind


def _dumps(data: Any) -> str:
    """Compact JSON, as the API server writes it (UTF-8, not ASCII escapes, as Go's encoder does)."""
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


def _json(data: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(text=_dumps(data), status=status, content_type="application/json")


def _line(event_type: str, obj_json: str) -> bytes:
    """One line of a watch stream, around an object already encoded."""
    return f'{{"type":"{event_type}","object":{obj_json}}}\n'.encode()


class ObjectJson:
    """A stored object as JSON in an apiVersion, the last one remembered: a write encodes its object
    for the watch events and its reply encodes it again (stored objects never change, so identity
    is enough to know it is the same)."""

    def __init__(self) -> None:
        self._last: tuple[Obj, str, str] | None = None

    def __call__(self, obj: Obj, api_version: str) -> str:
        last = self._last
        if last is not None and last[0] is obj and last[1] == api_version:
            return last[2]
        text = _dumps({**obj, "apiVersion": api_version})
        self._last = (obj, api_version, text)
        return text


class EventLines:
    """A change's watch lines, each encoded once however many watchers see it (per type and version)."""

    def __init__(self, change: Change, encode: ObjectJson) -> None:
        self.change = change
        self._encode = encode
        self._lines: dict[tuple[str, str], bytes] = {}

    def get(self, watcher: Watcher) -> bytes | None:
        event_type = watcher.event_type(self.change)
        if event_type is None:
            return None
        key = (event_type, watcher.api_version)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _line(event_type, self._encode(self.change.obj, key[1]))
        return line


# --- the server --------------------------------------------------------------------------------------------


class Objects:
    """The stored objects by key, kept per type so a list or a watch reads its type's objects only."""

    def __init__(self) -> None:
        self._by_type: dict[tuple[str, str], dict[Key, Obj]] = {}

    def get(self, key: Key) -> Obj | None:
        return self._by_type.get(key[:2], {}).get(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._by_type.get(key[:2], {})

    def __setitem__(self, key: Key, obj: Obj) -> None:
        self._by_type.setdefault(key[:2], {})[key] = obj

    def __delitem__(self, key: Key) -> None:
        del self._by_type[key[:2]][key]

    def of_type(self, group: str, plural: str) -> list[tuple[Key, Obj]]:
        """One type's objects in key order (namespace, name), as the API server lists them."""
        return sorted(self._by_type.get((group, plural), {}).items())

    def items(self) -> list[tuple[Key, Obj]]:
        return [item for objects in self._by_type.values() for item in objects.items()]


def _drain(first: bytes | str, queue: asyncio.Queue[bytes | str]) -> tuple[list[bytes], str | None]:
    """`first` and the lines queued after it, up to an "end"/"abort" (returned apart: the stream stops)."""
    lines: list[bytes] = []
    item: bytes | str | None = first
    while item is not None:
        if isinstance(item, str):
            return lines, item
        lines.append(item)
        item = queue.get_nowait() if not queue.empty() else None
    return lines, None


def _dry_run(query: str | None, body: Any) -> bool:
    """`dryRun` of a write, from the query or DeleteOptions; anything but "All" is refused (400)."""
    values = [] if query is None else [query]
    if isinstance(body, dict) and body.get("kind") == "DeleteOptions":
        values += body.get("dryRun") or []
    for value in values:
        if value != "All":
            raise BadRequest(f'Invalid dryRun value "{value}": only "All" is supported')
    return bool(values)


@functools.lru_cache(maxsize=1)
def _timestamp(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The garbage collector's finalizers (metav1.FinalizerOrphanDependents, FinalizerDeleteDependents) by the
# propagation policy that asks for them.
ORPHAN_FINALIZER = "orphan"
GC_FINALIZERS = {"Orphan": ORPHAN_FINALIZER, "Foreground": "foregroundDeletion"}


def _deletion_finalizers(held: list[str], policy: str | None) -> list[str]:
    """The finalizers a DELETE leaves on the object, as the API server's store sets them: an explicit
    policy replaces the collector's finalizer, none keeps whichever the object carries (else Background)."""
    if policy is None:
        return held
    kept = [f for f in held if f not in GC_FINALIZERS.values()]
    return [*kept, GC_FINALIZERS[policy]] if policy in GC_FINALIZERS else kept


def _now() -> str:
    """The current time as the API server writes timestamps (whole seconds, formatted once a second)."""
    return _timestamp(int(time.time()))


def _status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.body = _status(code, reason, message, details)
        self.code = code


def _spec_part(obj: Obj, with_status: bool) -> Obj:
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if not with_status else set())
    return {k: v for k, v in obj.items() if k not in skip}


def _same_ignoring_version(a: Obj, b: Obj) -> bool:
    def strip(o: Obj) -> tuple[Obj, Obj]:
        meta = o.get("metadata", {})
        rest = {k: v for k, v in o.items() if k != "metadata"}
        return rest, {k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields")}

    return strip(a) == strip(b)


@attrs.define(kw_only=True)
class KubeApi(kmock.RawHandler):
    """A kmock handler that behaves as a Kubernetes API server (see the module docstring)."""

    _types: dict[tuple[str, str], ResourceType] = attrs.field(factory=dict, init=False)
    _objects: Objects = attrs.field(factory=Objects, init=False)
    _rv: int = attrs.field(default=100, init=False)
    _history: list[Change] = attrs.field(factory=list, init=False)  # in resourceVersion order
    history_limit: int = 100_000  # changes kept for watch replay; older ones are compacted away
    _compacted: int = attrs.field(default=0, init=False)
    _watchers: set[Watcher] = attrs.field(factory=set, init=False)
    _object_json: ObjectJson = attrs.field(factory=ObjectJson, init=False)
    server_url: str = attrs.field(default="", init=False)
    access: AccessTable = attrs.field(factory=AccessTable, init=False)
    kubeconfig: Path | None = attrs.field(default=None, init=False)
    gc_paused: bool = False  # adaptation 9: the garbage collector's work waits for collect_garbage()
    _gc_pending: list[Callable[[], None]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        for rtype in BUILTINS:
            self.register(rtype)

    # --- test-facing helpers ---------------------------------------------------------------------

    def register(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.plural)] = rtype

    def install_crds(self, documents: Iterable[Obj]) -> None:
        """Create CRDs directly (as `kubectl apply -f crds/` would)."""
        for crd in documents:
            if crd and crd.get("kind") == "CustomResourceDefinition":
                self._create(
                    self._types[("apiextensions.k8s.io", "customresourcedefinitions")], "v1", None, clone(crd)
                )

    def next_request(self, *criteria: Any) -> Any:
        """A kmock view of the next request matching `criteria` (kmock's slices count from the first
        request ever matched, so `api[c][:1]` would miss once a matching request has been served)."""
        view = self[criteria] if len(criteria) > 1 else self[criteria[0]]
        seen = sum(1 for _ in view)
        return view[seen : seen + 1]

    @property
    def resource_version(self) -> int:
        return self._rv

    def compact(self) -> None:
        """Forget the watch history so far: a watch from an older resourceVersion gets 410 Expired."""
        self._compacted = self._rv
        self._history.clear()

    def bookmark(self) -> int:
        """Send a BOOKMARK with the current resourceVersion to every watch that allowed bookmarks."""
        sent = 0
        for watcher in list(self._watchers):
            if watcher.bookmarks:
                obj = {
                    "kind": watcher.rtype.kind,
                    "apiVersion": watcher.api_version,
                    "metadata": {"resourceVersion": str(self._rv)},
                }
                watcher.queue.put_nowait(_line("BOOKMARK", _dumps(obj)))
                sent += 1
        return sent

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch stream: cleanly (EOF, as a server timeout) or by aborting the connection."""
        for watcher in list(self._watchers):
            watcher.queue.put_nowait("abort" if abort else "end")
        return len(self._watchers)

    @property
    def open_watches(self) -> int:
        return len(self._watchers)

    def watchers_of(self, plural: str) -> int:
        return sum(1 for w in self._watchers if w.rtype.plural == plural)

    # Direct, synchronous writes (same semantics and events as over HTTP): they let a test change the
    # cluster at an exact moment, e.g. from inside a kmock reaction, with no await in between.

    def create_object(self, group: str, version: str, plural: str, body: Obj) -> Obj:
        rtype = self._types[(group, plural)]
        ns = (body.get("metadata") or {}).get("namespace") if rtype.namespaced else None
        return clone(self._create(rtype, version, ns, clone(body)))

    def update_object(self, group: str, plural: str, body: Obj, *, status: bool = False) -> Obj:
        """Write `body` over the stored object of the same name (unconditionally)."""
        rtype = self._types[(group, plural)]
        meta = body["metadata"]
        current = self._get(rtype, meta.get("namespace"), meta["name"])
        return clone(self._commit(rtype, current, clone(body), status_only=status))

    def set_status(self, group: str, plural: str, namespace: str | None, name: str, status: Obj) -> Obj:
        """Write an object's status as its controller would (an ingress controller, a Gateway's)."""
        current = self.get_object(group, plural, namespace, name)
        assert current is not None, f"no {plural} {namespace}/{name}"
        return self.update_object(group, plural, {**current, "status": status}, status=True)

    def delete_object(
        self, group: str, plural: str, namespace: str | None, name: str, propagation: str | None = None
    ) -> Obj:
        options = {"propagationPolicy": propagation} if propagation else {}
        return clone(self._delete(self._types[(group, plural)], namespace, name, options))

    def collect_garbage(self) -> None:
        """Do the garbage collector's work held back while `gc_paused`, in the order it was due."""
        while self._gc_pending:
            self._gc_pending.pop(0)()

    def get_object(self, group: str, plural: str, namespace: str | None, name: str) -> Obj | None:
        obj = self._objects.get((group, plural, namespace or "", name))
        return clone(obj) if obj is not None else None

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[Obj]:
        return [
            clone(o)
            for (_, _, ns, _), o in self._objects.of_type(group, plural)
            if namespace is None or ns == namespace
        ]

    # --- request entry -------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        logged, request = request, self._normalize(request)
        if self._payloads:  # a reaction the test added wins
            with contextlib.suppress(NotImplementedError):
                return await super()._handle(request)
        try:
            return await self._emulate(request)
        except ApiError as exc:
            return _json(exc.body, status=exc.code)
        except BadRequest as exc:
            return _json(_status(400, "BadRequest", str(exc)), status=400)
        finally:
            # The log keeps the request, not aiohttp's (a score of objects each, which the garbage
            # collector would walk for the rest of the run); kmock reads it only while responding.
            object.__setattr__(logged, "_raw_request", None)

    def _normalize(self, request: kmock.Request) -> kmock.Request:
        """Adaptation 1 and 2: `watch=True`, and PUT as an update, in kmock's own request terms."""
        watch = str(request.params.get("watch", "")).lower() in ("true", "1")
        action = request.action
        if request.resource is not None:
            if request.method == kmock.method.GET and watch:
                action = kmock.action.WATCH
            elif request.method == kmock.method.PUT and request.name:
                action = kmock.action.UPDATE
        if action is request.action:
            return request
        return attrs.evolve(request, action=action)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        return _json(_status(500, "InternalError", repr(exc)), status=500)

    async def _emulate(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path.rstrip("/") or "/"
        if request.resource is None or request.resource.plural is None:
            return self._discovery(path)
        group, version, plural = request.resource.group, request.resource.version, request.resource.plural
        rtype = self._types.get((group or "", plural))
        if rtype is None or version not in rtype.versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns = request.namespace if rtype.namespaced else None
        sub = request.subresource
        if sub not in (None, "status") or (sub == "status" and not rtype.status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = request.method
        body: Any = clone_decoded(request.data)  # ours: the request log keeps kmock's `data`
        if request.action == kmock.action.WATCH:
            return await self._serve_watch(request, rtype, version, ns)
        if (rtype.group, rtype.plural) in _REVIEWS:
            if method != kmock.method.POST or request.name:
                raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
            return _json(self.access.review(rtype.plural, body), status=201)
        if method == kmock.method.GET and request.name:
            obj = self._get(rtype, ns, request.name)
            return self._reply(request, rtype, version, obj)
        if method == kmock.method.GET:
            return self._reply_list(request, rtype, version, ns)
        if _dry_run(request.params.get("dryRun"), body):
            with self._undone():
                return self._write(request, rtype, version, ns, body, dry_run=True)
        return self._write(request, rtype, version, ns, body)

    def _write(
        self,
        request: kmock.Request,
        rtype: ResourceType,
        version: str,
        ns: str | None,
        body: Any,
        *,
        dry_run: bool = False,
    ) -> aiohttp.web.StreamResponse:
        method, sub = request.method, request.subresource
        if method == kmock.method.POST and not request.name:
            created = self._create(rtype, version, ns, body)
            if dry_run:
                created = {**created, "metadata": dict(created["metadata"])}
                for generated in ("uid", "resourceVersion"):
                    created["metadata"].pop(generated, None)
            return self._reply_object(rtype, version, created, status=201)
        if method == kmock.method.PUT and request.name:
            updated = self._replace(rtype, ns, request.name, body, status_only=sub == "status")
            return self._reply_object(rtype, version, updated)
        if method == kmock.method.PATCH and request.name:
            ctype = request.headers.get("Content-Type", "application/merge-patch+json").split(";")[0]
            updated = self._patch(rtype, ns, request.name, body, ctype, status_only=sub == "status")
            return self._reply_object(rtype, version, updated)
        if method == kmock.method.DELETE and request.name:
            deleted = self._delete(rtype, ns, request.name, body if isinstance(body, dict) else {})
            return self._reply_object(rtype, version, deleted)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    @contextlib.contextmanager
    def _undone(self) -> Any:
        """Whatever a dry-run write does to the objects, the version counter and the history is
        undone afterwards, and no watch hears of it."""
        objects = {t: dict(by_key) for t, by_key in self._objects._by_type.items()}
        rv, history, watchers = self._rv, len(self._history), self._watchers
        pending = len(self._gc_pending)
        self._watchers = set()
        try:
            yield
        finally:
            self._objects._by_type, self._rv, self._watchers = objects, rv, watchers
            del self._history[history:]
            del self._gc_pending[pending:]

    # --- discovery ------------------------------------------------------------------------------

    def _discovery(self, path: str) -> aiohttp.web.StreamResponse:
        groups: dict[str, list[str]] = {}
        for rtype in self._types.values():
            if rtype.group:
                versions = groups.setdefault(rtype.group, [])
                versions.extend(v for v in rtype.versions if v not in versions)

        def group_obj(name: str) -> Obj:
            vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in groups[name]]
            return {"name": name, "versions": vs, "preferredVersion": vs[0]}

        if path == "/version":
            return _json(
                {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kmock", "platform": "linux/amd64"}
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return _json(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [group_obj(g) for g in sorted(groups)],
                }
            )
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)|/apis/([^/]+)", path)
        if m and m.group(4):
            if m.group(4) not in groups:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json({"kind": "APIGroup", "apiVersion": "v1", **group_obj(m.group(4))})
        if m:
            group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            resources = [
                entry
                for rtype in self._types.values()
                if rtype.group == group and version in rtype.versions
                for entry in rtype.discovery()
            ]
            if not resources:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            gv = f"{group}/{version}" if group else version
            return _json(
                {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
            )
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # --- reads --------------------------------------------------------------------------------------

    def _view(self, rtype: ResourceType, version: str, obj: Obj) -> Obj:
        """A stored object as served in `version` (a shallow copy: stored objects are never changed)."""
        return {**obj, "apiVersion": rtype.api_version(version), "kind": rtype.kind}

    def _reply_object(
        self, rtype: ResourceType, version: str, obj: Obj, status: int = 200
    ) -> aiohttp.web.Response:
        """`_view` of `obj` as a reply; after a write, its JSON is the one its watch events carried."""
        if obj.get("kind") == rtype.kind:  # then the view differs from the stored object by apiVersion only
            text = self._object_json(obj, rtype.api_version(version))
        else:
            text = _dumps(self._view(rtype, version, obj))
        return aiohttp.web.Response(text=text, status=status, content_type="application/json")

    def _key(self, rtype: ResourceType, ns: str | None, name: str) -> Key:
        return (rtype.group, rtype.plural, ns or "", name)

    def _get(self, rtype: ResourceType, ns: str | None, name: str) -> Obj:
        obj = self._objects.get(self._key(rtype, ns, name))
        if obj is None:
            raise self._not_found(rtype, name)
        return obj

    def _not_found(self, rtype: ResourceType, name: str) -> ApiError:
        qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
        return ApiError(
            404,
            "NotFound",
            f'{qualified} "{name}" not found',
            {"name": name, "group": rtype.group, "kind": rtype.plural},
        )

    def _select(self, rtype: ResourceType, ns: str | None, params: Any) -> list[Obj]:
        labels = label_matcher(params.get("labelSelector"))
        fields = field_matcher(params.get("fieldSelector"))
        return [
            obj
            for (_, _, ons, _), obj in self._objects.of_type(rtype.group, rtype.plural)
            if (ns is None or ons == ns) and labels(obj.get("metadata", {}).get("labels")) and fields(obj)
        ]

    def _reply(
        self, request: kmock.Request, rtype: ResourceType, version: str, obj: Obj
    ) -> aiohttp.web.Response:
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(self._table(request, rtype, [obj]))
        return self._reply_object(rtype, version, obj)

    def _reply_list(
        self, request: kmock.Request, rtype: ResourceType, version: str, ns: str | None
    ) -> aiohttp.web.Response:
        items = self._select(rtype, ns, request.params)
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(self._table(request, rtype, items))
        return _json(
            {
                "apiVersion": rtype.api_version(version),
                "kind": rtype.list_kind,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": [self._view(rtype, version, o) for o in items],
            }
        )

    def _table(self, request: kmock.Request, rtype: ResourceType, items: list[Obj]) -> Obj:
        """Adaptation 10: what the API server prints for `kubectl get` (Name + printer columns, or Age)."""
        columns = list(rtype.columns) or [Column("Age", "date", ".metadata.creationTimestamp")]
        definitions = [
            {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
        ] + [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ]
        rows = []
        for obj in items:
            cells: list[Any] = [obj["metadata"]["name"]]
            for c in columns:
                value = _dig(obj, c.json_path.lstrip("."))
                if c.type == "date" and isinstance(value, str):
                    value = _age(value)
                cells.append(value)
            meta = {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in obj["metadata"]
            }
            rows.append(
                {
                    "cells": cells,
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": meta,
                    },
                }
            )
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "columnDefinitions": definitions,
            "rows": rows,
        }

    # --- writes ---------------------------------------------------------------------------------------

    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, rtype: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        change = Change(self._rv, kind, rtype.group, rtype.plural, obj, old)
        self._history.append(change)
        if len(self._history) > 2 * self.history_limit:  # trimmed now and then, not on every write
            forgotten = len(self._history) - self.history_limit
            self._compacted = max(self._compacted, self._history[forgotten - 1].rv)
            del self._history[:forgotten]
        lines = EventLines(change, self._object_json)
        for watcher in list(self._watchers):
            line = lines.get(watcher)
            if line is not None:
                watcher.queue.put_nowait(line)

    def _create(self, rtype: ResourceType, version: str, ns: str | None, body: Any) -> Obj:
        """Store `body` (the caller's own copy, which becomes the stored object) as a new object."""
        if not isinstance(body, dict):
            raise BadRequest("the body of the request was in an unknown format")
        obj = body
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            ns = ns or meta.get("namespace")
            if not ns:
                raise BadRequest("the namespace of the object is required")
            meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        key = self._key(rtype, ns, name)
        if key in self._objects:
            qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(
                409,
                "AlreadyExists",
                f'{qualified} "{name}" already exists',
                {"name": name, "group": rtype.group, "kind": rtype.plural},
            )
        for server_field in (
            "deletionTimestamp",
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
        ):
            meta.pop(server_field, None)
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=_now())
        if rtype.status:
            obj.pop("status", None)
        if rtype.defaults is not None:
            obj = with_defaults(obj, rtype.defaults)
        obj["apiVersion"], obj["kind"] = rtype.api_version(version), rtype.kind
        obj["metadata"]["resourceVersion"] = str(self._bump())
        self._objects[key] = obj
        if rtype.group == "apiextensions.k8s.io" and rtype.plural == "customresourcedefinitions":
            self.register(resource_type_from_crd(obj))
            obj["status"] = {
                "conditions": [
                    {"type": "Established", "status": "True"},
                    {"type": "NamesAccepted", "status": "True"},
                ],
                "acceptedNames": obj["spec"]["names"],
            }
        self._emit(rtype, "ADDED", obj, None)
        return obj

    def _check_rv(self, rtype: ResourceType, current: Obj, wanted: str | None) -> None:
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            qualified = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {qualified} "{current["metadata"]["name"]}": '
                "the object has been modified; please apply your changes to the latest version and try again",
                {"name": current["metadata"]["name"], "group": rtype.group, "kind": rtype.plural},
            )

    def _replace(
        self, rtype: ResourceType, ns: str | None, name: str, body: Any, *, status_only: bool
    ) -> Obj:
        if not isinstance(body, dict):
            raise BadRequest("the body of the request was in an unknown format")
        current = self._get(rtype, ns, name)
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise BadRequest("the name of the object does not match the name on the URL")
        wanted = meta.get("resourceVersion")
        if rtype.custom and not wanted and not status_only:
            raise ApiError(
                422, "Invalid", "metadata.resourceVersion: Invalid value: 0: must be specified for an update"
            )
        self._check_rv(rtype, current, wanted)
        return self._commit(rtype, current, body, status_only=status_only)

    def _patch(
        self, rtype: ResourceType, ns: str | None, name: str, body: Any, ctype: str, *, status_only: bool
    ) -> Obj:
        current = self._get(rtype, ns, name)
        if ctype == "application/json-patch+json":
            if not isinstance(body, list):
                raise BadRequest("a JSON patch is a list of operations")
            patched = json_patch(current, body)
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise BadRequest("a merge patch is an object")
            self._check_rv(rtype, current, (body.get("metadata") or {}).get("resourceVersion"))
            patched = merge_patch(current, body)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the media type {ctype!r} is not supported")
        return self._commit(rtype, current, patched, status_only=status_only)

    def _commit(self, rtype: ResourceType, current: Obj, body: Obj, *, status_only: bool) -> Obj:
        """Write `body` over `current`: server-managed fields kept, generation rules, no-op detection.

        `body` is the caller's: a clone, or a patch result sharing untouched parts with `current`; only
        its top level and metadata are changed here, on copies, so `current` stays as it was."""
        if status_only:
            new = dict(current)
            new["metadata"] = dict(current["metadata"])
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
        else:
            new = dict(body)
            meta = new["metadata"] = dict(new.get("metadata") or {})
            for kept in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "namespace", "name"):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
                else:
                    meta.pop(kept, None)
            if rtype.status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if rtype.defaults is not None:
                new = with_defaults(new, rtype.defaults)
            if _spec_part(new, not rtype.status) != _spec_part(current, not rtype.status):
                new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        new["apiVersion"], new["kind"] = current["apiVersion"], current["kind"]
        if _same_ignoring_version(new, current):
            return current
        new["metadata"]["resourceVersion"] = str(self._bump())
        key = self._key(rtype, current["metadata"].get("namespace"), current["metadata"]["name"])
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            del self._objects[key]
            self._emit(rtype, "DELETED", new, current)
            self._gc(functools.partial(self._collect_garbage, new["metadata"]["uid"]))
            return new
        self._objects[key] = new
        self._emit(rtype, "MODIFIED", new, current)
        return new

    def _delete(self, rtype: ResourceType, ns: str | None, name: str, options: Obj) -> Obj:
        current = self._get(rtype, ns, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"]["uid"]:
            raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: {pre['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}",
            )
        meta = current["metadata"]
        finalizers = _deletion_finalizers(meta.get("finalizers") or [], options.get("propagationPolicy"))
        key = self._key(rtype, ns, name)
        if finalizers:
            if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers"):
                return current
            new = {**current, "metadata": {**meta, "finalizers": finalizers}}
            if not meta.get("deletionTimestamp"):
                new["metadata"]["deletionTimestamp"] = _now()
                new["metadata"]["generation"] = int(meta.get("generation", 1)) + 1
            new["metadata"]["resourceVersion"] = str(self._bump())
            self._objects[key] = new
            self._emit(rtype, "MODIFIED", new, current)
            self._gc(functools.partial(self._finalize_dependents, rtype, key))
            return new
        gone = {**current, "metadata": dict(meta)}
        gone["metadata"].pop("finalizers", None)  # only the collector's, which this policy dropped
        gone["metadata"]["resourceVersion"] = str(self._bump())
        del self._objects[key]
        self._emit(rtype, "DELETED", gone, current)
        self._gc(functools.partial(self._collect_garbage, meta["uid"]))
        return gone

    def _gc(self, work: Callable[[], None]) -> None:
        if self.gc_paused:
            self._gc_pending.append(work)
        else:
            work()

    def _finalize_dependents(self, rtype: ResourceType, key: Key) -> None:
        """The collector's part of an `Orphan` or `Foreground` deletion: the dependents lose their
        reference to the owner or are deleted (without waiting for finalizers of their own), then the
        collector's finalizer goes; without other finalizers, so does the owner."""
        obj = self._objects.get(key)
        held = (obj or {}).get("metadata", {}).get("finalizers") or []
        mine = [f for f in held if f in GC_FINALIZERS.values()]
        if obj is None or not mine:
            return
        self._collect_garbage(obj["metadata"]["uid"], orphan=ORPHAN_FINALIZER in mine)
        body = {**obj, "metadata": dict(obj["metadata"])}
        if left := [f for f in held if f not in mine]:
            body["metadata"]["finalizers"] = left
        else:
            del body["metadata"]["finalizers"]
        self._commit(rtype, obj, body, status_only=False)

    def _collect_garbage(self, owner_uid: str, *, orphan: bool = False) -> None:
        """Adaptation 9: dependents whose every owner is gone are deleted; live co-owners keep them;
        `orphan` keeps them all, without their reference to the owner."""
        live: set[str] | None = None
        for key, obj in self._objects.items():
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == owner_uid for r in refs):
                continue
            rtype = self._types[(key[0], key[1])]
            remaining = [r for r in refs if r.get("uid") != owner_uid]
            if live is None:  # taken before the first dependent changes, as before the loop
                live = {o["metadata"]["uid"] for _, o in self._objects.items()}
            if orphan or any(r.get("uid") in live for r in remaining):
                body = {**obj, "metadata": dict(obj["metadata"])}
                body["metadata"]["ownerReferences"] = remaining
                if not remaining:
                    del body["metadata"]["ownerReferences"]
                self._commit(rtype, obj, body, status_only=False)
            elif key in self._objects:
                self._delete(rtype, key[2] or None, key[3], {})

    # --- watch --------------------------------------------------------------------------------------

    async def _serve_watch(
        self, request: kmock.Request, rtype: ResourceType, version: str, ns: str | None
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        fields = params.get("fieldSelector")
        if request.name:  # watch on a single object path
            fields = ",".join(filter(None, [fields, f"metadata.name={request.name}"]))
        watcher = Watcher(
            rtype=rtype,
            version=version,
            namespace=ns,
            labels=label_matcher(params.get("labelSelector")),
            fields=field_matcher(fields),
            bookmarks=str(params.get("allowWatchBookmarks", "")).lower() in ("true", "1"),
        )
        since = params.get("resourceVersion") or ""
        initial: list[bytes] = []
        if since in ("", "0"):
            for obj in self._select(rtype, ns, {}):
                if watcher._matches(obj):
                    initial.append(_line("ADDED", _dumps(self._view(rtype, version, obj))))
        elif not since.isdigit():
            raise BadRequest(f"invalid resourceVersion {since!r}")
        elif int(since) < self._compacted:
            expired = _status(410, "Expired", f"too old resource version: {since} ({self._compacted})")
            initial.append(_line("ERROR", _dumps(expired)))
            watcher.queue.put_nowait("end")
        else:
            start = bisect.bisect_right(self._history, int(since), key=lambda c: c.rv)
            for change in self._history[start:]:
                line = EventLines(change, self._object_json).get(watcher)
                if line is not None:
                    initial.append(line)
        self._watchers.add(watcher)  # no await since the snapshot: nothing falls in between

        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        timeout = float(params.get("timeoutSeconds") or 0)
        deadline = loop.time() + timeout if timeout else None
        try:
            await response.prepare(request._raw_request)
            if initial:
                await response.write(b"".join(initial))
            while True:
                transport = request._raw_request.transport
                if transport is None or transport.is_closing():
                    break
                wait = 0.5 if deadline is None else min(0.5, deadline - loop.time())
                if wait <= 0:
                    break
                try:
                    first = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    continue
                lines, control = _drain(first, watcher.queue)
                if lines:  # what queued up meanwhile goes out in one chunk
                    await response.write(b"".join(lines))
                if control == "end":
                    break
                if control == "abort":
                    transport.abort()
                    return response
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._watchers.discard(watcher)
        return response

    def close_watches(self) -> None:
        self.drop_watches()


def _age(timestamp: str) -> str:
    then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - then).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    """A kubeconfig for the emulated server, readable by kubernetes-asyncio and the real kubectl."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "kmock-token"}}],
        "contexts": [
            {"name": "kmock", "context": {"cluster": "kmock", "user": "tester", "namespace": namespace}}
        ],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def kube_mode_settings(api: KubeApi, **extra: str) -> dict[str, str]:
    """`gslb serve` settings for kubernetes mode against `api` (geo tag eu, zone cloud.example.com)."""
    return {
        "GSLB_MODE": "kubernetes",
        "KUBECONFIG": str(api.kubeconfig),
        "POD_NAMESPACE": "k8gb",
        "CLUSTER_GEO_TAG": "eu",
        "DNS_ZONES": "example.com:cloud.example.com:30",
        **extra,
    }


@contextlib.asynccontextmanager
async def running_api(workdir: Path) -> AsyncIterator[KubeApi]:
    """The emulated API server on 127.0.0.1 (a free port), with a kubeconfig in `workdir`; stops on exit."""
    api = KubeApi()
    async with api, kmock.Server(api) as server:
        api.server_url = str(server.url).rstrip("/")
        api.kubeconfig = write_kubeconfig(workdir / "kubeconfig", api.server_url)
        try:
            yield api
        finally:
            api.drop_watches()
            await asyncio.sleep(0)


def load_yaml_documents(paths: Iterable[Path]) -> list[Obj]:
    docs: list[Obj] = []
    for path in paths:
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs
