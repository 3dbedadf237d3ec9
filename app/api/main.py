"""Assemble the FastAPI app (style.md §A3.1): everything it needs is passed in by the composition root.

The API only reads and writes the store; the controller follows the store's change feed, so nothing
here calls the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from app.api import openapi_refine
from app.api.auth import Authorizer, TokenAuthorizer
from app.api.deps import authorize_request
from app.api.docs import mount_docs
from app.api.errors import install_error_handlers
from app.api.limits import BodyLimitMiddleware
from app.api.routes import api_router
from app.settings import Settings
from app.stores.base import GslbStore
from app.telemetry.http import instrument_app

TITLE = "pygslb"
API_DOC_VERSION = "0.1.0"
DESCRIPTION = (
    "k8gb's Gslb resource (`k8gb.io/v1beta1` and the legacy `k8gb.absa.oss/v1beta1`) at Kubernetes paths. "
    "Bodies in JSON or YAML; errors are Kubernetes `Status` objects. When a token is configured, writes "
    "need `Authorization: Bearer <token>`. A `traceparent` header on a write is recorded on the object "
    "and continued by its reconcile."
)


def operation_id(route: APIRoute) -> str:
    """Stable operation ids: the route's name (Kubernetes-style, e.g. `createK8gbIoV1beta1NamespacedGslb`)."""
    return route.name


def _refine_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # cached by generate(): refined in place once
            schemas = document["components"]["schemas"]
            openapi_refine.refine_schemas(schemas)
            openapi_refine.add_delete_options(schemas)
            openapi_refine.add_links(document["paths"])
            openapi_refine.unnull_query_parameters(document["paths"])
            openapi_refine.drop_unused_validation_errors(document)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    *,
    settings: Settings,
    store: GslbStore,
    ready: Callable[[], bool] | None = None,
    metrics_registry: CollectorRegistry | None = None,
    authorizer: Authorizer | None = None,
) -> FastAPI:
    """`authorizer` judges every Gslb operation; by default the static GSLB_API_TOKEN for writes."""
    app = FastAPI(
        title=TITLE,
        version=API_DOC_VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=operation_id,
        separate_input_output_schemas=False,
    )
    _refine_openapi(app)
    app.state.settings = settings
    app.state.store = store
    app.state.ready = ready or (lambda: True)
    app.state.metrics_registry = metrics_registry
    app.state.authorizer = authorizer or TokenAuthorizer(settings.api_token())
    install_error_handlers(app)
    app.include_router(api_router, dependencies=[Depends(authorize_request)])
    mount_docs(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.gslb_max_body_bytes)
    # Always, not only with TRACING_ENABLED: besides server spans (only when an SDK provider is set up) it
    # adds the `traceresponse` header to every response and, with tracing off, passes the caller's
    # `traceparent` through so a write still records it (architecture.md, trace continuity rules 1-2).
    instrument_app(app)
    return app
