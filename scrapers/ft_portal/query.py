"""The search request, built the way the portal's own front end builds it.

The search API takes a multipart/form-data POST whose parts are JSON documents, each sent
with `Content-Type: application/json`: `query` (the SEDIA query DSL: `bool` / `must` /
`should`, `terms`, `phrase`), `languages` and `sort`. Paging and the free text go in the
URL: `?apiKey=SEDIA&text=***&pageSize=N&pageNumber=N`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from scrapers.ft_portal.dates import CLOSED, FORTHCOMING, OPEN

SEARCH_PATH = "/search-api/prod/rest/search"
TOPIC_DETAILS_PATH = "/info/funding-tenders/opportunities/data/topicDetails"
PORTAL_TOPIC_URL = (
    "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/"
    "topic-details/{identifier}"
)
API_KEY = "SEDIA"

# frameworkProgramme ids of the programmes this project follows
PROGRAMMES = {"HORIZON": "43108390", "H2020": "31045243"}
# other ids met in real responses, so a stray record still gets a readable programme
KNOWN_PROGRAMME_IDS = {
    **{v: k for k, v in PROGRAMMES.items()},
    "43152860": "DIGITAL",
    "43251567": "CEF",
    "43251842": "EUAF",
    "43252476": "SMP",
}
STATUS_IDS = {FORTHCOMING: "31094501", OPEN: "31094502", CLOSED: "31094503"}
STATUS_NAMES = {v: k for k, v in STATUS_IDS.items()}
TYPE_GRANT = "1"  # call for proposals topic
TYPE_CASCADE = "8"  # cascade funding (open calls of funded projects, "competitive calls")

# The fields and boosts the portal front end searches a keyword in (captured request).
KEYWORD_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("identifier", 0, 1100),
    ("keywords", 0, 1000),
    ("tags", 0, 950),
    ("typesOfAction", 1, 900),
    ("title", 1, 200),
    ("callTitle", 1, 150),
    ("projectAcronym", 1, 140),
    ("projectName", 1, 130),
    ("description", 2, 100),
    ("furtherInformation", 1, 90),
    ("missionDescription", 1, 80),
    ("missionDetails", 1, 75),
    ("destinationDescription", 1, 70),
    ("destinationDetails", 1, 65),
    ("duration", 1, 60),
)

# A unique, unchanging key: pages cut at the same places however relevance moves.
STABLE_SORT = {"order": "ASC", "field": "identifier"}


@dataclass(frozen=True)
class SearchParts:
    """The JSON parts of one search request and the free-text URL parameter."""

    query: dict
    languages: list[str]
    sort: dict
    text: str = "***"

    def files(self) -> dict[str, tuple[str, str, str]]:
        """The multipart body as `requests` takes it: name -> (filename, content, type)."""
        return {
            name: ("blob", json.dumps(value, separators=(",", ":")), "application/json")
            for name, value in (("query", self.query), ("languages", self.languages),
                                ("sort", self.sort))
        }

    def params(self, page_number: int, page_size: int) -> dict[str, str]:
        return {
            "apiKey": API_KEY,
            "text": self.text,
            "pageSize": str(page_size),
            "pageNumber": str(page_number),
        }


def build_search_parts(
    *,
    programmes: Sequence[str] = ("HORIZON", "H2020"),
    statuses: Sequence[str] = (OPEN, FORTHCOMING),
    types: Sequence[str] = (TYPE_GRANT,),
    keyword: str | None = None,
    languages: Sequence[str] = ("en",),
    sort: dict | None = None,
) -> SearchParts:
    """The parts for grant topics of the given programmes (names or ids) and statuses.

    Without `keyword` the query is a plain filter; with one it is the front end's own
    keyword query: the filter, and the keyword as a phrase over the fields it boosts.
    """
    filters: list[dict] = [{"terms": {"type": sorted(set(types), key=int)}}]
    if statuses:
        filters.append({"terms": {"status": sorted({STATUS_IDS[s] for s in statuses})}})
    if programmes:
        ids = sorted({PROGRAMMES.get(p.upper(), p) for p in programmes})
        filters.append({"terms": {"frameworkProgramme": ids}})
    query: dict
    if keyword and keyword.strip():
        phrase = keyword.strip()
        should = [
            {"phrase": {"query": phrase, "field": field, "phraseSlop": slop, "boost": boost}}
            for field, slop, boost in KEYWORD_FIELDS
        ]
        query = {"bool": {"must": [{"bool": {"must": filters}}, {"bool": {"should": should}}]}}
    else:
        query = {"bool": {"must": filters}}
    # the front end keeps text=*** and puts the keyword in the query part
    return SearchParts(query=query, languages=list(languages), sort=dict(sort or STABLE_SORT))


def programme_name(programme_id: str | None, identifier: str | None = None) -> str | None:
    """A readable programme ("HORIZON") from its id, else from the identifier's prefix."""
    if programme_id and programme_id in KNOWN_PROGRAMME_IDS:
        return KNOWN_PROGRAMME_IDS[programme_id]
    if identifier and "-" in identifier:
        return identifier.split("-", 1)[0].upper()
    return programme_id


def search_url(base_url: str) -> str:
    """The search endpoint under a base URL (a mirror or a test server), or the URL itself."""
    base = base_url.rstrip("/")
    return base if base.endswith(SEARCH_PATH) else base + SEARCH_PATH


def topic_details_url(base_url: str, identifier: str) -> str:
    """The details file; the endpoint only answers the lower-cased identifier."""
    base = base_url.rstrip("/")
    if not base.endswith("/topicDetails"):
        base += TOPIC_DETAILS_PATH
    return f"{base}/{identifier.lower()}.json"


def portal_topic_url(identifier: str) -> str:
    return PORTAL_TOPIC_URL.format(identifier=identifier)
