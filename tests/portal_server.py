"""A local stand-in for the Funding & Tenders portal, serving the real saved responses.

A real HTTP server (http.server, in a thread, on 127.0.0.1) that answers the two endpoints
the scraper uses, the way the portal does:
- POST /search-api/prod/rest/search?apiKey=SEDIA&text=***&pageSize=N&pageNumber=N with the
  multipart JSON parts `query`, `languages`, `sort`: it applies the `terms` filters of the
  query (type, status, frameworkProgramme -- on the raw, possibly stale, values), the
  languages, the sort, and pages the result, answering in the portal's envelope;
- GET /info/funding-tenders/opportunities/data/topicDetails/<lower-cased id>.json.
The search results are the real rows of ../shared/fixtures/ft_portal; topics without a saved
details file get one built from the real open-topic details file with the listing's values.
Faults (error statuses, Retry-After, slow answers, cut bodies, repeated pages, changes of
the data between two pages) can be injected per request.
Used by tests/test_scrape_server.py and benchmarks/ingest_scrape.py.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_PATH = "/search-api/prod/rest/search"
DETAILS_PREFIX = "/info/funding-tenders/opportunities/data/topicDetails/"
SEARCH_FIXTURES = (
    "search_page_horizon_mixed_2026_trimmed_strings.json",
    "search_subset_horizon_eic_stale_open_2023.json",
    "search_trimmed_two_stage_and_prize.json",
    "search_trimmed_open_horizon_topics.json",
    "search_trimmed_cascade_type8.json",
    "search_full_page_unfiltered_bg_2025-05.json",
)
OPEN_DETAILS = "topicDetails_HORIZON-CL6-2026-01-CIRCBIO-07_open.json"
CLOSED_DETAILS = "topicDetails_SMP-COSME-2024-CLUSTER-01_closed.json"


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next `times` matching requests."""

    kind: str  # "search" or "details"
    page: int | None = None  # search: only this page number
    identifier: str | None = None  # details: only this topic
    status: int | None = None  # answer this status instead
    retry_after: str | None = None
    sleep: float = 0.0  # wait this long before answering (client timeouts)
    truncate: bool = False  # cut the JSON body in half
    repeat_previous: bool = False  # serve the previous page's results again
    before: Callable[[PortalServer], None] | None = None  # change the data first
    times: int = 1  # -1: every time

    def matches(self, kind: str, page: int | None, identifier: str | None) -> bool:
        return (
            self.times != 0
            and self.kind == kind
            and (self.page is None or self.page == page)
            and (self.identifier is None or self.identifier.lower() == (identifier or ""))
        )


@dataclass
class Hit:
    kind: str
    page: int | None
    identifier: str | None
    status: int


def _meta_values(result: dict, name: str) -> list[str]:
    value = result.get("metadata", {}).get(name)
    values = value if isinstance(value, list) else [value] if value is not None else []
    return [str(v) for v in values]


def _terms(query: Any) -> list[dict[str, list[str]]]:
    """Every `terms` clause of a SEDIA bool query (they all must hold)."""
    found: list[dict[str, list[str]]] = []
    if isinstance(query, dict):
        for key, value in query.items():
            if key == "terms" and isinstance(value, dict):
                found.append({k: [str(v) for v in vs] for k, vs in value.items()})
            elif key != "should":
                found.extend(_terms(value))
    elif isinstance(query, list):
        for item in query:
            found.extend(_terms(item))
    return found


def load_fixture_results(folder: Path) -> list[dict]:
    """The real search rows of every saved search page, in file order."""
    results: list[dict] = []
    for name in SEARCH_FIXTURES:
        payload = json.loads((folder / name).read_text(encoding="utf-8"))
        results.extend(payload["results"])
    for name in (OPEN_DETAILS, CLOSED_DETAILS):
        details = json.loads((folder / name).read_text(encoding="utf-8"))["TopicDetails"]
        results.append(listing_from_details(details))
    return results


