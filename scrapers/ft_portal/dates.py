"""Dates as the portal writes them, and the status they imply.

The portal mixes four spellings of a date, sometimes inside one record:
ISO with a `+0000`/`+0200` offset ("2026-09-15T00:00:00.000+0000"), plain dates
("2026-09-15"), English long dates ("20 April 2022") and epoch milliseconds, as a number
or a string ("1789603200000"). Everything is returned as a naive UTC datetime, which is how
the database stores it.

Its `status` field is often stale (topics still "Open" two years after their last cut-off),
so the status is derived from the dates with `derive_status`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime

from models.records import DeadlineRecord

OPEN = "open"
FORTHCOMING = "forthcoming"
CLOSED = "closed"
STATUSES = (OPEN, FORTHCOMING, CLOSED)

_EPOCH_RE = re.compile(r"^-?\d{9,14}$")
# "+0200" -> "+02:00" so that fromisoformat understands it on every Python >= 3.11
_OFFSET_RE = re.compile(r"([+-]\d{2})(\d{2})$")
_TEXT_FORMATS = (
    "%d %B %Y",  # 20 April 2022
    "%d %b %Y",  # 20 Apr 2022
    "%B %d, %Y",  # April 20, 2022
    "%b %d, %Y %I:%M:%S %p",  # Apr 27, 2023 4:18:31 PM (callUpdates)
    "%d/%m/%Y",  # 19/01/2022
)


def _to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse_portal_datetime(value: object) -> datetime | None:
    """A portal date in any of its spellings -> naive UTC datetime; None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _to_naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if _EPOCH_RE.match(text):
        return _from_epoch(float(text))
    iso = text.replace("Z", "+00:00") if text.endswith("Z") else _OFFSET_RE.sub(r"\1:\2", text)
    try:
        return _to_naive_utc(datetime.fromisoformat(iso))
    except ValueError:
        pass
    for fmt in _TEXT_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _from_epoch(number: float) -> datetime | None:
    # Milliseconds since 1970 (the portal's choice); a 10-digit value is seconds.
    seconds = number / 1000 if abs(number) >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def deadlines_from_values(values: Sequence[object], *, staged: bool) -> list[DeadlineRecord]:
    """Deadline values -> sorted, de-duplicated records.

    `staged` (a two-stage topic) numbers them 1, 2, ...; cut-offs of a multiple cut-off call
    are not stages, so they all stay stage 1.
    """
    found: list[datetime] = []
    for value in values:
        parsed = parse_portal_datetime(value)
        if parsed is not None and parsed not in found:
            found.append(parsed)
    found.sort()
    return [DeadlineRecord(at=at, stage=(i + 1) if staged else 1) for i, at in enumerate(found)]


def derive_status(
    opening: datetime | None, deadlines: Sequence[DeadlineRecord | datetime], now: datetime
) -> str | None:
    """open / forthcoming / closed as of `now` (naive UTC), from the dates alone.

    Forthcoming until the opening date, open while some deadline is ahead, closed when every
    deadline has passed. A topic that has opened and has no deadline at all is open
    (continuously open calls); with neither date nothing can be said (None).
    """
    now = _to_naive_utc(now)
    times = [d.at if isinstance(d, DeadlineRecord) else d for d in deadlines]
    if opening is not None and opening > now:
        return FORTHCOMING
    if any(t > now for t in times):
        return OPEN
    if times:
        return CLOSED
    return OPEN if opening is not None else None


def next_deadline(
    deadlines: Sequence[DeadlineRecord | datetime], now: datetime
) -> datetime | None:
    """The first deadline after `now`, else the last one (when the call has closed)."""
    times = sorted(d.at if isinstance(d, DeadlineRecord) else d for d in deadlines)
    if not times:
        return None
    now = _to_naive_utc(now)
    return next((t for t in times if t > now), times[-1])
