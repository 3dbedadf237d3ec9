"""Per-query answer order, driven by the record's labels (k8gb.md §5).

- `strategy=geoip`: keep the targets located where the client is (all of them when none is), shuffled;
- `weight-<geo>-<idx>-<w>: ip` labels: weighted random order, drawn without replacement in proportion to
  the weights; zero (or missing) weights always last, shuffled among themselves;
- anything else with several targets: uniform random shuffle.

Small sets (the common case: a few clusters) are enumerated once: every permutation with its
probability, so that a query only draws one number and picks a pre-rendered answer. Larger sets are
ordered per query.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

MAX_ENUMERATED = 4
"""Up to this many answers, all permutations are pre-rendered (4! = 24: a full plan cache stays small)."""

rng = random.Random()
"""The generator behind every per-query order (not for secrets)."""


class Mode(Enum):
    FIXED = "fixed"
    SHUFFLE = "shuffle"
    WEIGHTED = "weighted"
    GEO = "geo"


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    mode: Mode
    weights: tuple[int, ...] = ()
    """Per target, for WEIGHTED."""
    locations: tuple[str | None, ...] = ()
    """Per target, for GEO."""

    def subset(self, size: int, client_location: str | None) -> tuple[int, ...]:
        """Indices of the targets this client may get: geoip keeps the client's location, if any matches."""
        if self.mode is Mode.GEO and client_location is not None:
            matching = tuple(i for i, loc in enumerate(self.locations) if loc == client_location)
            if matching:
                return matching
        return tuple(range(size))


@dataclass(frozen=True, slots=True)
class Arrangements:
    """Every order a subset can be served in, and a sampler over them."""

    orders: tuple[tuple[int, ...], ...]
    cumulative: tuple[float, ...] | None
    """Cumulative probabilities aligned with `orders`; None means uniform."""


def _weight_of(policy: OrderPolicy, index: int) -> int:
    return policy.weights[index] if index < len(policy.weights) else 0


def enumerate_orders(policy: OrderPolicy, indices: Sequence[int]) -> Arrangements | None:
    """All orders of `indices` with their probabilities, or None when there are too many."""
    if policy.mode is Mode.FIXED or len(indices) <= 1:
        return Arrangements((tuple(indices),), None)
    if len(indices) > MAX_ENUMERATED:
        return None
    if policy.mode is not Mode.WEIGHTED:
        return Arrangements(tuple(itertools.permutations(indices)), None)
    positive = [i for i in indices if _weight_of(policy, i) > 0]
    zero = [i for i in indices if _weight_of(policy, i) <= 0]
    tail_share = 1.0 / math.factorial(len(zero))
    orders: list[tuple[int, ...]] = []
    cumulative: list[float] = []
    total = 0.0
    for head in itertools.permutations(positive):
        probability = tail_share
        remaining = float(sum(_weight_of(policy, i) for i in head))
        for i in head:
            probability *= _weight_of(policy, i) / remaining
            remaining -= _weight_of(policy, i)
        for tail in itertools.permutations(zero):
            total += probability
            orders.append(head + tail)
            cumulative.append(total)
    return Arrangements(tuple(orders), tuple(cumulative))


def draw_order(policy: OrderPolicy, indices: Sequence[int]) -> list[int]:
    """One order for one query, for sets too large to enumerate."""
    if policy.mode is Mode.FIXED:
        return list(indices)
    if policy.mode is not Mode.WEIGHTED:
        order = list(indices)
        rng.shuffle(order)
        return order
    # Efraimidis-Spirakis: sorting by u**(1/w) equals drawing without replacement by weight.
    positive = [i for i in indices if _weight_of(policy, i) > 0]
    zero = [i for i in indices if _weight_of(policy, i) <= 0]
    positive.sort(key=lambda i: rng.random() ** (1.0 / _weight_of(policy, i)), reverse=True)
    rng.shuffle(zero)
    return positive + zero
