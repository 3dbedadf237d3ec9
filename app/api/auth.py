"""Who may do what through the REST API: an `Authorizer` judges each Gslb request, the API words the verdict.

The composition root picks the authorizer: `TokenAuthorizer` in embedded mode (one static token for
writes, reads open) or the Kubernetes one in kubernetes mode (app/stores/kube/auth.py: TokenReview,
then SubjectAccessReview, as the API server itself checks a request). Verbs are Kubernetes verbs
(get, list, create, update, patch, delete); the resource is `gslbs` or `gslbs/status`.
A verdict with no user means "not authenticated" (401); a user who is refused gets 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from app.api.errors import ApiError
from app.domain.gslb import PLURAL
from app.domain.status import StatusDetails, failure

READ_VERBS = frozenset({"get", "list", "watch"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pygslb"'}


class Decision(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def user(self) -> str | None:
        """The authenticated user; None when the request is not authenticated."""
        ...

    @property
    def reason(self) -> str: ...


class Authorizer(Protocol):
    async def authorize(
        self,
        token: str | None,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> Decision:
        """Judge one request; may raise `stores.base.Unavailable` when it cannot tell right now (503)."""
        ...


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    user: str | None
    reason: str = ""


class TokenAuthorizer:
    """Embedded mode: with a token set, writes need exactly it (constant-time compare); reads are open."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    async def authorize(
        self,
        token: str | None,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> Verdict:
        if self._token is None or verb in READ_VERBS:
            return Verdict(True, "system:anonymous")
        if not token:
            return Verdict(False, None, "missing bearer token for a write")
        if not hmac.compare_digest(token.encode(), self._token):
            return Verdict(False, None, "a valid bearer token is required for writes")
        return Verdict(True, "token")


def bearer_token(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer <token>` header; None for any other header."""
    scheme, _, credentials = (authorization or "").partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


def refusal(
    decision: Decision, verb: str, group: str, resource: str, namespace: str | None, name: str | None
) -> ApiError:
    """401 for an unauthenticated request, else 403 worded as the Kubernetes API server words it."""
    if decision.user is None:
        return ApiError(failure(401, "Unauthorized", decision.reason or "Unauthorized"), CHALLENGE)
    target = f"{PLURAL}.{group}" + (f' "{name}"' if name else "")
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{target} is forbidden: User "{decision.user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    if decision.reason:
        message += f": {decision.reason}"
    return ApiError(failure(403, "Forbidden", message, StatusDetails(name=name, group=group, kind=PLURAL)))
