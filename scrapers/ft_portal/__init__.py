"""The EU Funding & Tenders portal: search API and topic-details endpoint.

query  - the multipart search request, as the portal front end builds it
fetch  - a polite, retrying session; one search page; one topic's details
crawl  - every page of a search, with the checks that make "complete" mean complete
parse  - pure payload -> CallRecord parsers, merging duplicates and details
dates  - the portal's date spellings; status derived from the dates
cleaning - HTML -> clean text and sanitised HTML
replay - save every raw response; replay them offline through the same code
"""

from scrapers.ft_portal.cleaning import CleanHTML, clean_html
from scrapers.ft_portal.crawl import SearchCrawl, crawl_search
from scrapers.ft_portal.dates import (
    CLOSED,
    FORTHCOMING,
    OPEN,
    STATUSES,
    derive_status,
    next_deadline,
    parse_portal_datetime,
)
from scrapers.ft_portal.errors import (
    PortalBadResponse,
    PortalError,
    PortalHTTPError,
    PortalUnreachable,
    ReplayMissing,
    TopicNotFound,
)
from scrapers.ft_portal.fetch import (
    FetchPolicy,
    PoliteSession,
    fetch_search_page,
    fetch_topic_details,
)
from scrapers.ft_portal.parse import (
    SearchPage,
    merge_duplicates,
    merge_records,
    normalise_type_of_action,
    parse_search_page,
    parse_search_results,
    parse_topic_details,
    topic_budget,
    type_of_action_code,
)
from scrapers.ft_portal.query import (
    PROGRAMMES,
    TYPE_CASCADE,
    TYPE_GRANT,
    SearchParts,
    build_search_parts,
)
from scrapers.ft_portal.replay import RecordingSession, ReplaySession

__all__ = [
    "CLOSED",
    "FORTHCOMING",
    "OPEN",
    "PROGRAMMES",
    "STATUSES",
    "TYPE_CASCADE",
    "TYPE_GRANT",
    "CleanHTML",
    "FetchPolicy",
    "PoliteSession",
    "PortalBadResponse",
    "PortalError",
    "PortalHTTPError",
    "PortalUnreachable",
    "RecordingSession",
    "ReplayMissing",
    "ReplaySession",
    "SearchCrawl",
    "SearchPage",
    "SearchParts",
    "TopicNotFound",
    "build_search_parts",
    "clean_html",
    "crawl_search",
    "derive_status",
    "fetch_search_page",
    "fetch_topic_details",
    "merge_duplicates",
    "merge_records",
    "next_deadline",
    "normalise_type_of_action",
    "parse_portal_datetime",
    "parse_search_page",
    "parse_search_results",
    "parse_topic_details",
    "topic_budget",
    "type_of_action_code",
]
