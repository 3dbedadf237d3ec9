"""The Gslb resource at Kubernetes paths, once per API group (k8gb.io and legacy k8gb.absa.oss).

Concrete paths per group (no `{group}` parameter) so the OpenAPI document is exact, with operation ids
named as the Kubernetes API server names them (`createK8gbIoV1beta1NamespacedGslb`). Bodies are read
by hand (JSON or YAML), so the OpenAPI request bodies are declared explicitly.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse

from app.api import gslb_ops
from app.api.bodies import JSON, MERGE_PATCH, OBJECT_TYPES, PATCH_TYPES, read_object, read_optional_object
from app.api.deps import StoreDep, WriterDep
from app.api.errors import ApiError, bad_request, store_errors
from app.api.gslb_ops import GENERATE_NAME_MAX_LENGTH, GENERATE_NAME_PATTERN
from app.domain.gslb import KIND, NAME_RE, NAMESPACE_RE, PLURAL, VERSION, Gslb, GslbList
from app.domain.selectors import (
    FIELD_SELECTOR_PATTERN,
    LABEL_SELECTOR_PATTERN,
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from app.domain.status import Status, failure
from app.stores.base import ObjectKey

_DESCRIPTIONS = {
    400: "Bad request: unparsable body, or apiVersion/kind/namespace/name disagreeing with the URL",
    401: "Unauthorized: a bearer token is required for writes",
    404: "Not found",
    409: "Conflict: already exists, or a stale resourceVersion",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid: `details.causes[].field` names each invalid field",
    503: "The store cannot serve the request now",
}


def _errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """Status responses for `codes`, described as a write's unless `described` (`e400=...`) says otherwise."""
    descriptions = {code: described.get(f"e{code}", _DESCRIPTIONS[code]) for code in codes}
    return {code: {"model": Status, "description": text} for code, text in descriptions.items()}


_BAD_SELECTOR = "Bad request: unparsable labelSelector or fieldSelector"


def _body(media_types: frozenset[str] | tuple[str, ...], schema: dict[str, Any]) -> dict[str, Any]:
    content = {media: {"schema": schema} for media in sorted(media_types)}
    return {"requestBody": {"required": True, "content": content}}


# Writes are open when no token is configured: the bearer token is documented as optional ({}).
_OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}

# The W3C Trace Context specification's own example, so "Try it out" shows (and sends) the format.
TRACEPARENT_EXAMPLE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
_ANY_VALUE = " Optional; a malformed value starts a new trace and never fails the request."
_RECORDED = (
    "W3C Trace Context of the caller (`00-<trace-id>-<parent-id>-<flags>`): recorded on the Gslb "
    "(annotation `k8gb.io/traceparent`), and the reconcile this write causes joins that trace. The "
    "`traceresponse` response header names the trace the request joined."
)
_STATUS_ONLY = (
    "W3C Trace Context of the caller (`00-<trace-id>-<parent-id>-<flags>`): the request joins that trace "
    "(the `traceresponse` response header names it). A status write does not record it on the Gslb, so "
    "no reconcile joins it."
)


def _trace_headers(traceparent: str, tracestate: str) -> dict[str, Any]:
    """Optional `traceparent`/`tracestate` header parameters: any string, as the server takes any value.

    The example is in the description, not an `example` Swagger UI would fill in: every "Try it out"
    would send the same made-up trace, and all of its users' writes would land in one trace.
    """
    headers = [
        ("traceparent", traceparent, TRACEPARENT_EXAMPLE),
        ("tracestate", tracestate, "congo=t61rcWkgMzE"),
    ]
    return {
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": f"{description}{_ANY_VALUE} For example `{example}`.",
                "schema": {"type": "string"},
            }
            for name, description, example in headers
        ]
    }


_TRACESTATE = "W3C vendor trace state that goes with `traceparent`"
_WRITE_TRACE = _trace_headers(_RECORDED, f"{_TRACESTATE}; recorded with it (`k8gb.io/tracestate`).")
_STATUS_TRACE = _trace_headers(_STATUS_ONLY, f"{_TRACESTATE}.")


def _write(body: dict[str, Any], trace: dict[str, Any] = _WRITE_TRACE) -> dict[str, Any]:
    """A write operation's OpenAPI extras: its request body, optional auth and the trace headers."""
    return {**body, **_OPTIONAL_AUTH, **trace}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_IGNORED = {"description": "ignored"}


