"""A fake Infoblox WAPI server: the `zone_delegated` subset k8gb uses, on WAPI's real wire format.

Infoblox NIOS cannot run here, so this is the one stand-in of the test suite. It speaks HTTP on
127.0.0.1 like the grid does: Basic auth, `/wapi/v<version>/zone_delegated` search with
`_return_fields`, POST answering the new `_ref` as a JSON string (201), PUT/DELETE on
`/wapi/v<version>/<_ref>` answering the ref, errors as `{"Error", "code", "text"}` JSON. It checks
what it receives (unknown fields, malformed delegate_to, duplicates, missing parent zone), records
every request (method, path, query, JSON body, headers including traceparent), and injects faults.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import BasicAuth, web

_VERSION = re.compile(r"^v\d+(\.\d+)*$")
_DEFAULT_FIELDS = ("delegate_to", "fqdn", "view")
_WRITABLE = {
    "fqdn",
    "delegate_to",
    "view",
    "comment",
    "ttl",
    "use_ttl",
    "zone_format",
    "disable",
    "locked",
    "ns_group",
    "delegated_ttl",
    "use_delegated_ttl",
    "extattrs",
}
_READABLE = _WRITABLE | {"parent", "address", "dns_fqdn"}
_SEARCHABLE = {"fqdn", "view", "comment", "zone_format", "parent"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Fault:
    """`status` 5xx/4xx answers that status; `status` 0 holds the request until the client gives up;
    `status` 200 answers a body labelled gzip that is not (a proxy that mangles encodings)."""

    status: int
    text: str = "Injected fault"


@dataclass
class FakeWapi:
    username: str = "admin"
    password: str = "infoblox"
    auth_zones: tuple[str, ...] = ("example.com",)
    views: tuple[str, ...] = ("default",)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    # --- test-facing helpers -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, count: int = 1, status: int = 500, text: str = "Injected fault") -> None:
        """The next `count` requests fail with `status` (0 = hang until the client times out, 200 = a
        body that claims gzip and is not)."""
        self.faults.extend(Fault(status, text) for _ in range(count))

    def seed(self, fqdn: str, delegate_to: list[dict[str, str]], view: str = "default", **fields: Any) -> str:
        """Put a zone_delegated in place as another cluster (or an operator) would have."""
        ref = _ref(fqdn, view)
        self.objects[ref] = {"fqdn": fqdn, "view": view, "delegate_to": delegate_to, **fields}
        return ref

    def zone(self, fqdn: str, view: str = "default") -> dict[str, Any] | None:
        return self.objects.get(_ref(fqdn, view))

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> FakeWapi:
        app = web.Application()
        app.router.add_route("*", "/wapi/{version}/{objtype}", self._collection)
        app.router.add_route("*", "/wapi/{version}/{objtype}/{rest:.+}", self._object)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeWapi:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- HTTP ----------------------------------------------------------------------------------
    async def _admit(self, request: web.Request) -> tuple[web.StreamResponse | None, Any]:
        """Record, authenticate, validate the version, inject faults: (None, body) means carry on."""
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            Request(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                body=body,
                headers={k.lower(): v for k, v in request.headers.items()},
            )
        )
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        if auth is None or (auth.login, auth.password) != (self.username, self.password):
            page = "<html><head><title>401 Authorization Required</title></head></html>"
            return web.Response(status=401, text=page, content_type="text/html"), None
        if not _VERSION.match(request.match_info["version"]):
            return _proto(f"Unknown WAPI version {request.match_info['version']}"), None
        if request.match_info["objtype"] != "zone_delegated":
            objtype = request.match_info["objtype"]
            return _proto(f"Unknown object type ({objtype})"), None
        if self.faults:
            fault = self.faults.popleft()
            if fault.status == 0:
                await self._release.wait()
                return _error(500, "AdmConProtoError", "Server", "released at shutdown"), None
            if fault.status == 200:
                headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
                return web.Response(status=200, body=b"[]", headers=headers), None
            code = "Server" if fault.status >= 500 else "Client.Ibap.Proto"
            return _error(fault.status, "AdmConProtoError", code, fault.text), None
        if request.method in {"POST", "PUT"} and not isinstance(body, dict):
            return _proto("Request body must be a JSON object"), None
        return None, body

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        denied, body = await self._admit(request)
        if denied is not None:
            return denied
        if request.method == "GET":
            return self._search(request)
        if request.method == "POST":
            return self._create(body)
        return _error(
            400, "AdmConProtoError", "Client.Ibap.Proto", f"Method {request.method} not allowed here"
        )

    async def _object(self, request: web.Request) -> web.StreamResponse:
        denied, body = await self._admit(request)
        if denied is not None:
            return denied
        ref = f"zone_delegated/{request.match_info['rest']}"
        if ref not in self.objects:
            return _error(
                404, "AdmConDataNotFoundError", "Client.Ibap.Data.NotFound", f"Reference {ref} not found"
            )
        if request.method == "GET":
            return _json(_project(ref, self.objects[ref], request.query))
        if request.method == "PUT":
            return self._update(ref, body)
        if request.method == "DELETE":
            del self.objects[ref]
            return _json(ref)
        return _error(
            400, "AdmConProtoError", "Client.Ibap.Proto", f"Method {request.method} not allowed here"
        )

    def _search(self, request: web.Request) -> web.StreamResponse:
        filters: dict[str, str] = {}
        for key, value in request.query.items():
            if key.startswith("_"):
                if key not in {"_return_fields", "_return_fields+", "_return_as_object", "_max_results"}:
                    return _error(
                        400, "AdmConProtoError", "Client.Ibap.Proto", f"Unknown argument/field: '{key}'"
                    )
                continue
            if key not in _SEARCHABLE:
                return _proto(f"Field is not searchable: {key}")
            filters[key] = value
        problem = _check_fields(request.query)
        if problem is not None:
            return problem
        found = [
            _project(ref, obj, request.query)
            for ref, obj in sorted(self.objects.items())
            if all(
                str(obj.get(k, "default" if k == "view" else "")).lower() == v.lower()
                for k, v in filters.items()
            )
        ]
        if request.query.get("_return_as_object") == "1":
            return _json({"result": found})
        return _json(found)

    def _create(self, body: dict[str, Any]) -> web.StreamResponse:
        problem = _validate(body, creating=True, views=self.views)
        if problem is not None:
            return problem
        fqdn = str(body["fqdn"]).lower().rstrip(".")
        view = str(body.get("view", "default"))
        if not any(fqdn.endswith("." + zone) for zone in self.auth_zones):
            return _error(
                400,
                "AdmConDataError",
                "Client.Ibap.Data",
                f"The parent zone for '{fqdn}' is not an authoritative zone in view '{view}'",
            )
        ref = _ref(fqdn, view)
        if ref in self.objects:
            return _error(
                400,
                "AdmConDataError",
                "Client.Ibap.Data.Conflict",
                f"Duplicate object '{fqdn}' of type zone_delegated already exists in the database.",
            )
        self.objects[ref] = {"zone_format": "FORWARD", "use_ttl": False, **body, "fqdn": fqdn, "view": view}
        return _json(ref, status=201)

    def _update(self, ref: str, body: dict[str, Any]) -> web.StreamResponse:
        problem = _validate(body, creating=False, views=self.views)
        if problem is not None:
            return problem
        for immutable in ("fqdn", "view", "zone_format"):
            if immutable in body and str(body[immutable]) != str(self.objects[ref].get(immutable)):
                return _error(
                    400, "AdmConProtoError", "Client.Ibap.Proto", f"Field cannot be modified: {immutable}"
                )
        self.objects[ref].update(body)
        return _json(ref)


def _ref(fqdn: str, view: str) -> str:
    labels = ".".join(reversed(fqdn.lower().rstrip(".").split(".")))
    token = base64.b64encode(f"dns.zone_delegated$._{view}.{labels}".encode()).decode().rstrip("=")
    return f"zone_delegated/{token}:{fqdn.lower().rstrip('.')}/{view}"


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload, indent=4), content_type="application/json")


def _error(status: int, kind: str, code: str, text: str) -> web.Response:
    return _json({"Error": f"{kind}: {text}", "code": code, "text": text}, status=status)


def _field(obj: dict[str, Any], name: str) -> str:
    return str(obj.get(name, "default" if name == "view" else ""))


def _proto(text: str) -> web.Response:
    """WAPI's answer to a malformed request (unknown field, bad value, wrong method)."""
    return _error(400, "AdmConProtoError", "Client.Ibap.Proto", text)


