"""Start-up state is frozen out of the cyclic collector's walks while start-up lasts, and only then."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.gcfreeze import WarmUp


@pytest.fixture
def warm_up() -> Iterator[WarmUp]:
    gc.unfreeze()
    warm_up = WarmUp()
    yield warm_up
    warm_up.cancel()
    gc.unfreeze()


def test_survivors_of_full_collections_are_frozen_during_start_up_only(warm_up: WarmUp) -> None:
    cache = [{"metadata": {"name": f"app-{i}"}} for i in range(1000)]  # what an informer builds
    gc.collect()
    baseline = gc.get_freeze_count()  # the interpreter keeps a few objects of its own there
    gc.collect()  # not warming up yet: nothing frozen
    assert gc.get_freeze_count() == baseline
    warm_up.start()
    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen >= baseline + 2 * len(cache)  # each entry and its metadata dict
    more = [{"n": [i]} for i in range(1000)]  # dicts of atoms only are not tracked: nest a list
    warm_up.end()  # a last collection, then what start-up built is frozen as well
    assert gc.get_freeze_count() >= frozen + len(more)
    after = gc.get_freeze_count()
    later = [{"n": [i]} for i in range(1000)]
    gc.collect()  # after start-up, collections freeze nothing
    assert gc.get_freeze_count() == after and later


def test_a_cycle_that_dies_after_start_up_is_still_collected(warm_up: WarmUp) -> None:
    warm_up.start()
    warm_up.end()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    gc.collect()
    alive = weakref.ref(node)
    del node
    gc.collect()
    assert alive() is None


def test_cancel_stops_freezing_without_a_final_freeze(warm_up: WarmUp) -> None:
    gc.collect()
    baseline = gc.get_freeze_count()
    warm_up.start()
    warm_up.cancel()
    cache = [{"n": [i]} for i in range(1000)]
    gc.collect()
    assert gc.get_freeze_count() == baseline and cache
