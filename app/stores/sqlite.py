"""The embedded store: Gslbs in one SQLite file, with Kubernetes object semantics and a change feed.

Durability: WAL with `synchronous=FULL`, one transaction per write, so an acknowledged write survives
SIGKILL and power loss and an object is never half-written. Every sqlite3 call runs on one dedicated
worker thread (sqlite3 is blocking; the event loop must not be). That single thread also serialises
writes, so commit order is the order events reach watchers. Reads have their own connection on their
own thread: in WAL mode they never wait for a writer, so while the file is locked by someone else
(writes wait out the busy timeout, then fail) reads keep answering.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import sqlite3
import string
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from app.domain.gslb import (
    TRACE_GENERATION_ANNOTATION,
    TRACEPARENT_ANNOTATION,
    Gslb,
    GslbStatus,
    reconciled_annotations,
)
from app.domain.migration import migration_labels
from app.stores.base import (
    AlreadyExists,
    Conflict,
    EventType,
    NotFound,
    ObjectKey,
    StoreError,
    Unavailable,
    WatchEvent,
)
from app.stores.feed import Fanout, Feed

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gslbs (
    api_group TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    resource_version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (api_group, namespace, name)
);
CREATE TABLE IF NOT EXISTS revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO revision (id, value) VALUES (1, 0);
"""

# The layout above, in `PRAGMA user_version`: a data directory written by a newer pygslb (a higher
# version) is refused rather than read and rewritten without the fields this one does not know.
SCHEMA_VERSION = 1

# Metadata that a client may change with update(); the rest is owned by the store.
_USER_METADATA = ("labels", "annotations", "finalizers", "owner_references")
_NAME_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec(gslb: Gslb) -> dict[str, Any]:
    return gslb.spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def _traceparent(gslb: Gslb) -> str | None:
    return (gslb.metadata.annotations or {}).get(TRACEPARENT_ANNOTATION)


def _trace_marker(gslb: Gslb) -> str | None:
    return (gslb.metadata.annotations or {}).get(TRACE_GENERATION_ANNOTATION)


def _tracked_annotations(gslb: Gslb) -> dict[str, str]:
    return reconciled_annotations(gslb.metadata.annotations)


