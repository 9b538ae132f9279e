"""Storing call records: upsert by identifier, change history, disappearance, statuses.

Rules that keep the stored calls trustworthy:
- a call is matched on `identifier` and rewritten only when its content hash changed; the
  fields that changed (a deadline moved, a budget changed, ...) are written to call_changes
  with the time of the change;
- nothing is ever deleted. A call that a *complete* fetch of its scope no longer returned
  gets `missing_since`; one that comes back loses it. A failed or partial fetch marks nothing;
- statuses are derived from the dates as of `now`, for every stored call, at every store;
- records are written in batches, one transaction per batch (or one for everything, for
  file imports, so a bad file never half-imports);
- an unchanged call is not written at all: `last_seen` moves forward at most once a day, so
  re-running an unchanged scrape writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from horizon_match.call_records import content_hash, deadlines_from_json, row_values
from horizon_match.db import Database
from models import Call, CallChange, CallRecord
from scrapers.ft_portal import CLOSED, derive_status, next_deadline

LAST_SEEN_STEP = timedelta(days=1)
# fields whose changes are kept in call_changes (others still make the call "changed")
TRACKED_FIELDS = ("title", "call_identifier", "call_title", "programme", "destination",
                  "opening_date", "deadlines", "type_of_action", "budget", "url", "keywords",
                  "description", "conditions")


@dataclass
class IngestSummary:
    """What a store, an import or a scrape did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    closed: int = 0  # stored calls whose status turned closed in this run
    missing: int = 0  # calls newly marked missing (a complete fetch no longer returned them)
    reappeared: int = 0
    failed: int = 0  # topics whose details could not be read (kept as they were)
    details_fetched: int = 0
    pages: int = 0
    requests: int = 0
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.new + self.changed

    def describe(self) -> str:
        text = (f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.closed} closed, {self.missing} missing, {self.failed} failed")
        if self.reappeared:
            text += f", {self.reappeared} listed again"
        return text


@dataclass
class StoreItem:
    """A record to store, with what the scrape knows about how it was obtained."""

    record: CallRecord
    listing_hash: str | None = None
    details_fetched: bool = False


@dataclass(frozen=True)
class CallScope:
    """Which stored calls a complete fetch speaks for, so which may be marked missing.

    None means "any". A scrape of open and forthcoming Horizon topics says nothing about a
    call that has since closed, nor about a demo call.
    """

    sources: frozenset[str] = frozenset({"portal"})
    programmes: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    types: frozenset[str] | None = None

    def covers(self, call: Call, status: str | None) -> bool:
        return (
            call.source in self.sources
            and (self.programmes is None or (call.programme or "") in self.programmes)
            and (self.statuses is None or status in self.statuses)
            and (self.types is None or str((call.extra or {}).get("type") or "1") in self.types)
        )


def utc_naive(value: datetime | None) -> datetime:
    """`now` as the database stores times: naive UTC."""
    value = value or datetime.now(UTC)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def store_calls(
    db: Database,
    records: Iterable[CallRecord],
    now: datetime | None = None,
    complete: bool = False,
    *,
    scope: CallScope | None = None,
    batch_size: int | None = 200,
) -> IngestSummary:
    """Upsert records by identifier (see the module docstring).

    `complete=True` says `records` is everything the source has in `scope` (default: every
    stored call of the records' source): the others get marked missing. `batch_size=None`
    writes everything in one transaction.
    """
    items = [StoreItem(record) for record in records]
    if complete and scope is None:
        scope = CallScope(sources=frozenset({i.record.source for i in items} or {"portal"}))
    return store_items(db, items, now, complete=complete, scope=scope, batch_size=batch_size)


