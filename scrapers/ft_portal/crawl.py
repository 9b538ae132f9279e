"""Walking every page of a search, and knowing whether the walk saw everything.

The index changes while we page through it (topics published, statuses flipped), and a
relevance sort reshuffles between requests, so a naive walk can skip a topic or see one
twice. The crawl therefore sorts on the identifier (stable, unique), and checks each pass:
- `totalResults` must not change between pages;
- the rows received must add up to `totalResults`;
- no page may repeat topics of an earlier page (a partial repeat means the order moved;
  a page made only of already-seen topics is asked again before giving up on it).
A pass that fails a check is followed by another (up to `max_passes`); records of all
passes are merged. Only a clean pass makes the crawl `complete`, and only a complete crawl
may be used to conclude that a stored call disappeared from the portal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from models.records import CallRecord
from scrapers.ft_portal.errors import PortalBadResponse, PortalError
from scrapers.ft_portal.fetch import HTTPSession, PoliteSession, fetch_search_page, polite
from scrapers.ft_portal.parse import combine_digests, merge_duplicates, parse_search_results
from scrapers.ft_portal.query import TYPE_CASCADE, SearchParts


# A sanity bound: Horizon Europe and Horizon 2020 together have a few thousand topics per
# status; a search claiming hundreds of thousands (the whole index) was not filtered.
MAX_PAGES = 500


@dataclass
class SearchCrawl:
    records: dict[str, CallRecord] = field(default_factory=dict)
    # listing digest of every topic seen (all its rows); topics whose digest is the known
    # one (not in `records`); topics parsed without their HTML (known, but changed)
    digests: dict[str, str] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)
    without_html: set[str] = field(default_factory=set)
    total: int = 0
    pages: int = 0
    passes: int = 0
    complete: bool = False
    notes: list[str] = field(default_factory=list)
    # the error that stopped the crawl (after the fetcher's own retries), if any
    failure: PortalError | None = None


def crawl_search(
    session: HTTPSession | PoliteSession,
    base_url: str,
    parts: SearchParts,
    *,
    page_size: int = 100,
    languages: Sequence[str] | None = ("en",),
    max_passes: int = 3,
    repeat_retries: int = 2,
    known: Mapping[str, str] | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> SearchCrawl:
    """Fetch and parse every page; see the module docstring for the checks.

    `known` maps keys to the listing digest already stored: such topics are parsed without
    their HTML (the costly part), and when their digest is unchanged they are reported in
    `unchanged` instead of `records`. `on_page(page_number, expected_pages)` is called
    after each page (for progress). Never raises for a failed page: the crawl stops,
    `failure` says why, `complete` is False.
    """
    known = known or {}
    crawl = _crawl(polite(session), base_url, parts, page_size, languages, max_passes,
                   repeat_retries, known, on_page)
    for key, record in list(crawl.records.items()):
        if key in known:
            if known[key] == crawl.digests.get(key):
                crawl.unchanged.add(key)
                del crawl.records[key]
            elif str(record.extra.get("type")) != TYPE_CASCADE:
                crawl.without_html.add(key)
    return crawl


def _crawl(
    client: PoliteSession,
    base_url: str,
    parts: SearchParts,
    page_size: int,
    languages: Sequence[str] | None,
    max_passes: int,
    repeat_retries: int,
    known: Mapping[str, str],
    on_page: Callable[[int, int], None] | None,
) -> SearchCrawl:
    crawl = SearchCrawl()
    previous_overlap: frozenset[str] | None = None
    while crawl.passes < max_passes:
        crawl.passes += 1
        result = _one_pass(client, base_url, parts, page_size, languages, repeat_retries,
                           known, crawl, on_page)
        if crawl.failure is not None:
            return crawl
        # The same topics straddling the same page border twice, with the count stable,
        # are duplicates in the index itself (they exist), not a moving order.
        if result.clean or (result.overlap_only and result.overlap == previous_overlap):
            crawl.complete = True
            return crawl
        previous_overlap = result.overlap if result.overlap_only else None
        crawl.notes.append(f"pass {crawl.passes} was not consistent; paging through again")
    crawl.notes.append(
        f"the result list kept changing over {max_passes} passes; no call will be marked "
        "missing from this scrape"
    )
    return crawl


@dataclass
class _Pass:
    clean: bool = True
    # overlapping identifiers were the only anomaly of the pass
    overlap_only: bool = False
    overlap: frozenset[str] = frozenset()


def _one_pass(
    client: PoliteSession,
    base_url: str,
    parts: SearchParts,
    page_size: int,
    languages: Sequence[str] | None,
    repeat_retries: int,
    known: Mapping[str, str],
    crawl: SearchCrawl,
    on_page: Callable[[int, int], None] | None,
) -> _Pass:
    seen: set[str] = set()
    overlap: set[str] = set()
    totals: set[int] = set()
    records: dict[str, CallRecord] = {}
    row_digests: dict[str, list[str]] = {}
    rows = 0
    other_problem = False
    number = 1
    try:
        while True:
            for attempt in range(repeat_retries + 1):
                payload = fetch_search_page(client, base_url, parts, number, page_size)
                page = parse_search_results(payload, languages=languages, without_html=known)
                repeated = number > 1 and bool(page.identifiers) and seen.issuperset(
                    page.identifiers
                )
                if not repeated:
                    break
            if repeated:
                crawl.notes.append(f"page {number} kept repeating earlier results")
                other_problem = True
            else:
                found = seen.intersection(page.identifiers)
                if found:
                    crawl.notes.append(f"page {number} repeats {len(found)} earlier result(s)")
                    overlap.update(found)
            crawl.pages += 1
            totals.add(page.total)
            crawl.total = page.total
            for key, digest in page.row_digests:
                row_digests.setdefault(key, []).append(digest)
            seen.update(page.identifiers)
            rows += page.rows
            for record in page.records:
                previous = records.get(record.identifier)
                records[record.identifier] = (
                    merge_duplicates(previous, record) if previous else record
                )
            expected = max(1, -(-page.total // page_size))
            if expected > MAX_PAGES:
                raise PortalBadResponse(
                    f"the search reports {page.total} results ({expected} pages of "
                    f"{page_size}): far more than there are Horizon topics, so the query's "
                    "filters were probably ignored; nothing beyond page 1 was read"
                )
            if on_page is not None:
                on_page(number, expected)
            if page.rows == 0 or number >= expected:
                break
            number += 1
    except PortalError as exc:
        crawl.failure = exc
    finally:
        # a later pass is the fresher copy; a failed pass still contributes what it read
        crawl.records.update(records)
        crawl.digests.update({k: combine_digests(d) for k, d in row_digests.items()})
    if crawl.failure is not None:
        return _Pass(clean=False)
    if len(totals) > 1:
        crawl.notes.append(f"totalResults changed during the pass: {sorted(totals)}")
        other_problem = True
    if rows != crawl.total:
        crawl.notes.append(f"received {rows} rows but totalResults says {crawl.total}")
        other_problem = True
    return _Pass(
        clean=not other_problem and not overlap,
        overlap_only=bool(overlap) and not other_problem,
        overlap=frozenset(overlap),
    )
