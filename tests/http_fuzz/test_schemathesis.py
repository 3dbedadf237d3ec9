"""Schemathesis against the committed openapi/openapi.json and a live server: every operation, both groups,
and stateful sequences along the document's links.

Every response must match its documented status, content type, headers and schema; no 5xx; schema-valid
requests are accepted and schema-violating ones refused; every refusal is a Kubernetes Status naming the
problem. The budget is fixed and the seed derandomized, so CI runs the same requests every time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case, CheckContext, GenerationMode, Response, checks, openapi
from schemathesis.core.result import Ok
from schemathesis.generation.meta import TestPhase

from app.domain.gslb import GROUPS
from tests.http_fuzz.live import LiveApi
from tests.http_fuzz.tally import TALLY

pytestmark = pytest.mark.slow

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

# Fixed budget: fuzzed examples per operation (positive and negative together; the coverage phase's
# boundary cases come on top, a fixed set derived from the document), stateful scenarios and their length.
MAX_EXAMPLES = 40
STATEFUL_SCENARIOS = 50  # 30 left one group without a chain now and then, by the draw of the whole suite
STATEFUL_STEPS = 8
_SUPPRESSED = [
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
    HealthCheck.function_scoped_fixture,  # the per-operation request counter: once per operation is intended
]
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=_SUPPRESSED,
)
# No shrinking: a failing sequence is reported as found rather than replayed many times against the server.
STATEFUL = settings(
    FUZZ,
    max_examples=STATEFUL_SCENARIOS,
    stateful_step_count=STATEFUL_STEPS,
    phases=[Phase.explicit, Phase.generate],
)

schema = openapi.from_path(str(COMMITTED))
# Stateful sequences follow the links committed in the document, not links Schemathesis would guess.
schema.config.phases.stateful.inference.algorithms = []


def kubernetes_status_refusal(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx/5xx body is a Kubernetes Status that names the problem, with the HTTP code."""
    if response.status_code < 400 or case.path in ("/readyz",):  # readyz: a plain-text probe answer
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict), f"refusal is not an object: {body!r}"
    assert body.get("kind") == "Status" and body.get("apiVersion") == "v1", body
    assert body.get("status") == "Failure", body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    assert body.get("code") == response.status_code, body
    assert isinstance(body.get("reason"), str) and body["reason"], body
    return True


def _identity_mismatch(response: Response) -> bool:
    """400 for a body whose namespace or name disagrees with the URL: a rule no JSON Schema can state."""
    if response.status_code != 400:
        return False
    message = str(json.loads(response.content).get("message", ""))
    return "does not match the name on the URL" in message or "does not match the namespace" in message


def positive_data_accepted(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Schemathesis' positive_data_acceptance, except for the URL/body identity rule above."""
    if case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE:
        if _identity_mismatch(response):
            return None
    return checks.positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.use_after_free,
    checks.ensure_resource_availability,
    positive_data_accepted,
    kubernetes_status_refusal,
]


@pytest.fixture(scope="module")
def session(live: LiveApi) -> Iterator[requests.Session]:
    with live.session() as http:
        yield http


@pytest.fixture
def counted(live: LiveApi, request: pytest.FixtureRequest) -> Iterator[None]:
    """Adds the requests the server received during the test to the run's tally."""
    before = live.counter.total
    yield
    TALLY.add(request.node.name, live.counter.total - before)


def test_the_fuzzed_document_has_every_operation_of_both_groups() -> None:
    document: dict[str, Any] = json.loads(COMMITTED.read_text())
    declared = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    loaded = {(result.ok().method.upper(), result.ok().path) for result in results if isinstance(result, Ok)}
    assert loaded == declared
    for group in GROUPS:
        ops = {(m, p) for m, p in declared if p.startswith(f"/apis/{group}/")}
        assert len(ops) == 10, (
            group,
            sorted(ops),
        )  # discovery, 2 lists, create, read/put/patch/delete, status x2
    links = [
        link
        for item in document["paths"].values()
        for operation in item.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert links, "the committed document has no links: stateful sequences would not run"


# The three YAML media types share one decoder: the coverage phase's boundary cases (about 700 per media
# type for a create) go out as JSON and application/yaml only; every media type is still fuzzed.
YAML_ALIASES = frozenset({"text/yaml", "application/x-yaml"})


def _repeats_coverage(case: Case[Any]) -> bool:
    return (
        case.meta is not None
        and case.meta.phase.name is TestPhase.COVERAGE
        and case.media_type in YAML_ALIASES
    )


@schema.parametrize()
@FUZZ
def test_every_operation(case: Case[Any], live: LiveApi, session: requests.Session, counted: None) -> None:
    if _repeats_coverage(case):
        return
    case.call_and_validate(base_url=live.base_url, session=session, checks=CHECKS)


def _delete_everything(live: LiveApi, session: requests.Session) -> int:
    """Empty the store through the API; returns how many requests that took."""
    sent = 0
    for group in GROUPS:
        listed = session.get(f"{live.base_url}/apis/{group}/v1beta1/gslbs", timeout=10)
        sent += 1
        for item in listed.json()["items"]:
            meta = item["metadata"]
            url = f"{live.base_url}/apis/{group}/v1beta1/namespaces/{meta['namespace']}/gslbs/{meta['name']}"
            assert session.delete(url, timeout=10).status_code == 200
            sent += 1
    return sent


def test_stateful_sequences(live: LiveApi, session: requests.Session, request: pytest.FixtureRequest) -> None:
    """create → read / replace / patch / status / delete → ..., chained by the links' namespace and name.

    Each scenario starts from an empty store, so a scenario Hypothesis replays meets the same state.
    """
    base = schema.as_state_machine()
    housekeeping = 0
    before = live.counter.total
    answered: Counter[tuple[str, str, int]] = Counter()

    class LiveSequences(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            nonlocal housekeeping
            housekeeping += _delete_everything(live, session)

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            # Links chain real writes: a dry run answers 201 for an object that (rightly) never exists.
            if case.query:
                case.query.pop("dryRun", None)
            return {"base_url": live.base_url, "session": session}

        def after_call(self, response: Response, case: Case[Any]) -> None:
            super().after_call(response, case)
            answered[case.method, case.operation.path, response.status_code] += 1

        def validate_response(
            self, response: Response, case: Case[Any], additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    try:
        LiveSequences.run(settings=STATEFUL)
    finally:
        TALLY.add(request.node.name, live.counter.total - before - housekeeping)
    # The links carried real objects along: an operation on a created Gslb succeeded in each group, and
    # several kinds of them overall. (Which ones a fixed budget reaches per group varies with the
    # Hypothesis settings other test modules load, so the per-group bar is one.)
    reached_all: set[tuple[str, str]] = set()
    for group in GROUPS:
        item = f"/apis/{group}/v1beta1/namespaces/{{namespace}}/gslbs/{{name}}"
        reached = {(method, path) for method, path, code in answered if code == 200 and path.startswith(item)}
        assert reached, (group, sorted(answered.items()))
        reached_all |= {(method, path.replace(group, "{group}")) for method, path in reached}
    assert len(reached_all) >= 3, sorted(reached_all)
