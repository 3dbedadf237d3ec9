"""Answer-order policies as pure functions: the distributions the server draws from."""

from __future__ import annotations

from collections import Counter

import pytest

from app.dnsserver.ordering import MAX_ENUMERATED, Mode, OrderPolicy, draw_order, enumerate_orders


def _probabilities(policy: OrderPolicy, size: int) -> dict[tuple[int, ...], float]:
    arrangements = enumerate_orders(policy, range(size))
    assert arrangements is not None
    if arrangements.cumulative is None:
        return {order: 1 / len(arrangements.orders) for order in arrangements.orders}
    previous = 0.0
    result = {}
    for order, cumulative in zip(arrangements.orders, arrangements.cumulative, strict=True):
        result[order] = cumulative - previous
        previous = cumulative
    return result


@pytest.mark.parametrize(
    "policy, size, expected",
    [
        pytest.param(OrderPolicy(Mode.FIXED), 3, {(0, 1, 2): 1.0}, id="fixed"),
        pytest.param(OrderPolicy(Mode.SHUFFLE), 2, {(0, 1): 0.5, (1, 0): 0.5}, id="shuffle"),
        pytest.param(OrderPolicy(Mode.WEIGHTED, weights=(80, 20)), 2, {(0, 1): 0.8, (1, 0): 0.2}, id="80-20"),
        pytest.param(
            OrderPolicy(Mode.WEIGHTED, weights=(0, 50, 0)),
            3,
            {(1, 0, 2): 0.5, (1, 2, 0): 0.5},
            id="zeros-last",
        ),
        pytest.param(
            OrderPolicy(Mode.WEIGHTED, weights=(3, 1)),
            3,
            {(0, 1, 2): 0.75, (1, 0, 2): 0.25},
            id="missing-weight-is-zero",
        ),
        pytest.param(
            OrderPolicy(Mode.WEIGHTED, weights=(2, 1, 1)),
            3,
            {
                (0, 1, 2): 0.25,
                (0, 2, 1): 0.25,
                (1, 0, 2): 1 / 6,
                (1, 2, 0): 1 / 12,
                (2, 0, 1): 1 / 6,
                (2, 1, 0): 1 / 12,
            },
            id="draw-without-replacement",
        ),
    ],
)
def test_enumerated_distribution(
    policy: OrderPolicy, size: int, expected: dict[tuple[int, ...], float]
) -> None:
    got = _probabilities(policy, size)
    assert got.keys() == expected.keys()
    assert all(got[order] == pytest.approx(p) for order, p in expected.items())


def test_large_sets_are_drawn_per_query_by_weight() -> None:
    size = MAX_ENUMERATED + 2
    weights = (1, 1, 1, 97, 0, 0)
    policy = OrderPolicy(Mode.WEIGHTED, weights=weights)
    assert enumerate_orders(policy, range(size)) is None
    orders = [draw_order(policy, range(size)) for _ in range(2000)]
    assert all(sorted(order) == list(range(size)) for order in orders)
    assert all(set(order[-2:]) == {4, 5} for order in orders)  # index 5 has no weight: zero
    first = Counter(order[0] for order in orders)
    assert 0.93 < first[3] / len(orders) < 0.995
    assert Counter(order[-1] for order in orders).keys() == {4, 5}


@pytest.mark.parametrize(
    "client, expected",
    [
        pytest.param("eu", (0, 2), id="matching"),
        pytest.param("za", (0, 1, 2, 3), id="no-match-all"),
        pytest.param(None, (0, 1, 2, 3), id="unknown-client-all"),
    ],
)
def test_geo_subset(client: str | None, expected: tuple[int, ...]) -> None:
    policy = OrderPolicy(Mode.GEO, locations=("eu", "us", "eu", None))
    assert policy.subset(4, client) == expected
