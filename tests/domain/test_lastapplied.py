"""kubectl's client-side apply: the last-applied record as kubectl encodes it, and the three-way merge
patch (CreateThreeWayJSONMergePatch) that keeps what other writers set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.domain.lastapplied import (
    LAST_APPLIED,
    encode,
    modified_configuration,
    original_configuration,
    three_way_merge_patch,
)


def test_the_record_is_encoded_as_kubectl_encodes_it() -> None:
    # Go's encoding/json: compact, keys sorted, <, >, & and the line separators escaped, UTF-8 kept.
    assert encode({"b": 1, "a": {"z": "<&> ü\u2028", "y": [True, None]}}) == (
        '{"a":{"y":[true,null],"z":"\\u003c\\u0026\\u003e ü\\u2028"},"b":1}\n'
    )


def test_the_modified_configuration_records_the_manifest_without_any_record_of_its_own() -> None:
    manifest = {"kind": "Gslb", "metadata": {"name": "x", "annotations": {LAST_APPLIED: "old"}}}
    modified = modified_configuration(manifest)
    assert modified["metadata"]["annotations"] == {
        LAST_APPLIED: '{"kind":"Gslb","metadata":{"annotations":{},"name":"x"}}\n'
    }
    assert manifest["metadata"]["annotations"] == {LAST_APPLIED: "old"}  # the manifest is left as it was
    bare = modified_configuration({"kind": "Gslb", "metadata": {"name": "x", "annotations": {"a": "1"}}})
    assert json.loads(bare["metadata"]["annotations"][LAST_APPLIED])["metadata"]["annotations"] == {"a": "1"}


def test_the_original_configuration_is_the_live_objects_record() -> None:
    assert original_configuration({"metadata": {}}) is None
    assert original_configuration({"metadata": {"annotations": {LAST_APPLIED: '{"a":1}\n'}}}) == {"a": 1}
    for broken in ("{", "[1]"):
        with pytest.raises(ValueError, match=LAST_APPLIED):
            original_configuration({"metadata": {"annotations": {LAST_APPLIED: broken}}})


# (original, modified, current, patch): kubectl's semantics for custom resources.
CASES: dict[str, tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "nothing to do": ({"a": 1}, {"a": 1}, {"a": 1, "status": {"s": 1}}, {}),
    "a field the manifest changes": ({"a": 1}, {"a": 2}, {"a": 1}, {"a": 2}),
    "a field another writer changed is set back": ({"a": 1}, {"a": 1}, {"a": 3}, {"a": 1}),
    "a field dropped from the manifest is deleted": (
        {"a": 1, "b": 2},
        {"a": 1},
        {"a": 1, "b": 2},
        {"b": None},
    ),
    "a field nobody applied stays": (
        {"m": {"l": {"x": "1"}}},
        {"m": {"l": {"x": "1"}}},
        {"m": {"l": {"x": "1", "tier": "web"}, "rv": "7"}},
        {},
    ),
    "deleted in a map, set beside it": (
        {"m": {"a": "1", "b": "2"}},
        {"m": {"a": "1", "c": "3"}},
        {"m": {"a": "1", "b": "2", "other": "o"}},
        {"m": {"b": None, "c": "3"}},
    ),
    "no record yet: only additions and changes": (None, {"a": 1}, {"a": 2, "b": 2}, {"a": 1}),
    "lists are replaced whole": ({"l": [1, 2]}, {"l": [1]}, {"l": [1, 2]}, {"l": [1]}),
    "an explicitly empty map is a value": (None, {"m": {}}, {}, {"m": {}}),
    "emptied in the manifest": ({"m": {"a": 1}}, {"m": {}}, {"m": {"a": 1, "b": 2}}, {"m": {"a": None}}),
    "a whole map dropped": ({"m": {"a": 1}}, {}, {"m": {"a": 1, "b": 2}}, {"m": None}),
    "a scalar becomes a map": ({"a": 1}, {"a": {"b": 1}}, {"a": 1}, {"a": {"b": 1}}),
}


@pytest.mark.parametrize(("original", "modified", "current", "expected"), CASES.values(), ids=CASES.keys())
def test_three_way_merge_patch(
    original: Any, modified: dict[str, Any], current: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert three_way_merge_patch(original, modified, current) == expected