def store_items(
    db: Database,
    items: Sequence[StoreItem],
    now: datetime | None = None,
    *,
    complete: bool = False,
    scope: CallScope | None = None,
    seen: Iterable[str] = (),
    kept: Iterable[str] = (),
    batch_size: int | None = 200,
    summary: IngestSummary | None = None,
) -> IngestSummary:
    """store_calls with scrape bookkeeping. `seen` lists identifiers the fetch returned
    unchanged (not re-sent as items): they count as present and unchanged. `kept` lists
    identifiers the fetch returned but could not complete: present, left as stored."""
    now = utc_naive(now)
    summary = summary or IngestSummary()
    summary.complete = complete
    unique: dict[str, StoreItem] = {}
    for item in items:
        unique[item.record.identifier] = item
    touched = [i for i in seen if i not in unique]
    left = [i for i in kept if i not in unique]
    present = set(unique) | set(touched) | set(left)
    if batch_size is None:
        with db.session() as session:
            _write_items(session, list(unique.values()), now, summary)
            _touch(session, touched, now, summary, count=True)
            _touch(session, left, now, summary, count=False)
            _refresh(session, now, present, complete, scope, summary)
        return summary
    for batch in _chunks(list(unique.values()), batch_size):
        with db.session() as session:
            _write_items(session, batch, now, summary)
    for names, count in [(c, True) for c in _chunks(touched, batch_size)] + [
            (c, False) for c in _chunks(left, batch_size)]:
        with db.session() as session:
            _touch(session, names, now, summary, count=count)
    with db.session() as session:
        _refresh(session, now, present, complete, scope, summary)
    return summary


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _load(session: Session, identifiers: Sequence[str]) -> dict[str, Call]:
    if not identifiers:
        return {}
    rows = session.scalars(select(Call).where(Call.identifier.in_(identifiers)))
    return {call.identifier: call for call in rows}


def _write_items(session: Session, items: list[StoreItem], now: datetime,
                 summary: IngestSummary) -> None:
    existing = _load(session, [i.record.identifier for i in items])
    for item in items:
        record = item.record
        values = row_values(record)
        digest = content_hash(record)
        call = existing.get(record.identifier)
        if call is None:
            status = derive_status(record.opening_date, record.deadlines, now) or record.status
            session.add(Call(
                **values, status=status, next_deadline=next_deadline(record.deadlines, now),
                content_hash=digest, listing_hash=item.listing_hash, first_seen=now,
                last_seen=now, details_fetched_at=now if item.details_fetched else None,
            ))
            summary.new += 1
            continue
        if call.content_hash != digest:
            _record_changes(session, call, values, now)
            for name, value in values.items():
                setattr(call, name, value)
            call.content_hash = digest
            call.last_seen = now
            summary.changed += 1
        else:
            summary.unchanged += 1
            _bump_last_seen(call, now)
        if item.listing_hash is not None and call.listing_hash != item.listing_hash:
            call.listing_hash = item.listing_hash
        if item.details_fetched:
            call.details_fetched_at = now
        _seen_again(session, call, now, summary)


def _touch(session: Session, identifiers: list[str], now: datetime, summary: IngestSummary,
           *, count: bool) -> None:
    for call in _load(session, identifiers).values():
        summary.unchanged += count
        _bump_last_seen(call, now)
        _seen_again(session, call, now, summary)


def _bump_last_seen(call: Call, now: datetime) -> None:
    if call.last_seen is None or now - call.last_seen >= LAST_SEEN_STEP:
        call.last_seen = now


def _seen_again(session: Session, call: Call, now: datetime, summary: IngestSummary) -> None:
    if call.missing_since is not None:
        session.add(CallChange(call_id=call.id, changed_at=now, field="missing",
                               old_value=call.missing_since.isoformat(), new_value=None))
        call.missing_since = None
        summary.reappeared += 1


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _record_changes(session: Session, call: Call, values: dict[str, Any], now: datetime) -> None:
    for name in TRACKED_FIELDS:
        old, new = getattr(call, name), values[name]
        if _as_text(old) != _as_text(new):
            session.add(CallChange(call_id=call.id, changed_at=now, field=name,
                                   old_value=_as_text(old), new_value=_as_text(new)))


def _refresh(
    session: Session,
    now: datetime,
    present: set[str],
    complete: bool,
    scope: CallScope | None,
    summary: IngestSummary,
) -> None:
    """Statuses and next deadlines as of `now` for every call; missing marks if complete."""
    session.flush()
    columns = load_only(Call.id, Call.identifier, Call.opening_date, Call.deadlines, Call.status,
                        Call.next_deadline, Call.missing_since, Call.source, Call.programme,
                        Call.extra)
    for call in session.scalars(select(Call).options(columns)):
        deadlines = deadlines_from_json(call.deadlines)
        status = derive_status(call.opening_date, deadlines, now) or call.status
        if status != call.status:
            if status == CLOSED:
                summary.closed += 1
            call.status = status
        upcoming = next_deadline(deadlines, now)
        if upcoming != call.next_deadline:
            call.next_deadline = upcoming
        if (complete and scope is not None and call.missing_since is None
                and call.identifier not in present and scope.covers(call, status)):
            call.missing_since = now
            session.add(CallChange(call_id=call.id, changed_at=now, field="missing",
                                   old_value=None, new_value=now.isoformat()))
            summary.missing += 1