def _object_body(group: str, operation: Literal["create", "replace", "status"]) -> dict[str, Any]:
    """The Gslb a write takes: apiVersion of this group; what the write ignores is documented as such."""
    properties: dict[str, Any] = {
        "apiVersion": {"const": f"{group}/{VERSION}", "default": f"{group}/{VERSION}"},
        "kind": {"const": KIND, "default": KIND},
        "metadata": _ref("ObjectMeta"),
        "spec": _IGNORED if operation == "status" else _ref("GslbSpec"),
        "status": _ref("GslbStatus") if operation == "status" else _IGNORED,
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties, "title": f"{KIND} ({operation})"}
    if operation != "status":
        schema["required"] = ["spec"]
    if operation == "create":
        schema["required"].append("metadata")
        named = {
            "anyOf": [
                {"required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}},
                {
                    "required": ["generateName"],
                    "properties": {
                        "generateName": {
                            "type": "string",
                            "pattern": GENERATE_NAME_PATTERN,
                            "maxLength": GENERATE_NAME_MAX_LENGTH,
                        }
                    },
                },
            ]
        }
        properties["metadata"] = {"allOf": [_ref("ObjectMeta"), named]}
    body = _body(OBJECT_TYPES, schema)
    body["requestBody"]["description"] = (
        "metadata.namespace (and metadata.name on replace) default to the URL's and must match it"
    )
    # What Swagger UI's "Try it out" fills in: a body that works as it is (else it generates one from the
    # schema, whose made-up namespace, uid and resourceVersion a write refuses).
    if operation == "status":
        example = _status_example(group)
    else:
        example = _example(group, named=operation == "create")
    for media in body["requestBody"]["content"].values():
        media["example"] = example
    return _write(body, _STATUS_TRACE if operation == "status" else _WRITE_TRACE)


def _example(group: str, *, named: bool) -> dict[str, Any]:
    """k8gb's round-robin example; namespace (and, on replace, name) left to the URL."""
    backend = {"service": {"name": "frontend-podinfo", "port": {"name": "http"}}}
    rule = {
        "host": "roundrobin.cloud.example.com",
        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
    }
    return {
        "apiVersion": f"{group}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": "roundrobin"} if named else {},
        "spec": {"ingress": {"rules": [rule]}, "strategy": {"type": "roundRobin", "dnsTtlSeconds": 30}},
    }


def _status_example(group: str) -> dict[str, Any]:
    """A status as the controller writes it for the round-robin example; no resourceVersion (so no
    precondition) and namespace and name left to the URL, so it succeeds on any existing Gslb."""
    host = "roundrobin.cloud.example.com"
    status = {
        "serviceHealth": {host: "Healthy"},
        "healthyRecords": {host: ["172.18.0.5", "172.18.0.6"]},
        "geoTag": "eu",
        "hosts": host,
    }
    return {"apiVersion": f"{group}/{VERSION}", "kind": KIND, "metadata": {}, "status": status}


# A label and a TTL change: a patch that visibly changes the Gslb (an empty one would be a silent no-op).
PATCH_EXAMPLE = {"metadata": {"labels": {"team": "web"}}, "spec": {"strategy": {"dnsTtlSeconds": 60}}}


def _patch_body() -> dict[str, Any]:
    body = _body(
        PATCH_TYPES,
        {
            "type": "object",
            "description": f"RFC 7386 merge patch of a Gslb ({MERGE_PATCH}); null deletes a field",
            "additionalProperties": True,
        },
    )
    for media in body["requestBody"]["content"].values():
        media["example"] = PATCH_EXAMPLE
    return _write(body)


_READ_ERRORS = _errors(404, 422, 503)

# DeleteOptions, as `kubectl delete` sends them; optional (an empty body deletes unconditionally).
_DELETE_BODY = {
    "requestBody": {
        "required": False,
        "description": "DeleteOptions: `preconditions` make the delete conditional; `dryRun` and "
        "`propagationPolicy` as the query's (the body's propagationPolicy wins)",
        "content": {
            JSON: {"schema": _ref("DeleteOptions"), "example": {"propagationPolicy": "Background"}},
        },
    }
}

# Path parameters validated as Kubernetes validates names (422 naming `path.name` otherwise).
Namespace = Annotated[str, Path(pattern=NAMESPACE_RE.pattern, max_length=63, description="RFC 1123 label")]
Name = Annotated[str, Path(pattern=NAME_RE.pattern, max_length=253, description="RFC 1123 subdomain")]


_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # what Go's strconv.ParseBool takes as true


def _no_watch(request: Request) -> None:
    """A list asked to watch (`kubectl get -w`, an informer) is refused, not answered with a plain list
    the client would take for the start of a stream: this API lists, and clients poll."""
    if request.query_params.get("watch", "") in _GO_TRUE:
        message = (
            "the server does not allow this method on the requested resource: watch is not served; "
            "list and poll"
        )
        raise ApiError(failure(405, "MethodNotAllowed", message))


def _selectors(label_selector: str, field_selector: str) -> tuple[LabelSelector, FieldSelector]:
    try:
        return parse_label_selector(label_selector), parse_field_selector(field_selector)
    except SelectorError as exc:
        raise bad_request(str(exc)) from exc


