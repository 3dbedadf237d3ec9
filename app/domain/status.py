"""Kubernetes `Status` (meta/v1): the one shape every API error takes, so kubectl-style clients understand it.

Also turns pydantic's error list into `details.causes` with Kubernetes field paths
(`spec.ingress.rules[0].http.paths[0].pathType`), so a 422 names the offending field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StatusCause(_Model):
    reason: str | None = Field(default=None, description="FieldValueInvalid, FieldValueRequired, ...")
    message: str = ""
    field: str | None = Field(default=None, description="path of the field, e.g. spec.strategy.type")


class StatusDetails(_Model):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retry_after_seconds: int | None = None


class Status(_Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Status"] = "Status"
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["Success", "Failure"] = "Failure"
    message: str = ""
    reason: str = ""
    details: StatusDetails | None = None
    code: int = 500

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def failure(code: int, reason: str, message: str, details: StatusDetails | None = None) -> Status:
    return Status(code=code, reason=reason, message=message, details=details)


# pydantic error types → Kubernetes field error reasons (k8s.io/apimachinery field.ErrorType names)
_CAUSE_REASONS = {
    "missing": "FieldValueRequired",
    "literal_error": "FieldValueNotSupported",
    "enum": "FieldValueNotSupported",
    "string_too_long": "FieldValueTooLong",
    "too_long": "FieldValueTooMany",
}


def field_path(loc: Sequence[int | str]) -> str:
    """('spec', 'rules', 0, 'host') → 'spec.rules[0].host'."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def causes_from_errors(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[int | str] = ()
) -> list[StatusCause]:
    """One cause per pydantic error (the dicts of `ValidationError.errors()`), field named by its path."""
    causes = []
    for error in errors:
        field = field_path([*prefix, *error.get("loc", ())])
        kind = str(error.get("type", ""))
        reason = _CAUSE_REASONS.get(kind, "FieldValueInvalid")
        causes.append(StatusCause(reason=reason, message=_message(error), field=field))
    return causes


def invalid(kind: str, group: str, name: str, causes: list[StatusCause]) -> Status:
    """422 as the API server words it: `Gslb.k8gb.io "x" is invalid: spec.strategy.type: ...`."""
    summary = ", ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return failure(
        422,
        "Invalid",
        f'{kind}.{group} "{name}" is invalid: {summary}',
        StatusDetails(name=name or None, group=group, kind=kind, causes=causes),
    )
