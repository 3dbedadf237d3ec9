"""Labels and annotations are checked on every write as the API server checks them (ValidateObjectMeta)."""

from __future__ import annotations

from typing import Any

import pytest

from app.domain.gslb import GROUP, LEGACY_GROUP, Gslb
from tests.api.test_api_errors import assert_nothing_stored, assert_status
from tests.support.api_server import Api
from tests.support.gslb_factory import gslb_body

GROUPS = pytest.mark.parametrize("group", [GROUP, LEGACY_GROUP])
MERGE = {"Content-Type": "application/merge-patch+json"}
NAME_PART_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LIMIT = 256 * 1024


def collection(group: str) -> str:
    return f"/apis/{group}/v1beta1/namespaces/test-gslb/gslbs"


def with_meta(group: str = GROUP, **metadata: Any) -> dict[str, Any]:
    body = gslb_body("app", group=group)
    body["metadata"].update(metadata)
    return body


@GROUPS
@pytest.mark.parametrize(
    ("metadata", "field", "reason", "message"),
    [
        pytest.param(
            {"labels": {"a b": "x"}},
            "metadata.labels",
            "FieldValueInvalid",
            f'Invalid value: "a b": {NAME_PART_MESSAGE}',
            id="label-key",
        ),
        pytest.param(
            {"labels": {"app": "v" * 64}},
            "metadata.labels",
            "FieldValueInvalid",
            f'Invalid value: "{"v" * 64}": must be no more than 63 characters',
            id="label-value-64",
        ),
        pytest.param(
            {"labels": {"app": "-v"}},
            "metadata.labels",
            "FieldValueInvalid",
            'Invalid value: "-v": a valid label must be an empty string or consist of',
            id="label-value-chars",
        ),
        pytest.param(
            {"labels": {"Example.com/app": "v"}},
            "metadata.labels",
            "FieldValueInvalid",
            'Invalid value: "Example.com/app": prefix part a lowercase RFC 1123 subdomain',
            id="label-prefix-upper",
        ),
        pytest.param(
            {"labels": {"/app": "v"}},
            "metadata.labels",
            "FieldValueInvalid",
            'Invalid value: "/app": prefix part must be non-empty',
            id="label-prefix-empty",
        ),
        pytest.param(
            {"labels": {"a/b/c": "v"}},
            "metadata.labels",
            "FieldValueInvalid",
            'Invalid value: "a/b/c": a qualified name must consist of',
            id="label-two-slashes",
        ),
        pytest.param(
            {"annotations": {"bad key!": "x"}},
            "metadata.annotations",
            "FieldValueInvalid",
            f'Invalid value: "bad key!": {NAME_PART_MESSAGE}',
            id="annotation-key",
        ),
        pytest.param(
            {"annotations": {"k8gb.io/" + "n" * 64: "x"}},
            "metadata.annotations",
            "FieldValueInvalid",
            f'Invalid value: "k8gb.io/{"n" * 64}": name part must be no more than 63 characters',
            id="annotation-name-64",
        ),
        pytest.param(
            {"annotations": {"big": "x" * 900_000}},
            "metadata.annotations",
            "FieldValueTooLong",
            f"Too long: may not be more than {LIMIT} bytes",
            id="annotations-900kB",
        ),
        pytest.param(
            {"annotations": {"a": "x" * (LIMIT // 2), "b": "x" * (LIMIT // 2)}},
            "metadata.annotations",
            "FieldValueTooLong",
            "Too long",
            id="annotations-keys-count",
        ),
    ],
)
async def test_bad_labels_and_annotations_are_422_naming_the_field(
    api: Api, group: str, metadata: dict[str, Any], field: str, reason: str, message: str
) -> None:
    response = await api.client.post(collection(group), json=with_meta(group, **metadata))
    status = assert_status(response, 422, "Invalid")
    causes = status["details"]["causes"]
    assert [(c["field"], c["reason"]) for c in causes] == [(field, reason)]
    assert causes[0]["message"].startswith(message)
    assert status["message"].startswith(f'Gslb.{group} "app" is invalid: {field}: {message}')
    await assert_nothing_stored(api)


async def test_every_bad_key_and_value_is_a_cause(api: Api) -> None:
    body = with_meta(labels={"a b": "v" * 64, "ok": ""}, annotations={"bad key!": "x"})
    status = assert_status(await api.client.post(collection(GROUP), json=body), 422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [
        "metadata.labels",
        "metadata.labels",
        "metadata.annotations",
    ]


@GROUPS
async def test_put_and_patch_are_checked_and_keep_the_stored_object(api: Api, group: str) -> None:
    item = f"{collection(group)}/app"
    created = (await api.client.post(collection(group), json=with_meta(group))).json()

    bad_put = with_meta(group, labels={"a b": "x"})
    assert_status(await api.client.put(item, json=bad_put), 422, "Invalid")
    for patch in (
        {"metadata": {"labels": {"app": "v" * 64}}},
        {"metadata": {"annotations": {"bad key!": "x"}}},
        {"metadata": {"annotations": {"big": "x" * 900_000}}},
    ):
        response = await api.client.patch(item, json=patch, headers=MERGE)
        status = assert_status(response, 422, "Invalid")
        assert status["details"]["causes"][0]["field"].startswith("metadata.")
    assert (await api.client.get(item)).json() == created


@GROUPS
async def test_what_kubectl_and_k8gb_write_is_accepted(api: Api, group: str) -> None:
    labels = {
        "app.kubernetes.io/name": "podinfo",
        "empty": "",
        "k8gb.io/" + "n" * 63: "v" * 63,
        "a" * 63 + "." + "b" * 63 + "/x": "My_value-1.2",
    }
    annotations = {
        "k8gb.io/traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
        "Example.COM/Upper": "annotation keys are checked in lower case",
    }
    body = with_meta(group, labels=labels, annotations=annotations)
    response = await api.client.post(collection(group), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["labels"] == labels

    item = f"{collection(group)}/app"
    response = await api.client.patch(item, json={"metadata": {"labels": {"empty": "now"}}}, headers=MERGE)
    assert response.status_code == 200, response.text


async def test_annotations_of_exactly_256_kib_are_accepted(api: Api) -> None:
    # A caller with a trace context: the server records it (traceparent + generation marker), tracing on
    # or off, and those count too.
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    recorded = len("k8gb.io/traceparent") + len(caller) + len("k8gb.io/traceparent-generation") + len("1")
    room = LIMIT - recorded - len("filler")
    for name, size, code in (("app", room, 201), ("over", room + 1, 422)):
        body = with_meta(annotations={"filler": "x" * size})
        body["metadata"]["name"] = name
        response = await api.client.post(collection(GROUP), json=body, headers={"traceparent": caller})
        assert response.status_code == code, (name, response.status_code)


async def test_the_stored_object_with_its_trace_annotations_is_checked(api: Api) -> None:
    """The generation marker this server adds must fit too, or the object could never be patched again."""
    annotations = {"k8gb.io/traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    used = sum(len(k) + len(v) for k, v in annotations.items())
    annotations["filler"] = "x" * (LIMIT - used - len("filler"))
    status = assert_status(
        await api.client.post(collection(GROUP), json=with_meta(annotations=annotations)), 422, "Invalid"
    )
    assert [c["reason"] for c in status["details"]["causes"]] == ["FieldValueTooLong"]
    await assert_nothing_stored(api)


async def test_an_object_stored_before_the_checks_stays_readable_and_fixable(api: Api) -> None:
    """The checks are on the write path, not in the model the stores read with."""
    stored = Gslb.model_validate(with_meta(labels={"a b": "x", "ok": "1"}))
    await api.store.create(stored)
    item = f"{collection(GROUP)}/app"

    assert (await api.client.get(item)).json()["metadata"]["labels"]["a b"] == "x"
    listed = (await api.client.get(collection(GROUP))).json()
    assert [g["metadata"]["name"] for g in listed["items"]] == ["app"]

    spec_only = {"spec": {"strategy": {"type": "roundRobin", "dnsTtlSeconds": 9}}}
    assert_status(await api.client.patch(item, json=spec_only, headers=MERGE), 422, "Invalid")
    fixed = await api.client.patch(item, json={"metadata": {"labels": {"a b": None}}}, headers=MERGE)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["metadata"]["labels"] == {"ok": "1"}
