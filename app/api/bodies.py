"""Request bodies: JSON or YAML in, one plain dict out; bad input is a 400/415 that says what is wrong.

Stricter than `json.loads`/`yaml.safe_load` where those silently lose data: duplicate keys are an error
(the last one would win unseen), YAML timestamps stay strings (as the Kubernetes YAML decoder keeps
them), and YAML aliases are refused (a few hundred bytes of aliases can expand to gigabytes).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import yaml
from fastapi import Request

from app.api.errors import ApiError, bad_request
from app.domain.manifests import StrictYamlLoader
from app.domain.status import failure

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
OBJECT_TYPES = frozenset({JSON, *YAML_TYPES})
PATCH_TYPES = frozenset({MERGE_PATCH, JSON})


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"duplicate field {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent: an int when whole (`1.0`, as the API server takes it)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return int(value) if value.is_integer() else value


# Far deeper than any Gslb (about 10 levels), and shallow enough for every parser and validator after.
MAX_DEPTH = 100


def _too_deep(document: Any) -> bool:
    """Whether objects and arrays nest more than MAX_DEPTH levels (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return True
            pending.extend(
                (child, depth + 1) for child in (value.values() if isinstance(value, dict) else value)
            )
    return False


def _lone_surrogate(document: Any) -> bool:
    """Whether a string holds a lone UTF-16 surrogate: `"\\ud800"` parses, but cannot be written back out."""
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def unsupported(media: str, accepted: frozenset[str]) -> ApiError:
    listed = ", ".join(sorted(accepted))
    return ApiError(
        failure(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format ({media or 'no Content-Type'}); "
            f"accepted media types include: {listed}",
        )
    )


def parse_document(raw: bytes, media: str) -> Any:
    """Decode JSON (any of the JSON media types) or YAML; 400 naming the problem otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the request body is not UTF-8: {exc}") from exc
    if not text.strip():
        raise bad_request("the request body is empty")
    too_deep = bad_request(f"the request body is nested too deeply (more than {MAX_DEPTH} levels)")
    try:
        if media in YAML_TYPES:
            loaded = yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
            if _too_deep(loaded):
                raise too_deep
            # As the API server converts YAML to JSON: keys become strings; sets, binary, NaN are refused.
            document = json.loads(json.dumps(loaded, allow_nan=False), parse_float=_number)
        else:
            document = json.loads(
                text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_float=_number
            )
            if _too_deep(document):
                raise too_deep
    except (ValueError, TypeError, yaml.YAMLError) as exc:
        kind = "YAML" if media in YAML_TYPES else "JSON"
        raise bad_request(f"the request body is not valid {kind}: {exc}") from exc
    except RecursionError as exc:
        raise too_deep from exc
    if _lone_surrogate(document):
        raise bad_request("the request body is not valid Unicode: it has a lone surrogate (\\ud800-\\udfff)")
    return document


async def read_object(request: Request, accepted: frozenset[str] = OBJECT_TYPES) -> dict[str, Any]:
    """The body as a JSON object; a missing Content-Type is taken as JSON."""
    media = media_type(request) or JSON
    if media not in accepted:
        raise unsupported(media, accepted)
    raw = await request.body()
    if media in YAML_TYPES:  # pure-Python PyYAML: a 1 MiB body is seconds of CPU, kept off the event loop
        document = await asyncio.to_thread(parse_document, raw, media)
    else:
        document = parse_document(raw, media)
    if not isinstance(document, dict):
        raise bad_request(f"the request body must be an object, not {type(document).__name__}")
    return document


async def read_optional_object(request: Request) -> dict[str, Any] | None:
    """For DELETE: an optional DeleteOptions body (Starlette caches the body, so it is read once)."""
    if not (await request.body()).strip():
        return None
    return await read_object(request)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