def _hold(path: Path) -> IO[str]:
    """An exclusive flock on `path`, kept while the returned file is open; the kernel drops it when the
    process ends however it ends (SIGKILL included), so a restart never finds a stale lock."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise Unavailable(
            f"data directory {path.parent} is in use by another gslb serve ({holder}); "
            "give each server its own GSLB_DATA_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


class SqliteStore:
    """`GslbStore` over `<data_dir>/gslb.db`. Call `start()` before use and `close()` at the end."""

    def __init__(self, data_dir: Path, *, busy_timeout_ms: int = 5000, exclusive: bool = False) -> None:
        """`exclusive`: hold the data directory for this process (`gslb serve` does): a second server on
        it would reconcile every Gslb too without hearing of the first's writes."""
        self.path = Path(data_dir) / "gslb.db"
        self._exclusive = exclusive
        self._lock: IO[str] | None = None
        self._busy_timeout_ms = busy_timeout_ms
        self._locked_at: float | None = None  # when a write last found the file locked by someone else
        self._executor: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feed: Fanout[WatchEvent] = Fanout()

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store-read")
        try:
            await self._run(self._open)
            await self._run(self._open_reader, read=True)
        except BaseException:
            await self._stop_threads()  # a later start() starts afresh; the data directory is free again
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._stop_threads()
        self._feed.close()

    async def _stop_threads(self) -> None:
        """Close the connections (and the data directory's lock) on their threads, then end those."""
        executor, self._executor = self._executor, None
        reader, self._reader = self._reader, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self._close_connection)
            if reader is not None:
                await loop.run_in_executor(reader, self._close_reader)
        finally:
            await asyncio.to_thread(executor.shutdown, True)
            if reader is not None:
                await asyncio.to_thread(reader.shutdown, True)

    def _open(self) -> None:
        data_dir = self.path.parent
        if data_dir.exists() and not data_dir.is_dir():
            raise Unavailable(f"data directory {data_dir} is not a directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        if self._exclusive:
            self._lock = _hold(data_dir / "serve.lock")
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise Unavailable(f"{self.path}: cannot switch SQLite to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise Unavailable(
                    f"{self.path} was written by a newer pygslb (store schema {version}; this one knows "
                    f"{SCHEMA_VERSION}): run that version, or restore a backup made for this one"
                )
            conn.executescript(_SCHEMA)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            if conn is not None:
                conn.close()
            self._close_connection()  # and the lock
            raise
        self._conn = conn

    def _open_reader(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        self._read_conn = conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            self._lock.close()  # the flock goes with the descriptor
            self._lock = None

    def _close_reader(self) -> None:
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    async def _run(self, fn: Callable[[], T], *, read: bool = False) -> T:
        """Run `fn` on the writer (or reader) thread; SQLite trouble becomes `Unavailable`, file named."""
        executor = self._reader if read else self._executor
        if executor is None:
            raise Unavailable("the SQLite store is not started")
        loop = asyncio.get_running_loop()

        def guarded() -> T:
            try:
                return fn()
            except StoreError:
                raise
            except sqlite3.Error as exc:
                raise Unavailable(f"SQLite store {self.path} cannot serve the request: {exc}") from exc

        return await loop.run_in_executor(executor, guarded)

    # --- worker-thread helpers (never call from the loop) ------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable("the SQLite store is closed")
        return self._conn

    @property
    def _read_db(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise Unavailable("the SQLite store is closed")
        return self._read_conn

    def _load(self, key: ObjectKey, conn: sqlite3.Connection | None = None) -> Gslb | None:
        row = (
            (conn or self._db)
            .execute(
                "SELECT body FROM gslbs WHERE api_group = ? AND namespace = ? AND name = ?",
                (key.group, key.namespace, key.name),
            )
            .fetchone()
        )
        return Gslb.model_validate(json.loads(row[0])) if row else None

    def _write(
        self,
        mutate: Callable[[sqlite3.Connection, int], tuple[Gslb, WatchEvent | None]],
        *,
        dry_run: bool = False,
    ) -> Gslb:
        """One IMMEDIATE transaction: `mutate(conn, next_revision)` does the row work; all or nothing.
        A dry run does all of it, checks included, and rolls back."""
        conn = self._db
        self._begin(conn)
        try:
            revision = conn.execute("SELECT value FROM revision WHERE id = 1").fetchone()[0] + 1
            result, event = mutate(conn, revision)
            if event is None or dry_run:  # a no-op write: nothing changes, as the API server does
                conn.execute("ROLLBACK")
                return result
            conn.execute("UPDATE revision SET value = ? WHERE id = 1", (revision,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._publish(event)
        return result

    def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE. Once a write has waited out the busy timeout on a file someone else holds
        locked, the writes queued behind it fail fast for one timeout's length instead of each waiting
        the whole timeout again: a long lock answers 503s promptly, not after minutes of queueing."""
        window = self._busy_timeout_ms / 1000
        quick = self._locked_at is not None and time.monotonic() - self._locked_at < window
        if quick:
            conn.execute("PRAGMA busy_timeout = 50")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if busy and not quick:
                self._locked_at = time.monotonic()
            raise
        else:
            self._locked_at = None
        finally:
            if quick:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")

    def _publish(self, event: WatchEvent) -> None:
        # call_soon_threadsafe callbacks run in FIFO order: watchers see commits in commit order,
        # and before the writer's own await returns.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._feed.publish, event)

    @staticmethod
    def _store_row(conn: sqlite3.Connection, gslb: Gslb, revision: int) -> None:
        body = json.dumps(gslb.wire(), separators=(",", ":"), sort_keys=True)
        key = ObjectKey.of(gslb)
        conn.execute(
            "INSERT OR REPLACE INTO gslbs (api_group, namespace, name, resource_version, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (key.group, key.namespace, key.name, revision, body),
        )

    def _current(self, key: ObjectKey, resource_version: str | None) -> Gslb:
        stored = self._load(key)
        if stored is None:
            raise NotFound(f"{key} not found")
        if resource_version and resource_version != stored.metadata.resource_version:
            raise Conflict(
                f"{key}: resourceVersion {resource_version} is stale "
                f"(current {stored.metadata.resource_version}); read the object again and retry"
            )
        return stored

    # --- reads ---------------------------------------------------------------------------------

    async def get(self, key: ObjectKey) -> Gslb:
        def read() -> Gslb:
            found = self._load(key, self._read_db)
            if found is None:
                raise NotFound(f"{key} not found")
            return found

        return await self._run(read, read=True)

    async def list(self, group: str, namespace: str | None = None) -> tuple[list[Gslb], str]:
        def read() -> tuple[list[Gslb], str]:
            conn = self._read_db
            conn.execute("BEGIN")  # one snapshot for the rows and the revision
            try:
                if namespace is None:
                    rows = conn.execute(
                        "SELECT body FROM gslbs WHERE api_group = ? ORDER BY namespace, name", (group,)
                    ).fetchall()
                else:
                    rows = conn.execute(
                        "SELECT body FROM gslbs WHERE api_group = ? AND namespace = ? ORDER BY name",
                        (group, namespace),
                    ).fetchall()
                revision = conn.execute("SELECT value FROM revision WHERE id = 1").fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return [Gslb.model_validate(json.loads(r[0])) for r in rows], str(revision)

        return await self._run(read, read=True)

    # --- writes --------------------------------------------------------------------------------

    async def create(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        def mutate(conn: sqlite3.Connection, revision: int) -> tuple[Gslb, WatchEvent | None]:
            meta = gslb.metadata
            name = meta.name
            if not name:
                if not meta.generate_name:
                    raise ValueError("metadata.name or metadata.generateName is required")
                name = meta.generate_name + "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
            metadata = meta.model_copy(
                update={
                    "name": name,
                    "namespace": meta.namespace or "default",
                    "uid": str(uuid.uuid4()),
                    "resource_version": str(revision),
                    "generation": 1,
                    "creation_timestamp": _now(),
                    "deletion_timestamp": None,
                }
            )
            created = gslb.model_copy(update={"metadata": metadata, "status": None})
            if self._load(ObjectKey.of(created)) is not None:
                raise AlreadyExists(f"{ObjectKey.of(created)} already exists")
            self._store_row(conn, created, revision)
            return created, WatchEvent(
                EventType.ADDED,
                created,
                spec_changed=True,
                trace_written=_traceparent(created) is not None,
                marker_written=_trace_marker(created) is not None,
            )

        created = await self._run(lambda: self._write(mutate, dry_run=dry_run))
        if not dry_run:
            return created
        # As the API server answers a dry-run create: no uid or resourceVersion, no generated name.
        unnamed = {"name": None} if not gslb.metadata.name else {}
        metadata = created.metadata.model_copy(update={"uid": None, "resource_version": None, **unnamed})
        return created.model_copy(update={"metadata": metadata})

    async def update(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        key = ObjectKey.of(gslb)

        def mutate(conn: sqlite3.Connection, revision: int) -> tuple[Gslb, WatchEvent | None]:
            stored = self._current(key, gslb.metadata.resource_version)
            spec_changed = _spec(gslb) != _spec(stored)
            user_meta = {f: getattr(gslb.metadata, f) for f in _USER_METADATA}
            if not spec_changed and all(getattr(stored.metadata, f) == v for f, v in user_meta.items()):
                return stored, None
            generation = (stored.metadata.generation or 1) + (1 if spec_changed else 0)
            version = stored.metadata.resource_version if dry_run else str(revision)
            metadata = stored.metadata.model_copy(
                update={**user_meta, "resource_version": version, "generation": generation}
            )
            updated = stored.model_copy(update={"metadata": metadata, "spec": gslb.spec})
            self._store_row(conn, updated, revision)
            relevant = (
                spec_changed
                or _tracked_annotations(updated) != _tracked_annotations(stored)
                or migration_labels(updated.metadata.labels) != migration_labels(stored.metadata.labels)
            )
            return updated, WatchEvent(
                EventType.MODIFIED,
                updated,
                spec_changed=relevant,
                trace_written=_traceparent(updated) != _traceparent(stored),
                marker_written=_trace_marker(updated) != _trace_marker(stored),
            )

        return await self._run(lambda: self._write(mutate, dry_run=dry_run))

    async def update_status(
        self,
        key: ObjectKey,
        status: GslbStatus,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Gslb:
        def mutate(conn: sqlite3.Connection, revision: int) -> tuple[Gslb, WatchEvent | None]:
            stored = self._current(key, resource_version)
            if stored.status == status:
                return stored, None
            version = stored.metadata.resource_version if dry_run else str(revision)
            metadata = stored.metadata.model_copy(update={"resource_version": version})
            updated = stored.model_copy(update={"metadata": metadata, "status": status})
            self._store_row(conn, updated, revision)
            return updated, WatchEvent(EventType.MODIFIED, updated, spec_changed=False)

        return await self._run(lambda: self._write(mutate, dry_run=dry_run))

    async def write_status(self, key: ObjectKey, status: GslbStatus) -> None:
        await self.update_status(key, status)

    async def delete(
        self,
        key: ObjectKey,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Gslb:
        def mutate(conn: sqlite3.Connection, revision: int) -> tuple[Gslb, WatchEvent | None]:
            stored = self._current(key, resource_version)
            conn.execute(
                "DELETE FROM gslbs WHERE api_group = ? AND namespace = ? AND name = ?",
                (key.group, key.namespace, key.name),
            )
            if dry_run:
                return stored, None
            metadata = stored.metadata.model_copy(update={"resource_version": str(revision)})
            deleted = stored.model_copy(update={"metadata": metadata})
            return deleted, WatchEvent(EventType.DELETED, deleted, spec_changed=True)

        return await self._run(lambda: self._write(mutate, dry_run=dry_run))

    # --- change feed ---------------------------------------------------------------------------

    def watch(self) -> Feed[WatchEvent]:
        """Every committed write after this call, in commit order; ends when the store closes."""
        return self._feed.subscribe()


def backup(data_dir: Path, destination: Path) -> int:
    """Copy the store to `destination` (a new file) with SQLite's online backup, consistent even while
    `gslb serve` writes: copying gslb.db alone misses what is still in its write-ahead log. Returns the
    number of Gslbs copied. Blocking: for the CLI."""
    source_path = Path(data_dir) / "gslb.db"
    if not source_path.is_file():
        raise Unavailable(f"no store at {source_path}")
    if destination.exists():
        raise Unavailable(f"{destination} exists: name a new file")
    source = sqlite3.connect(source_path)  # reads only; beside a running server as any reader is
    try:
        target = sqlite3.connect(destination)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            return int(target.execute("SELECT count(*) FROM gslbs").fetchone()[0])
        except BaseException:
            target.close()
            destination.unlink(missing_ok=True)  # no half copy left to refuse the next try
            raise
        finally:
            target.close()
    finally:
        source.close()
