"""Label and field selectors with the API server's grammar and meaning (`kubectl get -l` sends these)."""

from __future__ import annotations

import pytest

from app.domain.selectors import SelectorError, parse_field_selector, parse_label_selector

LABELS = {"app": "web", "tier": "front", "k8gb.io/team": "net", "replicas": "3"}


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("missing!=x", True),  # != and notin hold for a missing key, as the API server has it
        ("app in (api, web)", True),
        ("app in (api)", False),
        ("app notin (api,db)", True),
        ("missing notin (x)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("k8gb.io/team=net,tier in (front,back),!missing", True),
        ("app=web,tier=back", False),
        ("app=", False),  # an empty value is a value
        ("replicas>2", True),  # Gt and Lt compare integers, as the API server's parser has them
        ("replicas > 3", False),
        ("replicas<4,app=web", True),
        ("replicas<-1", False),
        ("app>1", False),  # a value that is not an integer does not match
        ("missing<1", False),
    ],
)
def test_label_selector_meaning(selector: str, selected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is selected


def test_nothing_matches_a_requirement_on_no_labels() -> None:
    assert parse_label_selector("app=web").matches(None) is False
    assert parse_label_selector("!app").matches(None) is True


@pytest.mark.parametrize(
    "selector",
    [
        "!!bad",
        "app=web=x",
        "app in ()",
        "app in (a",
        "=web",
        "app=(x)",
        "Bad Key=1",
        "a=" + "v" * 64,
        "in (x)",
        "replicas>x",
        "replicas>",
        "replicas>>1",
        "replicas>1.5",
    ],
)
def test_label_selector_syntax_errors(selector: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector(selector)


def test_field_selector_on_name_and_namespace() -> None:
    metadata = {"name": "app", "namespace": "prod"}
    assert parse_field_selector("metadata.name=app").matches(metadata)
    assert parse_field_selector("metadata.name==app,metadata.namespace!=dev").matches(metadata)
    assert not parse_field_selector("metadata.namespace=dev").matches(metadata)
    assert parse_field_selector("").matches(metadata)
    with pytest.raises(SelectorError, match="field label not supported: spec.strategy.type"):
        parse_field_selector("spec.strategy.type=failover")
    with pytest.raises(SelectorError, match="invalid field selector"):
        parse_field_selector("metadata.name")
