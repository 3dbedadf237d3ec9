"""Start-up state is frozen out of the cyclic collector's walks while start-up lasts, and only then;
meanwhile the runtime's periodic collections stand in for the automatic ones."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from app import runtime
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


def test_automatic_collections_are_off_during_start_up_and_collect_stands_in(warm_up: WarmUp) -> None:
    assert gc.isenabled()
    warm_up.start()
    assert not gc.isenabled()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    alive = weakref.ref(node)
    del node
    kept = [{"n": [i]} for i in range(1000)]
    before = gc.get_freeze_count()
    warm_up.collect()  # what the runtime calls every few seconds meanwhile
    assert alive() is None  # garbage cycles do not pile up until the end of start-up
    assert gc.get_freeze_count() >= before + len(kept)  # and the survivors are frozen
    warm_up.end()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(warm_up: WarmUp) -> None:
    gc.disable()
    try:
        warm_up.start()
        warm_up.cancel()
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_the_runtime_collects_while_start_up_lasts_then_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "WARM_UP_COLLECT_SECONDS", 0.02)
    synced = asyncio.Event()
    calls: list[str] = []

    class Recorder(WarmUp):
        def collect(self) -> None:
            calls.append("collect")

        def end(self, moment: str = "start-up done") -> None:
            calls.append("end")

    owner = SimpleNamespace(
        controller=SimpleNamespace(wait_synced=synced.wait),
        settings=SimpleNamespace(gslb_reconcile=True),
        warm_up=Recorder(),
    )
    task = asyncio.create_task(runtime.Runtime._end_warm_up(owner))  # type: ignore[arg-type]
    await asyncio.sleep(0.1)
    assert calls and set(calls) == {"collect"}
    synced.set()
    await asyncio.wait_for(task, 1)
    assert calls[-1] == "end" and calls.count("end") == 1
