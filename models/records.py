"""Plain records passed between stages (scrapers -> ingest, files -> members).

They carry no database state: a parser returns them, the library stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class DeadlineRecord:
    """One submission deadline; multi-stage topics have several."""

    at: datetime
    stage: int = 1


@dataclass
class CallRecord:
    """A call topic as parsed from a source, before it is stored.

    `identifier` is the topic identifier (e.g. HORIZON-CL5-2026-D3-01-02), the key everything
    merges on.
    """

    identifier: str
    title: str
    call_identifier: str | None = None
    call_title: str | None = None
    programme: str | None = None  # e.g. "HORIZON" (43108390) or "H2020" (31045243)
    programme_id: str | None = None
    description: str = ""
    description_html: str = ""
    conditions: str = ""
    destination: str | None = None
    status: str | None = None  # derived from dates: open / forthcoming / closed
    opening_date: datetime | None = None
    deadlines: list[DeadlineRecord] = field(default_factory=list)
    type_of_action: str | None = None
    budget: float | None = None
    keywords: list[str] = field(default_factory=list)
    url: str | None = None
    source: str = "portal"
    publication_date: date | None = None
    extra: dict = field(default_factory=dict)
