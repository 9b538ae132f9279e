"""Call ingestion: scrape the Funding & Tenders portal, or import saved/normalized files.

    scrape(db, settings, options, progress)   search pages -> topic details -> store
    import_call_files(db, paths, now)          saved responses / normalized JSONL -> store
    store_calls(db, records, now, complete)    the store itself (horizon_match.call_store)

A scrape walks every search page (scrapers.ft_portal.crawl), then reads the topic details
only of topics that are new or whose listing changed since the last run (a listing hash is
kept per call), merges them and stores the lot. A topic whose details cannot be read keeps
its stored version and is counted as failed; a search that cannot be read completely stores
what it read, marks nothing missing and raises FetchError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests
from sqlalchemy import select

from horizon_match.call_files import read_call_files
from horizon_match.call_store import (
    CallScope,
    IngestSummary,
    StoreItem,
    store_calls,
    store_items,
    utc_naive,
)
from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.errors import ConfigError, FetchError
from horizon_match.progress import NULL_PROGRESS, Progress
from models import Call, CallRecord
from scrapers.ft_portal import (
    FORTHCOMING,
    OPEN,
    PROGRAMMES,
    STATUSES,
    TYPE_CASCADE,
    TYPE_GRANT,
    FetchPolicy,
    PoliteSession,
    PortalError,
    RecordingSession,
    ReplayMissing,
    ReplaySession,
    TopicNotFound,
    build_search_parts,
    crawl_search,
    derive_status,
    fetch_topic_details,
    merge_records,
    parse_topic_details,
)
from scrapers.ft_portal.fetch import HTTPSession
from scrapers.ft_portal.query import programme_name

__all__ = [
    "IngestSummary",
    "ScrapeOptions",
    "derive_status",
    "import_call_files",
    "scrape",
    "store_calls",
]


@dataclass(frozen=True)
class ScrapeOptions:
    programmes: tuple[str, ...] = ("HORIZON", "H2020")
    statuses: tuple[str, ...] = (OPEN, FORTHCOMING)
    cascade: bool = False  # also cascade-funding calls (type 8)
    keyword: str | None = None  # narrows the search; a narrowed scrape marks nothing missing
    page_size: int = 100
    delay: float = 0.5
    timeout: float = 30.0
    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 60.0
    save_dir: Path | None = None
    replay_dir: Path | None = None
    # one base for both endpoints (a mirror, a test server); else the settings' URLs
    base_url: str | None = None
    refresh_details: bool = False  # read every topic's details, changed or not
    now: datetime | None = None
    session: HTTPSession | None = None  # the HTTP session to use (default: requests)


def _check(options: ScrapeOptions) -> None:
    unknown = [p for p in options.programmes if p.upper() not in PROGRAMMES and not p.isdigit()]
    if unknown or not options.programmes:
        raise ConfigError(f"unknown programme(s) {unknown or '(none)'}; use "
                          f"{' / '.join(PROGRAMMES)} or a numeric frameworkProgramme id")
    bad = [s for s in options.statuses if s not in STATUSES]
    if bad or not options.statuses:
        raise ConfigError(f"unknown status(es) {bad or '(none)'}; use {', '.join(STATUSES)}")
    if options.save_dir and options.replay_dir:
        raise ConfigError("--save and --replay exclude each other: replaying reads a saved "
                          "folder, saving writes one")
    if options.replay_dir and not Path(options.replay_dir).is_dir():
        raise ConfigError(f"{options.replay_dir} is not a folder of saved responses; "
                          "record one with `calls scrape --save DIR`")
    if not 1 <= options.page_size <= 100:
        raise ConfigError(f"page size {options.page_size} is out of range; use 1 to 100")


def _session(options: ScrapeOptions) -> HTTPSession:
    try:
        if options.replay_dir:
            return ReplaySession(Path(options.replay_dir))
    except ReplayMissing as exc:
        raise ConfigError(str(exc)) from exc
    if options.save_dir:
        try:
            return RecordingSession(Path(options.save_dir), options.session)
        except OSError as exc:
            raise ConfigError(f"cannot create the --save folder {options.save_dir} "
                              f"({exc.strerror}); give a folder you can write to") from exc
    return options.session if options.session is not None else requests.Session()


def _endpoints(settings: Settings, options: ScrapeOptions) -> tuple[str, str]:
    if options.base_url:
        return options.base_url, options.base_url
    return settings.portal_base_url, settings.topic_details_base_url


def scrape(
    db: Database,
    settings: Settings,
    options: ScrapeOptions = ScrapeOptions(),
    progress: Progress = NULL_PROGRESS,
) -> IngestSummary:
    """Fetch the calls in scope from the portal and store them (see the module docstring)."""
    _check(options)
    now = utc_naive(options.now)
    search_base, details_base = _endpoints(settings, options)
    client = PoliteSession(_session(options), FetchPolicy(
        delay=options.delay, timeout=options.timeout, attempts=options.attempts,
        backoff=options.backoff, max_wait=options.max_wait,
    ))
    types = (TYPE_GRANT, TYPE_CASCADE) if options.cascade else (TYPE_GRANT,)
    parts = build_search_parts(programmes=options.programmes, statuses=options.statuses,
                               types=types, keyword=options.keyword)
    summary = IngestSummary()

    started = False

    def on_page(number: int, expected: int) -> None:
        nonlocal started
        if not started:
            progress.start("search pages", expected)
            started = True
        progress.advance()

    known = {} if options.refresh_details else _known_listings(db)
    crawl = crawl_search(client, search_base, parts, page_size=options.page_size,
                         known=known, on_page=on_page)
    if started:
        progress.finish()
    summary.pages = crawl.pages
    summary.notes.extend(crawl.notes)

    stored = _stored(db, list(crawl.records))
    items: list[StoreItem] = []
    unchanged = list(crawl.unchanged)
    kept: list[str] = []  # stored calls left as they are although the listing changed
    # (listing record, its digest, parsed without HTML: a stored call whose listing changed)
    wanted: list[tuple[CallRecord, str, bool]] = []
    for record in crawl.records.values():
        digest = crawl.digests.get(record.identifier)
        is_stored = record.identifier in stored
        if str(record.extra.get("type") or TYPE_GRANT) == TYPE_CASCADE:
            items.append(StoreItem(record, digest))  # no details exist for cascade calls
        elif crawl.failure is not None:
            # the portal is failing: keep new topics from the listing, leave stored ones be
            if is_stored:
                kept.append(record.identifier)
            else:
                items.append(StoreItem(record, None))
        else:
            wanted.append((record, digest or "", record.identifier in crawl.without_html))

    if wanted:
        progress.start("topic details", len(wanted))
        for record, digest, light in wanted:
            item = _with_details(client, details_base, record, digest, light, summary)
            if item is None:
                kept.append(record.identifier)
            else:
                items.append(item)
            progress.advance()
        progress.finish()

    scope = CallScope(
        sources=frozenset({"portal"}),
        programmes=frozenset(programme_name(PROGRAMMES.get(p.upper(), p))
                             for p in options.programmes),
        statuses=frozenset(options.statuses),
        types=frozenset(types),
    )
    complete = crawl.complete and crawl.failure is None and not options.keyword
    store_items(db, items, now, complete=complete, scope=scope, seen=unchanged, kept=kept,
                summary=summary)
    summary.requests = client.stats.requests
    if crawl.failure is not None:
        raise FetchError(
            f"the portal search could not be read completely: {crawl.failure}. Stored what "
            f"was read ({summary.describe()}); no call was marked missing and stored calls "
            "were kept as they were. Run `horizon-match calls scrape` again later."
        )
    if not complete and not options.keyword:
        summary.notes.append("the search was not consistent between pages; no call was "
                             "marked missing this time")
    return summary


def _known_listings(db: Database) -> dict[str, str]:
    """identifier -> listing digest of stored portal calls whose listing needs nothing more
    (details read, or a cascade call, which has none)."""
    with db.session() as session:
        rows = session.execute(
            select(Call.identifier, Call.listing_hash, Call.details_fetched_at, Call.extra)
            .where(Call.source == "portal", Call.listing_hash.is_not(None))
        )
        return {
            identifier: digest
            for identifier, digest, fetched, extra in rows
            if fetched is not None or str((extra or {}).get("type")) == TYPE_CASCADE
        }


def _stored(db: Database, identifiers: Sequence[str]) -> set[str]:
    out: set[str] = set()
    with db.session() as session:
        for start in range(0, len(identifiers), 500):
            chunk = identifiers[start:start + 500]
            out.update(session.scalars(select(Call.identifier).where(Call.identifier.in_(chunk))))
    return out


def _with_details(
    client: PoliteSession,
    base_url: str,
    record: CallRecord,
    digest: str,
    light: bool,
    summary: IngestSummary,
) -> StoreItem | None:
    """The record completed with its details; None to keep the stored version untouched.

    `light`: the listing was parsed without its HTML because the call is stored already;
    without details it is not worth storing over the stored version.
    """
    try:
        payload = fetch_topic_details(client, base_url, record.identifier)
        details = parse_topic_details(payload)
    except TopicNotFound:
        # the portal has no details file for it: the listing is all there is
        if light:
            summary.notes.append(f"{record.identifier}: no topic details (404); kept the "
                                 "stored version")
            return None
        return StoreItem(record, digest, details_fetched=True)
    except (PortalError, ValueError) as exc:
        summary.failed += 1
        summary.notes.append(f"{record.identifier}: details not read ({exc}); "
                             + ("kept the stored version" if light else "stored the listing"))
        # a new topic is stored from its listing, with no listing hash, so that the next
        # run asks for its details again
        return None if light else StoreItem(record, None)
    summary.details_fetched += 1
    return StoreItem(merge_records(record, details), digest, details_fetched=True)


def import_call_files(
    db: Database, paths: Sequence[Path], now: datetime | None = None
) -> IngestSummary:
    """Import saved search pages, topic-details files and normalized JSONL, in one transaction.

    Statuses are derived from the dates as of `now`. Imports never mark calls missing.
    """
    files = read_call_files([Path(p) for p in paths])
    items = [StoreItem(r, None, details_fetched=r.identifier in files.with_details)
             for r in files.records]
    summary = store_items(db, items, now, complete=False, batch_size=None)
    summary.notes.extend(files.notes)
    return summary