LabelSelectorQuery = Annotated[
    str,
    Query(
        alias="labelSelector",
        description="only Gslbs whose labels match, as kubectl -l takes it: `a=b,c!=d,e in (f,g),!h`",
        json_schema_extra={"pattern": LABEL_SELECTOR_PATTERN},  # checked by the parser: a 400, as k8s
    ),
]
FieldSelectorQuery = Annotated[
    str,
    Query(
        alias="fieldSelector",
        description="`metadata.name` or `metadata.namespace` with =, == or !=",
        json_schema_extra={"pattern": FIELD_SELECTOR_PATTERN},
    ),
]
DryRunQuery = Annotated[
    tuple[str, ...],
    Query(
        alias="dryRun",
        description="`All`: check everything and answer as the write would, without storing anything "
        "(kubectl --dry-run=server); any other value is a 400",
        json_schema_extra={"items": {"type": "string", "enum": ["All"]}},
    ),
]
PropagationQuery = Annotated[
    str | None,
    Query(
        alias="propagationPolicy",
        description="what happens to the objects the Gslb owns (kubernetes mode: its Ingress and "
        "DNSEndpoint); DeleteOptions in the body may say it too",
        json_schema_extra={"enum": list(gslb_ops.PROPAGATION_POLICIES)},
    ),
]
_WRITE_ERRORS = _errors(400, 401, 404, 409, 413, 415, 422, 503)


def operation_stem(group: str) -> str:
    """`k8gb.absa.oss` → `K8gbAbsaOssV1beta1`, as in Kubernetes operation ids."""
    return "".join(part.capitalize() for part in group.split(".")) + VERSION.capitalize()


def _object(gslb: Gslb, code: int = status.HTTP_200_OK) -> JSONResponse:
    return JSONResponse(gslb.wire(), status_code=code)