def _epoch_ms_to_iso(value: str) -> str:
    when = datetime.fromtimestamp(int(value) / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def listing_from_details(details: dict) -> dict:
    """The search row the portal lists for a topic-details document (current generation)."""
    action = details["actions"][0]
    identifier = details["identifier"]
    return {
        "reference": f"{details['ccm2Id']}TOPICSen",
        "url": f"https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/"
               f"opportunities/topic-details/{identifier}",
        "language": "en",
        "summary": details["title"],
        "metadata": {
            "identifier": [identifier],
            "title": [details["title"]],
            "type": [str(details["type"])],
            "callIdentifier": [details["callIdentifier"]],
            "callTitle": [details["callTitle"]],
            "frameworkProgramme": [str(details["frameworkProgramme"]["id"])],
            "status": [str(action["status"]["id"])],
            "startDate": [_epoch_ms_to_iso(action["plannedOpeningDate"])],
            "deadlineDate": [_epoch_ms_to_iso(d) for d in action["deadlineDates"]],
            "deadlineModel": ["single-stage"],
            "typesOfAction": [action["types"][0]["typeOfAction"].split(" ", 1)[1]],
            "keywords": list(details.get("keywords") or []),
            "DATASOURCE": ["SEDIA"],
            "language": ["en"],
        },
    }


def _to_epoch_ms(value: str) -> str:
    text = value.replace("+0000", "+00:00")
    return str(int(datetime.fromisoformat(text).timestamp() * 1000))


def details_from_listing(result: dict, template: dict) -> dict:
    """A topic-details document for a listed topic, shaped like the real open-topic file."""
    meta = result["metadata"]
    identifier = meta["identifier"][0]
    details = copy.deepcopy(template["TopicDetails"])
    old = details["identifier"]
    details = json.loads(json.dumps(details).replace(old, identifier))
    details["title"] = meta.get("title", [result.get("summary")])[0]
    details["callIdentifier"] = (meta.get("callIdentifier") or [identifier])[0]
    details["callTitle"] = (meta.get("callTitle") or [""])[0]
    action = details["actions"][0]
    if meta.get("startDate"):
        action["plannedOpeningDate"] = _to_epoch_ms(meta["startDate"][0])
    action["deadlineDates"] = [_to_epoch_ms(d) for d in meta.get("deadlineDate", [])]
    label = (meta.get("typesOfAction") or ["HORIZON Research and Innovation Actions"])[0]
    action["types"][0]["typeOfAction"] = label
    description = (meta.get("descriptionByte") or [None])[0]
    if description:
        details["description"] = description
    return {"TopicDetails": details}


def synthetic_results(base: list[dict], count: int) -> list[dict]:
    """`count` English grant rows cloned from the real ones, each under a new identifier."""
    pool = [r for r in base if r.get("language", "en") == "en"
            and _meta_values(r, "type") == ["1"]
            and _meta_values(r, "frameworkProgramme") == ["43108390"]]
    out = []
    for n in range(count):
        source = pool[n % len(pool)]
        old = source["metadata"]["identifier"][0]
        new = f"{old}-S{n:05d}"
        # the identifier also appears inside budgetOverview / actions strings: keep them agreeing
        clone = json.loads(json.dumps(source).replace(old, new))
        clone["reference"] = f"{9000000 + n}TOPICSen"
        out.append(clone)
    return out


class PortalServer:
    """Start with `with PortalServer(results, details) as server:`; `server.url` is the base."""

    def __init__(self, results: list[dict], details: dict[str, dict],
                 template: dict | None = None) -> None:
        self.results = list(results)
        self.details = {k.lower(): v for k, v in details.items()}
        self.template = template
        self.faults: list[Fault] = []
        self.hits: list[Hit] = []
        self.search_requests: list[dict[str, Any]] = []
        self._last_page_results: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @classmethod
    def from_fixtures(cls, folder: Path, synthetic: int | None = None) -> PortalServer:
        """The real rows and details; or, with `synthetic=N`, N Horizon topics cloned from
        them (for volume), each with details built from the real open-topic file."""
        results = load_fixture_results(folder)
        template = json.loads((folder / OPEN_DETAILS).read_text(encoding="utf-8"))
        if synthetic is not None:
            return cls(synthetic_results(results, synthetic), {}, template)
        details = {}
        for name in (OPEN_DETAILS, CLOSED_DETAILS):
            payload = json.loads((folder / name).read_text(encoding="utf-8"))
            details[payload["TopicDetails"]["identifier"]] = payload
        return cls(results, details, template)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PortalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- data helpers for tests --------------------------------------------------------

    def find(self, identifier: str) -> dict:
        return next(r for r in self.results if _meta_values(r, "identifier") == [identifier])

    def remove(self, identifier: str) -> None:
        self.results = [r for r in self.results if _meta_values(r, "identifier") != [identifier]]

    def count(self, kind: str) -> int:
        return sum(1 for h in self.hits if h.kind == kind)

    # --- serving ------------------------------------------------------------------------

    def _fault(self, kind: str, page: int | None, identifier: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(kind, page, identifier):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def _search(self, parts: dict[str, Any], page: int, size: int) -> list[dict] | dict:
        rows = self.results
        for clause in _terms(parts.get("query")):
            for name, values in clause.items():
                rows = [r for r in rows if set(_meta_values(r, name)) & set(values)]
        languages = parts.get("languages")
        if languages:
            rows = [r for r in rows if r.get("language", "en") in languages]
        sort = parts.get("sort") or {}
        if sort.get("field") not in (None, "relevance"):
            rows = sorted(rows, key=lambda r: (_meta_values(r, sort["field"]) or [""])[0],
                          reverse=sort.get("order") == "DESC")
        chunk = rows[(page - 1) * size: page * size]
        return {
            "apiVersion": "2.155", "terms": "***", "responseTime": 3,
            "totalResults": len(rows), "pageNumber": page, "pageSize": size,
            "sort": f"[{sort.get('field')}:{sort.get('order')}]",
            "groupByField": "sortStatus", "queryLanguage": {"language": "en",
                                                           "probability": 0.0},
            "bestBets": [], "results": chunk, "warnings": [],
        }

    def _topic(self, identifier: str) -> dict | None:
        if identifier in self.details:
            return self.details[identifier]
        if self.template is None:
            return None
        for row in self.results:
            ident = _meta_values(row, "identifier")
            if (ident and ident[0].lower() == identifier and _meta_values(row, "type") == ["1"]):
                return details_from_listing(row, self.template)
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                      kind: str = "", page: int | None = None,
                      identifier: str | None = None) -> None:
                server.hits.append(Hit(kind, page, identifier, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def _apply(self, fault: Fault | None, body: bytes, kind: str, page: int | None,
                       identifier: str | None) -> None:
                if fault is not None and fault.sleep:
                    time.sleep(fault.sleep)
                if fault is not None and fault.status:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._send(fault.status, b'{"error": "injected"}', headers, kind, page,
                               identifier)
                    return
                if fault is not None and fault.truncate:
                    body = body[: len(body) // 2]
                self._send(200, body, None, kind, page, identifier)

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                url = urlsplit(self.path)
                if url.path != SEARCH_PATH:
                    self._send(404, b"{}", kind="other")
                    return
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = _multipart_json(self.headers.get("Content-Type", ""), body)
                if (query.get("apiKey") != ["SEDIA"] or parts is None or "query" not in parts
                        or "languages" not in parts):
                    self._send(400, b'{"error": "bad search request"}', kind="search")
                    return
                page = int(query.get("pageNumber", ["1"])[0])
                size = int(query.get("pageSize", ["50"])[0])
                server.search_requests.append({"page": page, "size": size,
                                               "user_agent": self.headers.get("User-Agent"),
                                               **parts})
                fault = server._fault("search", page, None)
                if fault is not None and fault.before is not None:
                    fault.before(server)
                envelope = server._search(parts, page, size)
                if fault is not None and fault.repeat_previous:
                    envelope["results"] = server._last_page_results
                else:
                    server._last_page_results = envelope["results"]
                self._apply(fault, json.dumps(envelope).encode(), "search", page, None)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if not url.path.startswith(DETAILS_PREFIX) or not url.path.endswith(".json"):
                    self._send(404, b"{}", kind="other")
                    return
                identifier = url.path[len(DETAILS_PREFIX):-len(".json")]
                fault = server._fault("details", None, identifier)
                payload = server._topic(identifier) if identifier == identifier.lower() else None
                if payload is None:
                    # the real endpoint only knows lower-cased identifiers
                    self._send(404, b'{"error": "not found"}', kind="details",
                               identifier=identifier)
                    return
                self._apply(fault, json.dumps(payload).encode(), "details", None, identifier)

        return Handler


def _multipart_json(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The JSON parts of a multipart/form-data body; None if a part is not JSON."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_content_type() != "application/json":
            return None
        try:
            parts[str(name)] = json.loads(part.get_payload(decode=True))
        except ValueError:
            return None
    return parts
