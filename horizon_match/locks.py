"""One weekly job at a time, on SQLite and PostgreSQL, and never stuck after a crash.

The lock is a `job_locks` row naming its owner (host, pid, and where the system tells it the
process's start time, so a reused pid is not mistaken for the owner) with a heartbeat a
background thread refreshes. A later run takes the row over when its owner is certainly gone:
on this host, the pid no longer exists or now belongs to another process (a live owner on this
host keeps the lock however late its heartbeat, e.g. while a long write holds SQLite); on
another host, the heartbeat is older than `stale_after`. On PostgreSQL the row is backed by a
session advisory lock held on a dedicated connection: the server drops it the moment the
owner's connection dies, so there stale means exactly "its process is gone".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from horizon_match.db import Database
from horizon_match.errors import LockedError
from models.tables import JobLock

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = timedelta(minutes=15)
DEFAULT_HEARTBEAT_SECONDS = 30.0


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _process_start(pid: int) -> str | None:
    """When the process started (clock ticks since boot, from /proc), or None where unknown;
    with the pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else None  # field 22


def _owner_tag(pid: int) -> str:
    """`host:pid:random[@start]`, the owner written into the lock row."""
    start = _process_start(pid)
    tag = uuid.uuid4().hex[:8] + (f"@{start}" if start else "")
    return f"{socket.gethostname()}:{pid}:{tag}"


@dataclass(frozen=True)
class LockHolder:
    name: str
    owner: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    @property
    def host(self) -> str:
        return self.owner.rsplit(":", 2)[0]

    @property
    def started(self) -> str | None:
        """The owner process's start time as written by `_owner_tag`, if it was known."""
        tag = self.owner.rsplit(":", 2)[-1]
        return tag.split("@", 1)[1] if "@" in tag else None

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        if self.host == socket.gethostname():
            if not _pid_alive(self.pid):
                return True
            if self.started is not None:
                current = _process_start(self.pid)
                if current is not None:
                    # the same process: alive, keep out; another one: the pid was reused
                    return current != self.started
        return now - self.heartbeat_at > stale_after

    def describe(self, now: datetime) -> str:
        age = int((now - self.heartbeat_at).total_seconds())
        return (
            f"pid {self.pid} on {self.host}, started {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"last heartbeat {age} s ago"
        )


def lock_holder(db: Database, name: str = "weekly") -> LockHolder | None:
    with db.session() as s:
        row = s.get(JobLock, name)
        if row is None:
            return None
        return LockHolder(row.name, row.owner, row.pid, row.acquired_at, row.heartbeat_at)


class HeldLock:
    """A lock this process holds; `release()` (or leaving the `with` block) gives it back."""

    def __init__(
        self,
        db: Database,
        name: str,
        owner: str,
        *,
        pg_conn: Connection | None,
        heartbeat_seconds: float,
        took_over: LockHolder | None,
    ) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.took_over = took_over
        self._pg_conn = pg_conn
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(heartbeat_seconds,), name=f"lock-{name}", daemon=True
        )
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                with self.db.engine.begin() as conn:
                    result = conn.execute(
                        update(JobLock)
                        .where(JobLock.name == self.name, JobLock.owner == self.owner)
                        .values(heartbeat_at=utcnow())
                    )
                if result.rowcount == 0:
                    self._lost.set()
                    return
            except SQLAlchemyError as exc:
                # A busy database only delays the heartbeat; the next beat tries again.
                log.warning("lock heartbeat failed: %s", exc)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise if another process took the lock over (this one looked dead to it)."""
        if self.lost:
            raise LockedError(
                f"the {self.name} job lock was taken over by another process (this one stalled "
                f"for longer than the stale limit); this run stops, see `horizon-match runs list`"
            )

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    delete(JobLock).where(JobLock.name == self.name, JobLock.owner == self.owner)
                )
        finally:
            if self._pg_conn is not None:
                try:
                    self._pg_conn.execute(
                        text(f"SELECT pg_advisory_unlock({_PG_LOCK_KEY})"),
                        {"k": _pg_key(self.name)},
                    )
                    self._pg_conn.commit()
                finally:
                    self._pg_conn.close()
                    self._pg_conn = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


# Scoped to the schema, so two deployments sharing one database do not block each other.
_PG_LOCK_KEY = "hashtext(current_schema() || :k)"


def _pg_key(name: str) -> str:
    return f"horizon-match:{name}"


def _locked(name: str, holder: LockHolder | None, now: datetime) -> LockedError:
    who = holder.describe(now) if holder else "a process connected to the same database"
    return LockedError(
        f"another horizon-match {name} run is in progress ({who}); wait for it to finish "
        "(`horizon-match runs list` shows it) and run again"
    )


def acquire_lock(
    db: Database,
    name: str = "weekly",
    *,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
) -> HeldLock:
    """Take the named lock or raise LockedError saying who holds it."""
    owner = _owner_tag(os.getpid())
    pg_conn: Connection | None = None
    if db.dialect == "postgresql":
        pg_conn = db.engine.connect()
        got = pg_conn.execute(
            text(f"SELECT pg_try_advisory_lock({_PG_LOCK_KEY})"),
            {"k": _pg_key(name)},
        ).scalar_one()
        pg_conn.commit()
        if not got:
            pg_conn.close()
            raise _locked(name, lock_holder(db, name), utcnow())
    try:
        took_over = _claim_row(db, name, owner, stale_after, certain=pg_conn is not None)
    except BaseException:
        if pg_conn is not None:
            pg_conn.close()
        raise
    return HeldLock(
        db, name, owner, pg_conn=pg_conn, heartbeat_seconds=heartbeat_seconds, took_over=took_over
    )


def _claim_row(
    db: Database, name: str, owner: str, stale_after: timedelta, *, certain: bool
) -> LockHolder | None:
    """Insert the lock row, or take over a stale one. `certain`: we already hold the advisory
    lock, so any row left behind belongs to a dead process."""
    for _ in range(3):
        now = utcnow()
        try:
            with db.engine.begin() as conn:
                conn.execute(
                    JobLock.__table__.insert().values(
                        name=name, owner=owner, pid=os.getpid(), acquired_at=now, heartbeat_at=now
                    )
                )
            return None
        except IntegrityError:
            pass
        holder = lock_holder(db, name)
        if holder is None:
            continue  # released between our insert and our read
        if not certain and not holder.is_stale(now, stale_after):
            raise _locked(name, holder, now)
        with db.engine.begin() as conn:
            result = conn.execute(
                update(JobLock)
                .where(JobLock.name == name, JobLock.owner == holder.owner)
                .values(owner=owner, pid=os.getpid(), acquired_at=now, heartbeat_at=now)
            )
        if result.rowcount == 1:
            log.warning("took over the stale %s lock of %s", name, holder.describe(now))
            return holder
    raise _locked(name, lock_holder(db, name), utcnow())