def _check_fields(query: Any) -> web.Response | None:
    for key in ("_return_fields", "_return_fields+"):
        for name in filter(None, query.get(key, "").split(",")):
            if name not in _READABLE:
                return _error(
                    400, "AdmConProtoError", "Client.Ibap.Proto", f"Unknown argument/field: '{name}'"
                )
    return None


def _project(ref: str, obj: dict[str, Any], query: Any) -> dict[str, Any]:
    if "_return_fields" in query:
        names = [n for n in query["_return_fields"].split(",") if n]
    else:
        names = [*_DEFAULT_FIELDS, *[n for n in query.get("_return_fields+", "").split(",") if n]]
    defaults = {"view": "default", "zone_format": "FORWARD", "use_ttl": False, "comment": None, "ttl": None}
    return {"_ref": ref, **{n: obj.get(n, defaults.get(n)) for n in names}}


def _validate(body: dict[str, Any], *, creating: bool, views: tuple[str, ...]) -> web.Response | None:
    for key in body:
        if key not in _WRITABLE:
            return _proto(f"Unknown argument/field: '{key}'")
    if creating and not body.get("fqdn"):
        return _proto("Required field missing: fqdn")
    if "view" in body and body["view"] not in views:
        return _error(400, "AdmConDataError", "Client.Ibap.Data", f"View '{body['view']}' not found")
    if creating and not body.get("delegate_to") and not body.get("ns_group"):
        return _error(
            400, "AdmConDataError", "Client.Ibap.Data", "Either delegate_to or ns_group is required"
        )
    if "delegate_to" in body:
        entries = body["delegate_to"]
        if not isinstance(entries, list):
            return _error(
                400, "AdmConProtoError", "Client.Ibap.Proto", "Invalid value for delegate_to: must be a list"
            )
        for entry in entries:
            if not isinstance(entry, dict) or set(entry) - {"name", "address"} or not entry.get("name"):
                return _error(
                    400, "AdmConProtoError", "Client.Ibap.Proto", f"Invalid value for delegate_to: {entry!r}"
                )
            try:
                ipaddress.ip_address(entry.get("address", ""))
            except ValueError:
                return _error(
                    400,
                    "AdmConProtoError",
                    "Client.Ibap.Proto",
                    f"Invalid value for address: {entry.get('address')!r}",
                )
    if "ttl" in body and (not isinstance(body["ttl"], int) or body["ttl"] < 0):
        return _proto(f"Invalid value for ttl: {body['ttl']!r}")
    if "use_ttl" in body and not isinstance(body["use_ttl"], bool):
        return _error(
            400, "AdmConProtoError", "Client.Ibap.Proto", f"Invalid value for use_ttl: {body['use_ttl']!r}"
        )
    return None
