"""kubectl's client-side apply for custom resources: the last-applied record and the three-way patch.

`kubectl apply` records what it applied in the `kubectl.kubernetes.io/last-applied-configuration`
annotation and updates an object with a JSON merge patch (RFC 7386) computed from three documents: that
record (what was applied before), the manifest (what is applied now) and the live object. Fields the
record has and the manifest has not are deleted; fields of the manifest are set; fields neither names
(labels another tool added, status, server-managed metadata, recorded trace annotations) are kept. The
record is encoded as kubectl encodes it, so `kubectl apply` and `gslb apply` share one history.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, cast

import json_merge_patch

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

#: What Go's encoding/json escapes in strings beyond JSON's own rules (kubectl encodes with it).
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def encode(document: Any) -> str:
    """JSON as kubectl writes the annotation: compact, keys sorted, HTML characters escaped, a newline."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():  # each can only occur inside a string
        text = text.replace(char, escaped)
    return text + "\n"


def modified_configuration(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with its own last-applied record, as kubectl's GetModifiedConfiguration builds it:
    the record is the manifest without any record of its own (its annotations `{}` when it has none)."""
    modified = copy.deepcopy(dict(manifest))
    metadata = modified.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    metadata["annotations"] = annotations
    record = encode(modified)
    metadata["annotations"] = {**annotations, LAST_APPLIED: record}
    return modified


def original_configuration(current: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last-applied record of a live object; None when it has none. ValueError when it is not a
    JSON object (kubectl refuses to patch from such a record too)."""
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    record = annotations.get(LAST_APPLIED)
    if not record:
        return None
    try:
        original = json.loads(record)
    except ValueError as exc:
        raise ValueError(f"its {LAST_APPLIED} annotation is not JSON: {exc}") from None
    if not isinstance(original, dict):
        raise ValueError(f"its {LAST_APPLIED} annotation is not a JSON object")
    return cast(dict[str, Any], original)


def _only(patch: Mapping[str, Any], *, deletions: bool) -> dict[str, Any]:
    """The deletions (nulls) of a merge patch, or everything else (kubectl's keepOrDeleteNullInObj). An
    explicitly empty object is a value, never an empty sub-patch."""
    kept: dict[str, Any] = {}
    for key, value in patch.items():
        if value is None:
            if deletions:
                kept[key] = None
        elif isinstance(value, dict) and value:
            sub = _only(value, deletions=deletions)
            if sub:
                kept[key] = sub
        elif not deletions:
            kept[key] = value
    return kept


def three_way_merge_patch(
    original: Mapping[str, Any] | None, modified: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, Any]:
    """kubectl's CreateThreeWayJSONMergePatch: additions and changes from the live object to the
    manifest, deletions from the last-applied record to the manifest. `{}` when there is nothing to do.

    The two parts never conflict: a deletion is of a field the manifest lacks, a change of one it has."""
    additions = _only(json_merge_patch.create_patch(dict(current), dict(modified)), deletions=False)
    deletions = _only(json_merge_patch.create_patch(dict(original or {}), dict(modified)), deletions=True)
    return cast(dict[str, Any], json_merge_patch.merge(deletions, additions))
