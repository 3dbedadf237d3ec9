"""Our own writes' watch events must not reconcile again, even when the event beats the write's reply."""

from __future__ import annotations

from typing import Any

import pytest

from app.stores.kube.ownwrites import OwnWrites


def ingress(version: str) -> dict[str, Any]:
    return {"kind": "Ingress", "metadata": {"namespace": "ns", "name": "app", "resourceVersion": version}}


def test_an_event_that_arrives_before_the_reply_is_recognised_once_the_reply_is_in() -> None:
    own, foreign = OwnWrites(), []
    with own.writing("Ingress", "ns", "app"):
        own.check(ingress("7"), lambda: foreign.append("7"))  # the watch was faster than the POST reply
        assert foreign == []  # undecided yet
        own.record(ingress("7"))
    assert foreign == []


def test_someone_elses_change_during_our_write_still_counts() -> None:
    own, foreign = OwnWrites(), []
    with own.writing("Ingress", "ns", "app"):
        own.check(ingress("6"), lambda: foreign.append("6"))  # an ingress controller's status write
        own.record(ingress("7"))
    assert foreign == ["6"]
    own.check(ingress("7"), lambda: foreign.append("7"))  # our own event, arriving after the reply
    assert foreign == ["6"]


def test_a_failed_write_releases_the_events_it_held() -> None:
    own, foreign = OwnWrites(), []
    with pytest.raises(RuntimeError), own.writing("Ingress", "ns", "app"):
        own.check(ingress("9"), lambda: foreign.append("9"))
        raise RuntimeError("409 Conflict")
    assert foreign == ["9"]


def test_without_a_write_in_flight_an_unknown_version_is_foreign_at_once() -> None:
    own, foreign = OwnWrites(), []
    own.check(ingress("3"), lambda: foreign.append("3"))
    assert foreign == ["3"]
    own.record(ingress("4"))
    own.check(ingress("4"), lambda: foreign.append("4"))
    own.check(ingress("4"), lambda: foreign.append("4 again"))  # a version is ours once: a replay is not
    assert foreign == ["3", "4 again"]
