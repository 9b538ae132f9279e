"""The normalized call record as a plain dict (the JSONL format), its hashes, its table row.

One JSON object per CallRecord, with the field names of models.records.CallRecord:
dates as ISO strings, deadlines as [{"at": ISO datetime, "stage": n}]. `record_from_dict`
is the validating reader used for imported files; `record_to_dict` the writer used by
export, and the canonical form the content hash is taken over.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from models import Call, CallRecord, DeadlineRecord
from scrapers.ft_portal import STATUSES, parse_portal_datetime

RECORD_FIELDS = tuple(f.name for f in fields(CallRecord))
# derived from the dates at store time, so not part of what the portal "said"
_NOT_HASHED = ("status",)
# record fields with no column of their own; they travel in Call.extra
_EXTRA_FIELDS = ("programme_id", "publication_date")
TEXT_FIELDS = ("description", "description_html", "conditions")
OPTIONAL_STR_FIELDS = ("call_identifier", "call_title", "programme", "programme_id",
                       "destination", "type_of_action", "url")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def deadlines_to_json(deadlines: list[DeadlineRecord]) -> list[dict[str, Any]]:
    return [{"at": d.at.isoformat(), "stage": d.stage} for d in deadlines]


def deadlines_from_json(values: list[dict[str, Any]] | None) -> list[DeadlineRecord]:
    out = []
    for value in values or []:
        at = parse_portal_datetime(value.get("at"))
        if at is not None:
            out.append(DeadlineRecord(at=at, stage=int(value.get("stage") or 1)))
    return out


def record_to_dict(record: CallRecord) -> dict[str, Any]:
    """The JSONL form of a record (field order as in CallRecord)."""
    out: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = getattr(record, name)
        if name == "deadlines":
            value = deadlines_to_json(value)
        elif isinstance(value, datetime | date):
            value = value.isoformat()
        out[name] = value
    return out


def _digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_hash(record: CallRecord) -> str:
    """sha256 over everything the source said about the call (not the derived status)."""
    data = record_to_dict(record)
    for name in _NOT_HASHED:
        data.pop(name, None)
    return _digest(data)


def row_values(record: CallRecord) -> dict[str, Any]:
    """Column values of a Call row for this record (status and bookkeeping excluded)."""
    extra = dict(record.extra)
    for name in _EXTRA_FIELDS:
        value = getattr(record, name)
        if value is not None:
            extra[name] = _iso(value) if isinstance(value, date) else value
    return {
        "identifier": record.identifier,
        "call_identifier": record.call_identifier,
        "call_title": record.call_title,
        "programme": record.programme,
        "title": record.title,
        "description": record.description or "",
        "description_html": record.description_html or "",
        "conditions": record.conditions or "",
        "destination": record.destination,
        "opening_date": record.opening_date,
        "deadlines": deadlines_to_json(record.deadlines),
        "type_of_action": record.type_of_action,
        "budget": record.budget,
        "keywords": list(record.keywords),
        "url": record.url,
        "source": record.source,
        "extra": extra,
    }


def record_from_row(call: Call) -> CallRecord:
    """The stored call as a record again (export, and the re-import round trip)."""
    extra = dict(call.extra or {})
    programme_id = extra.pop("programme_id", None)
    publication = extra.pop("publication_date", None)
    return CallRecord(
        identifier=call.identifier,
        title=call.title,
        call_identifier=call.call_identifier,
        call_title=call.call_title,
        programme=call.programme,
        programme_id=programme_id,
        description=call.description or "",
        description_html=call.description_html or "",
        conditions=call.conditions or "",
        destination=call.destination,
        status=call.status,
        opening_date=call.opening_date,
        deadlines=deadlines_from_json(call.deadlines),
        type_of_action=call.type_of_action,
        budget=call.budget,
        keywords=list(call.keywords or []),
        url=call.url,
        source=call.source,
        publication_date=date.fromisoformat(publication) if publication else None,
        extra=extra,
    )


# Text columns with a size (PostgreSQL enforces it, SQLite does not): a longer value is a
# problem of the file, reported before anything is written.
_SIZED_FIELDS = ("identifier", "call_identifier", "programme", "type_of_action", "url",
                 "source")


def length_problems(record: CallRecord) -> list[tuple[str, str]]:
    """(field, problem) for every value too long for its column in the calls table."""
    problems = []
    for name in _SIZED_FIELDS:
        value = getattr(record, name)
        limit = Call.__table__.c[name].type.length
        if isinstance(value, str) and limit and len(value) > limit:
            problems.append((name, f"{len(value)} characters, at most {limit} fit"))
    return problems


def record_from_dict(data: Any) -> tuple[CallRecord | None, list[tuple[str | None, str]]]:
    """Validate one JSONL object. Returns the record, or None and every (field, problem)."""
    if not isinstance(data, dict):
        return None, [(None, f"expected a JSON object, got {type(data).__name__}")]
    problems: list[tuple[str | None, str]] = []
    unknown = sorted(set(data) - set(RECORD_FIELDS))
    for name in unknown:
        problems.append((name, f"unknown field; known fields: {', '.join(RECORD_FIELDS)}"))
    values: dict[str, Any] = {}
    for name in ("identifier", "title"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append((name, "required, a non-empty string"))
        else:
            values[name] = value.strip()
    if len(values.get("identifier", "")) > 150:
        problems.append(("identifier", "longer than 150 characters"))
    for name in OPTIONAL_STR_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and name == "programme_id":
            value = str(value)
        if value is not None and not isinstance(value, str):
            problems.append((name, "must be a string or null"))
        else:
            values[name] = value or None
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            problems.append((name, "must be a string"))
        else:
            values[name] = value or ""
    status = data.get("status")
    if status is not None and status not in STATUSES:
        problems.append(("status", f"{status!r} is not one of {', '.join(STATUSES)} (or null)"))
    else:
        values["status"] = status
    source = data.get("source", "portal")
    if not isinstance(source, str) or not source.strip() or len(source) > 30:
        problems.append(("source", "must be a short non-empty string, e.g. portal or demo"))
    else:
        values["source"] = source.strip()
    opening = data.get("opening_date")
    if opening is not None:
        values["opening_date"] = parse_portal_datetime(opening)
        if values["opening_date"] is None:
            problems.append(("opening_date", f"{opening!r} is not an ISO date/datetime"))
    publication = data.get("publication_date")
    if publication is not None:
        parsed = parse_portal_datetime(publication)
        if parsed is None:
            problems.append(("publication_date", f"{publication!r} is not an ISO date"))
        else:
            values["publication_date"] = parsed.date()
    values["deadlines"] = _deadlines(data.get("deadlines"), problems)
    budget = data.get("budget")
    if budget is not None:
        try:
            values["budget"] = float(budget)
            if isinstance(budget, bool) or not math.isfinite(values["budget"]) or (
                    values["budget"] < 0):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(("budget", f"{budget!r} is not a non-negative number (EUR)"))
    keywords = data.get("keywords") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        problems.append(("keywords", "must be a list of strings"))
    else:
        values["keywords"] = [k.strip() for k in keywords if k.strip()]
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        problems.append(("extra", "must be a JSON object"))
    else:
        values["extra"] = extra
    if problems:
        return None, problems
    record = CallRecord(**values)
    too_long = length_problems(record)
    return (None, too_long) if too_long else (record, [])


def _deadlines(value: Any, problems: list[tuple[str | None, str]]) -> list[DeadlineRecord]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(("deadlines", 'must be a list of {"at": ISO datetime, "stage": n}'))
        return []
    out: list[DeadlineRecord] = []
    for n, item in enumerate(value):
        raw, stage = (item.get("at"), item.get("stage", 1)) if isinstance(item, dict) else (
            item, 1)
        at = parse_portal_datetime(raw)
        if at is None or not isinstance(stage, int) or isinstance(stage, bool) or stage < 1:
            problems.append((f"deadlines[{n}]", f'{item!r} is not {{"at": ISO datetime, '
                             '"stage": n >= 1}'))
            continue
        out.append(DeadlineRecord(at=at, stage=stage))
    return sorted(out, key=lambda d: (d.at, d.stage))
