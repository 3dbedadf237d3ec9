"""SqliteStore: Kubernetes object semantics, both API groups, errors, persistence."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from app.domain.gslb import GROUP, LEGACY_GROUP, GslbStatus, HealthStatus
from app.stores.base import AlreadyExists, Conflict, NotFound, ObjectKey, Unavailable
from app.stores.sqlite import SqliteStore
from tests.support.gslb_factory import make_gslb

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def key(name: str, group: str = GROUP, namespace: str = "test-gslb") -> ObjectKey:
    return ObjectKey(group, namespace, name)


async def test_create_sets_server_fields_and_ignores_status(store: SqliteStore) -> None:
    incoming = make_gslb("app", namespace=None)
    incoming.metadata.uid = "client-chosen"
    incoming.metadata.generation = 7
    incoming.status = GslbStatus(geo_tag="forged")

    created = await store.create(incoming)

    meta = created.metadata
    assert meta.namespace == "default"
    assert meta.uid and UUID4.match(meta.uid)
    assert meta.creation_timestamp and RFC3339_Z.match(meta.creation_timestamp)
    assert meta.generation == 1
    assert meta.resource_version and meta.resource_version.isdigit()
    assert created.status is None
    assert await store.get(ObjectKey(GROUP, "default", "app")) == created


async def test_generate_name(store: SqliteStore) -> None:
    body = make_gslb("x")
    body.metadata.name = None
    body.metadata.generate_name = "web-"
    created = await store.create(body)
    assert re.fullmatch(r"web-[a-z0-9]{5}", created.name)


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        (GROUP, GROUP, AlreadyExists),
        (LEGACY_GROUP, LEGACY_GROUP, AlreadyExists),
        (GROUP, LEGACY_GROUP, None),  # separate resources: the same name may exist in each group
        (LEGACY_GROUP, GROUP, None),
    ],
)
async def test_create_twice(
    store: SqliteStore, first: str, second: str, error: type[Exception] | None
) -> None:
    await store.create(make_gslb("app", group=first))
    if error is None:
        assert (await store.create(make_gslb("app", group=second))).group == second
        groups = {(await store.get(key("app", g))).group for g in (GROUP, LEGACY_GROUP)}
        assert groups == {GROUP, LEGACY_GROUP}
    else:
        with pytest.raises(error):
            await store.create(make_gslb("app", group=second))


async def test_update_spec_bumps_generation_and_keeps_status_and_identity(store: SqliteStore) -> None:
    created = await store.create(make_gslb("app"))
    with_status = await store.update_status(key("app"), GslbStatus(geo_tag="eu"))

    change = make_gslb("app", strategy="failover", primaryGeoTag="eu")
    change.metadata.uid = "forged"
    change.metadata.creation_timestamp = "1999-01-01T00:00:00Z"
    change.status = GslbStatus(geo_tag="forged")
    updated = await store.update(change)

    assert updated.metadata.generation == 2
    assert int(updated.metadata.resource_version or 0) > int(with_status.metadata.resource_version or 0)
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert updated.status == GslbStatus(geo_tag="eu")
    assert updated.spec.strategy.type == "failover"
    assert await store.get(key("app")) == updated


@pytest.mark.parametrize(
    ("edit", "generation", "rv_changes"),
    [
        ("labels", 1, True),
        ("annotations", 1, True),
        ("spec", 2, True),
        ("nothing", 1, False),  # a no-op write changes nothing, as the API server does
    ],
)
async def test_update_generation_and_resource_version(
    store: SqliteStore, edit: str, generation: int, rv_changes: bool
) -> None:
    created = await store.create(make_gslb("app"))
    change = make_gslb("app")
    if edit == "labels":
        change.metadata.labels = {"team": "a"}
    elif edit == "annotations":
        change.metadata.annotations = {"note": "x"}
    elif edit == "spec":
        change.spec.strategy.dns_ttl_seconds = 5
    updated = await store.update(change)
    assert updated.metadata.generation == generation
    assert (updated.metadata.resource_version != created.metadata.resource_version) is rv_changes


async def test_update_status_changes_only_status(store: SqliteStore) -> None:
    created = await store.create(make_gslb("app"))
    status = GslbStatus(geo_tag="eu", service_health={"roundrobin.cloud.example.com": HealthStatus.HEALTHY})
    updated = await store.update_status(key("app"), status, created.metadata.resource_version)
    assert updated.status == status
    assert updated.spec == created.spec
    assert updated.metadata.generation == 1
    assert int(updated.metadata.resource_version or 0) > int(created.metadata.resource_version or 0)
    assert (await store.get(key("app"))).status == status


STALE = "stale"
MISSING = "missing"


@pytest.mark.parametrize("case", [STALE, MISSING])
@pytest.mark.parametrize("operation", ["update", "update_status", "delete"])
async def test_write_errors(store: SqliteStore, operation: str, case: str) -> None:
    created = await store.create(make_gslb("app"))
    await store.update_status(key("app"), GslbStatus(geo_tag="eu"))  # moves resourceVersion on
    name = "app" if case == STALE else "ghost"
    rv = created.metadata.resource_version
    expected = Conflict if case == STALE else NotFound
    with pytest.raises(expected):
        if operation == "update":
            body = make_gslb(name, strategy="geoip")
            body.metadata.resource_version = rv
            await store.update(body)
        elif operation == "update_status":
            await store.update_status(key(name), GslbStatus(geo_tag="us"), rv)
        else:
            await store.delete(key(name), rv)
    assert (await store.get(key("app"))).status == GslbStatus(geo_tag="eu")  # nothing was written


async def test_get_missing(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        await store.get(key("nope"))


async def test_update_without_resource_version_is_last_write_wins(store: SqliteStore) -> None:
    await store.create(make_gslb("app"))
    await store.update_status(key("app"), GslbStatus(geo_tag="eu"))
    updated = await store.update(make_gslb("app", strategy="geoip"))
    assert updated.spec.strategy.type == "geoip"


async def test_delete_returns_object_and_removes_it(store: SqliteStore) -> None:
    created = await store.create(make_gslb("app"))
    deleted = await store.delete(key("app"), created.metadata.resource_version)
    assert deleted.metadata.uid == created.metadata.uid
    assert int(deleted.metadata.resource_version or 0) > int(created.metadata.resource_version or 0)
    with pytest.raises(NotFound):
        await store.get(key("app"))
    items, _ = await store.list(GROUP)
    assert items == []


async def test_list_sorted_filtered_and_resource_version(store: SqliteStore) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("b", "a"), ("a", "x")]:
        await store.create(make_gslb(name, namespace=ns))
    await store.create(make_gslb("legacy", group=LEGACY_GROUP, namespace="a"))
    last = await store.update_status(ObjectKey(GROUP, "b", "z"), GslbStatus(geo_tag="eu"))

    items, rv = await store.list(GROUP)
    assert [(g.namespace, g.name) for g in items] == [("a", "x"), ("a", "y"), ("b", "a"), ("b", "z")]
    assert rv == last.metadata.resource_version

    only_b, _ = await store.list(GROUP, "b")
    assert [g.name for g in only_b] == ["a", "z"]
    legacy, _ = await store.list(LEGACY_GROUP)
    assert [(g.group, g.name) for g in legacy] == [(LEGACY_GROUP, "legacy")]


async def test_resource_version_is_store_wide_and_increasing(store: SqliteStore) -> None:
    seen = []
    a = await store.create(make_gslb("a"))
    seen.append(a.metadata.resource_version)
    seen.append((await store.create(make_gslb("a", group=LEGACY_GROUP))).metadata.resource_version)
    seen.append((await store.update(make_gslb("a", strategy="geoip"))).metadata.resource_version)
    seen.append((await store.update_status(key("a"), GslbStatus(geo_tag="x"))).metadata.resource_version)
    seen.append((await store.delete(key("a"))).metadata.resource_version)
    seen.append((await store.create(make_gslb("a"))).metadata.resource_version)
    numbers = [int(rv or 0) for rv in seen]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


async def test_survives_reopen(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path)
    await first.start()
    created = await first.create(make_gslb("app"))
    await first.update_status(key("app"), GslbStatus(geo_tag="eu"))
    await first.close()

    second = SqliteStore(tmp_path)
    await second.start()
    try:
        again = await second.get(key("app"))
        assert again.metadata.uid == created.metadata.uid
        assert again.status == GslbStatus(geo_tag="eu")
        newer = await second.create(make_gslb("b"))
        assert int(newer.metadata.resource_version or 0) > int(again.metadata.resource_version or 0)
    finally:
        await second.close()
    assert (tmp_path / "gslb.db").exists()


async def test_sqlite_settings(store: SqliteStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_concurrent_creates(store: SqliteStore) -> None:
    created = await asyncio.gather(*(store.create(make_gslb(f"app-{i}")) for i in range(100)))
    rvs = {g.metadata.resource_version for g in created}
    assert len(rvs) == 100
    items, _ = await store.list(GROUP)
    assert sorted(g.name for g in items) == sorted(f"app-{i}" for i in range(100))


async def test_locked_database_is_unavailable_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path, busy_timeout_ms=50)
    await store.start()
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(10)
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10)
        with pytest.raises(Unavailable, match="locked"):
            await store.create(make_gslb("app"))
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
    try:
        with pytest.raises(NotFound):
            await store.get(key("app"))
        assert (await store.create(make_gslb("app"))).name == "app"  # usable again once the lock is gone
    finally:
        await store.close()


async def test_disk_full_is_unavailable_and_keeps_earlier_objects(store: SqliteStore) -> None:
    await store.create(make_gslb("small"))
    # Cap the database at its current size: the next write that needs a page fails like a full disk.
    await store._run(lambda: store._db.execute("PRAGMA max_page_count = 1"))
    big = make_gslb("big")
    big.metadata.annotations = {"filler": "x" * 200_000}
    with pytest.raises(Unavailable, match="full"):
        await store.create(big)
    assert (await store.get(key("small"))).name == "small"
    with pytest.raises(NotFound):
        await store.get(key("big"))


async def test_not_started_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        await SqliteStore(tmp_path).get(key("x"))


async def test_a_failed_exclusive_start_frees_the_data_directory_and_can_be_retried(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "gslb.db").mkdir(parents=True)  # not a database file: the connection cannot open it
    store = SqliteStore(data, exclusive=True)
    with pytest.raises(Unavailable):
        await store.start()
    other = SqliteStore(data, exclusive=True)  # the lock went with the failed start
    (data / "gslb.db").rmdir()
    await other.start()
    try:
        assert (await other.list("k8gb.io"))[0] == []
    finally:
        await other.close()
    await store.start()  # the failed one starts afresh too, once the directory is usable and free
    await store.close()
