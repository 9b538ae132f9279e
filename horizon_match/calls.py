"""Reading stored calls: list with filters, show one, export all.

Statuses and next deadlines are worked out from the dates as of `now` when listing, so a
list is right even when the last scrape is a few days old.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, or_, select

from horizon_match.call_files import write_csv, write_jsonl
from horizon_match.call_records import deadlines_from_json, record_from_row
from horizon_match.call_store import utc_naive
from horizon_match.db import Database
from horizon_match.errors import ConfigError, NotFoundError
from models import Call, CallChange
from scrapers.ft_portal import STATUSES, derive_status, next_deadline, type_of_action_code

BRUSSELS = ZoneInfo("Europe/Brussels")

EXPORT_FORMATS = ("jsonl", "csv")


@dataclass(frozen=True)
class CallFilter:
    status: str | None = None
    deadline_before: datetime | None = None  # next deadline strictly before
    deadline_after: datetime | None = None  # next deadline on or after
    programme: str | None = None
    text: str | None = None  # in identifier, title, description or keywords
    include_missing: bool = True
    limit: int | None = None


def _matching(db: Database, filters: CallFilter, now: datetime) -> list[Call]:
    if filters.status is not None and filters.status not in STATUSES:
        raise ConfigError(f"unknown status {filters.status!r}; use {', '.join(STATUSES)}")
    query = select(Call).order_by(Call.identifier)
    if filters.programme:
        query = query.where(func.upper(Call.programme) == filters.programme.upper())
    if not filters.include_missing:
        query = query.where(Call.missing_since.is_(None))
    if filters.text:
        # % and _ in the text are letters to look for, not LIKE wildcards
        escaped = filters.text.lower().replace("\\", "\\\\").replace("%", "\\%")
        like = "%" + escaped.replace("_", "\\_") + "%"
        query = query.where(or_(*(
            func.lower(column).like(like, escape="\\")
            for column in (Call.identifier, Call.title, Call.call_title, Call.description,
                           cast(Call.keywords, String))
        )))
    with db.session() as session:
        calls = list(session.scalars(query))
    out = []
    for call in calls:
        deadlines = deadlines_from_json(call.deadlines)
        status = derive_status(call.opening_date, deadlines, now) or call.status
        upcoming = next_deadline(deadlines, now)
        if filters.status and status != filters.status:
            continue
        if filters.deadline_before and not (upcoming and upcoming < filters.deadline_before):
            continue
        if filters.deadline_after and not (upcoming and upcoming >= filters.deadline_after):
            continue
        call.status, call.next_deadline = status, upcoming  # as of now; never flushed
        out.append(call)
    out.sort(key=lambda c: (c.next_deadline is None, c.next_deadline or now, c.identifier))
    return out[: filters.limit] if filters.limit else out


def list_calls(
    db: Database, filters: CallFilter = CallFilter(), now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows for a table: identifier, status, deadline, programme, type, budget, title."""
    now = utc_naive(now)
    rows = []
    for call in _matching(db, filters, now):
        status = call.status or "?"
        if call.missing_since is not None:
            status += f" (gone {call.missing_since:%Y-%m-%d})"
        rows.append({
            "identifier": call.identifier,
            "status": status,
            "deadline": f"{call.next_deadline:%Y-%m-%d}" if call.next_deadline else "",
            "programme": call.programme or "",
            "type": type_of_action_code(call.type_of_action)
            or textwrap.shorten(call.type_of_action or "", 24, placeholder="…"),
            "budget": _money(call.budget),
            "title": textwrap.shorten(call.title, 70, placeholder="…"),
        })
    return rows


def _money(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 1e6:
        return f"€{value / 1e6:.1f}M"
    return f"€{value:,.0f}"


def show_call(db: Database, identifier: str, now: datetime | None = None) -> str:
    """Everything stored about one call, as readable text."""
    now = utc_naive(now)
    with db.session() as session:
        call = session.scalar(select(Call).where(
            func.lower(Call.identifier) == identifier.strip().lower()))
        if call is None:
            raise NotFoundError(f"no call {identifier!r} is stored; see `horizon-match calls "
                                "list` (or scrape / import calls first)")
        changes = list(session.scalars(
            select(CallChange).where(CallChange.call_id == call.id).order_by(CallChange.id)))
    deadlines = deadlines_from_json(call.deadlines)
    status = derive_status(call.opening_date, deadlines, now) or call.status
    extra = call.extra or {}
    lines = [
        f"{call.identifier} — {call.title}",
        "",
        f"status:          {status} (as of {now:%Y-%m-%d})"
        + (f"; missing from the portal since {call.missing_since:%Y-%m-%d}"
           if call.missing_since else ""),
        f"programme:       {call.programme or '-'}",
        f"call:            {call.call_identifier or '-'} — {call.call_title or '-'}",
        f"type of action:  {call.type_of_action or '-'}",
        f"budget:          {_money(call.budget) or '-'}"
        + (f" ({extra['expected_grants']:.0f} grant(s) expected)"
           if extra.get("expected_grants") else ""),
        f"opens:           {call.opening_date:%Y-%m-%d %H:%M}" if call.opening_date
        else "opens:           -",
    ]
    for d in deadlines:
        # stored in UTC; the portal and applicants read them in Brussels time
        local = d.at.replace(tzinfo=UTC).astimezone(BRUSSELS)
        lines.append(f"deadline:        {local:%Y-%m-%d %H:%M} Brussels time ({d.at:%H:%M} UTC)"
                     + (f" (stage {d.stage})" if extra.get("deadline_model") == "two-stage"
                        else ""))
    lines += [
        f"destination:     {call.destination or '-'}",
        f"keywords:        {', '.join(call.keywords or []) or '-'}",
        f"url:             {call.url or '-'}",
    ]
    for link in extra.get("submission_links") or []:
        lines.append(f"submit:          {link.get('url')}")
    lines += [
        f"source:          {call.source}; first seen {call.first_seen:%Y-%m-%d}, last seen "
        f"{call.last_seen:%Y-%m-%d}; details "
        + (f"read {call.details_fetched_at:%Y-%m-%d}" if call.details_fetched_at
           else "not read"),
        "",
        "Description",
        "",
        call.description or "(none)",
    ]
    if call.conditions:
        lines += ["", "Conditions", "", call.conditions]
    if changes:
        lines += ["", "Changes", ""]
        for change in changes:
            lines.append(f"{change.changed_at:%Y-%m-%d %H:%M}  {change.field}: "
                         f"{_brief(change.old_value)} -> {_brief(change.new_value)}")
    return "\n".join(lines)


def _brief(value: str | None) -> str:
    return "-" if value is None else textwrap.shorten(value, 80, placeholder="…")


def export_calls(
    db: Database,
    out: TextIO,
    fmt: str = "jsonl",
    filters: CallFilter = CallFilter(),
    now: datetime | None = None,
) -> int:
    """Write the stored calls as normalized JSONL (re-importable) or CSV; returns the count."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use {' or '.join(EXPORT_FORMATS)}")
    now = utc_naive(now)
    records = [record_from_row(call) for call in _matching(db, filters, now)]
    return write_jsonl(records, out) if fmt == "jsonl" else write_csv(records, out, now)
