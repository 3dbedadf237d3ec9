"""The keyed work queue: collapse, one worker per key, hold-back while processing, timers on virtual time."""

import asyncio

import pytest

from app.controller.queue import MAX_CAUSES, WorkQueue


async def test_duplicates_collapse_with_all_causes():
    queue: WorkQueue[str, str] = WorkQueue()
    queue.add("a", "w1", "write")
    queue.add("b", None, "write")
    queue.add("a", "w2", "write")
    item = await queue.get()
    assert (item.key, item.causes) == ("a", ["w1", "w2"])
    assert (await queue.get()).key == "b"
    assert len(queue) == 0


async def test_key_re_added_while_processing_is_held_then_requeued():
    queue: WorkQueue[str, str] = WorkQueue()
    queue.add("a", "w1")
    item = await queue.get()
    queue.add("a", "w2")
    assert len(queue) == 0, "a key being processed must not be handed to a second worker"
    queue.done(item.key)
    again = await queue.get()
    assert again.causes == ["w2"]


async def test_parallel_workers_never_share_a_key():
    queue: WorkQueue[str, None] = WorkQueue()
    running: set[str] = set()
    overlaps = 0
    done = 0

    async def worker():
        nonlocal overlaps, done
        while True:
            item = await queue.get()
            if item.key in running:
                overlaps += 1
            running.add(item.key)
            await asyncio.sleep(0)
            running.discard(item.key)
            queue.done(item.key)
            done += 1

    tasks = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(200):
        queue.add(f"k{i % 5}")
        await asyncio.sleep(0)
    while not queue.idle:
        await asyncio.sleep(0.001)
    for t in tasks:
        t.cancel()
    assert overlaps == 0
    assert 5 <= done <= 200


@pytest.mark.looptime
async def test_add_after_fires_on_time_and_add_cancels_timer():
    queue: WorkQueue[str, None] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after("a", 30, "resync")
    item = await queue.get()
    assert item.reasons == ["resync"]
    assert loop.time() - start == pytest.approx(30, abs=0.01)
    queue.done("a")
    queue.add_after("a", 30, "resync")
    queue.add("a", None, "write")
    item = await queue.get()
    assert item.reasons == ["write"]
    queue.done("a")
    await asyncio.sleep(60)
    assert len(queue) == 0, "the cancelled resync must not fire"


@pytest.mark.looptime
async def test_backoff_grows_exponentially_and_forget_resets():
    queue: WorkQueue[str, None] = WorkQueue(base_delay=1, max_delay=10, jitter=0)
    delays = [queue.backoff("a") for _ in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]
    queue.forget("a")
    assert queue.backoff("a") == 1


async def test_a_write_storm_on_one_key_keeps_the_newest_causes_and_counts_the_rest():
    """Writes keep coming while the key is processed (a slow reconcile): the item holds the newest
    MAX_CAUSES causes, not every one, and counts those it let go."""
    queue: WorkQueue[str, int] = WorkQueue()
    queue.add("a", 0, "write")
    item = await queue.get()
    for n in range(1, 301):
        queue.add("a", n, "write")
    queue.done(item.key)
    again = await queue.get()
    assert again.causes == list(range(301 - MAX_CAUSES, 301))
    assert again.dropped_causes == 300 - MAX_CAUSES
    assert len(again.reasons) == MAX_CAUSES