def gslb_router(group: str) -> APIRouter:
    """All Gslb routes of one API group."""
    prefix = f"/apis/{group}/{VERSION}"
    router = APIRouter(prefix=prefix, tags=[group])
    ids = operation_stem(group)
    item = f"/namespaces/{{namespace}}/{PLURAL}/{{name}}"

    def list_response(
        items: list[Gslb], resource_version: str, selectors: tuple[LabelSelector, FieldSelector]
    ) -> JSONResponse:
        labels, fields = selectors
        wires = (g.wire() for g in items)
        return JSONResponse(
            {
                "apiVersion": f"{group}/{VERSION}",
                "kind": "GslbList",
                "metadata": {"resourceVersion": resource_version},
                "items": [
                    w
                    for w in wires
                    if labels.matches(w["metadata"].get("labels")) and fields.matches(w["metadata"])
                ],
            }
        )

    @router.get(
        f"/{PLURAL}",
        name=f"list{ids}GslbForAllNamespaces",
        summary="List Gslbs in all namespaces",
        response_model=GslbList,
        responses=_errors(400, 503, e400=_BAD_SELECTOR),
    )
    async def list_all(
        request: Request,
        store: StoreDep,
        label_selector: LabelSelectorQuery = "",
        field_selector: FieldSelectorQuery = "",
    ) -> JSONResponse:
        """List Gslbs of every namespace, sorted by namespace and name."""
        _no_watch(request)
        selectors = _selectors(label_selector, field_selector)
        with store_errors(group, ""):
            listed = await store.list(group)
        return list_response(*listed, selectors)

    @router.get(
        f"/namespaces/{{namespace}}/{PLURAL}",
        name=f"list{ids}NamespacedGslb",
        summary="List Gslbs",
        response_model=GslbList,
        responses=_errors(400, 422, 503, e400=_BAD_SELECTOR),
    )
    async def list_namespaced(
        namespace: Namespace,
        request: Request,
        store: StoreDep,
        label_selector: LabelSelectorQuery = "",
        field_selector: FieldSelectorQuery = "",
    ) -> JSONResponse:
        """List the Gslbs of one namespace, sorted by name."""
        _no_watch(request)
        selectors = _selectors(label_selector, field_selector)
        with store_errors(group, ""):
            listed = await store.list(group, namespace)
        return list_response(*listed, selectors)

    @router.post(
        f"/namespaces/{{namespace}}/{PLURAL}",
        name=f"create{ids}NamespacedGslb",
        summary="Create a Gslb",
        status_code=status.HTTP_201_CREATED,
        response_model=Gslb,
        responses=_errors(400, 401, 409, 413, 415, 422, 503),
        openapi_extra=_object_body(group, "create"),
    )
    async def create(
        namespace: Namespace, request: Request, store: StoreDep, _auth: WriterDep, dry_run: DryRunQuery = ()
    ) -> JSONResponse:
        """Create a Gslb (JSON or YAML); `status` is ignored and dnsTtlSeconds defaults to 30."""
        dry = gslb_ops.dry_run_of(list(dry_run))
        body = await read_object(request)
        created = await gslb_ops.create_gslb(
            store=store, group=group, namespace=namespace, body=body, headers=request.headers, dry_run=dry
        )
        return _object(created, status.HTTP_201_CREATED)

    @router.get(
        item,
        name=f"read{ids}NamespacedGslb",
        summary="Read a Gslb",
        response_model=Gslb,
        responses=_READ_ERRORS,
    )
    async def read(namespace: Namespace, name: Name, store: StoreDep) -> JSONResponse:
        """Read one Gslb."""
        with store_errors(group, name):
            return _object(await store.get(ObjectKey(group, namespace, name)))

    @router.put(
        item,
        name=f"replace{ids}NamespacedGslb",
        summary="Replace a Gslb",
        response_model=Gslb,
        responses=_WRITE_ERRORS,
        openapi_extra=_object_body(group, "replace"),
    )
    async def replace(
        namespace: Namespace,
        name: Name,
        request: Request,
        store: StoreDep,
        _auth: WriterDep,
        dry_run: DryRunQuery = (),
    ) -> JSONResponse:
        """Replace metadata and spec; with `metadata.resourceVersion` 409 when stale, else last write wins."""
        dry = gslb_ops.dry_run_of(list(dry_run))
        body = await read_object(request)
        replaced = await gslb_ops.replace_gslb(
            store=store,
            group=group,
            namespace=namespace,
            name=name,
            body=body,
            headers=request.headers,
            dry_run=dry,
        )
        return _object(replaced)

    @router.patch(
        item,
        name=f"patch{ids}NamespacedGslb",
        summary="Patch a Gslb",
        response_model=Gslb,
        responses=_WRITE_ERRORS,
        openapi_extra=_patch_body(),
    )
    async def patch(
        namespace: Namespace,
        name: Name,
        request: Request,
        store: StoreDep,
        _auth: WriterDep,
        dry_run: DryRunQuery = (),
    ) -> JSONResponse:
        """Merge-patch a Gslb (RFC 7386; `application/merge-patch+json` or `application/json`)."""
        dry = gslb_ops.dry_run_of(list(dry_run))
        document = await read_object(request, PATCH_TYPES)
        patched = await gslb_ops.patch_gslb(
            store=store,
            group=group,
            namespace=namespace,
            name=name,
            patch=document,
            headers=request.headers,
            dry_run=dry,
        )
        return _object(patched)

    @router.delete(
        item,
        openapi_extra=_write(_DELETE_BODY),
        name=f"delete{ids}NamespacedGslb",
        summary="Delete a Gslb",
        response_model=Gslb,
        responses=_WRITE_ERRORS,
    )
    async def delete(
        namespace: Namespace,
        name: Name,
        request: Request,
        store: StoreDep,
        _auth: WriterDep,
        dry_run: DryRunQuery = (),
        propagation_policy: PropagationQuery = None,
    ) -> JSONResponse:
        """Delete a Gslb and return it. An optional DeleteOptions body may carry `preconditions`,
        `dryRun` and `propagationPolicy`."""
        dry = gslb_ops.dry_run_of(list(dry_run))
        propagation = gslb_ops.propagation_of(propagation_policy)  # an empty one is a 400, as k8s
        options = await read_optional_object(request)
        deleted = await gslb_ops.delete_gslb(
            store=store,
            group=group,
            namespace=namespace,
            name=name,
            options=options,
            headers=request.headers,
            dry_run=dry,
            propagation=propagation,
        )
        return _object(deleted)

    @router.get(
        f"{item}/status",
        name=f"read{ids}NamespacedGslbStatus",
        summary="Read a Gslb's status",
        response_model=Gslb,
        responses=_READ_ERRORS,
    )
    async def read_status(namespace: Namespace, name: Name, store: StoreDep) -> JSONResponse:
        """Read a Gslb through its status subresource."""
        return await read(namespace, name, store)

    @router.put(
        f"{item}/status",
        name=f"replace{ids}NamespacedGslbStatus",
        summary="Replace a Gslb's status",
        response_model=Gslb,
        responses=_WRITE_ERRORS,
        openapi_extra=_object_body(group, "status"),
    )
    async def replace_status(
        namespace: Namespace,
        name: Name,
        request: Request,
        store: StoreDep,
        _auth: WriterDep,
        dry_run: DryRunQuery = (),
    ) -> JSONResponse:
        """Replace only the status (the rest of the body is ignored); resourceVersion is a precondition."""
        dry = gslb_ops.dry_run_of(list(dry_run))
        body = await read_object(request)
        updated = await gslb_ops.replace_status(
            store=store, group=group, namespace=namespace, name=name, body=body, dry_run=dry
        )
        return _object(updated)

    return router
