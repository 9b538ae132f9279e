"""HTTP for the portal: polite, patient, and explicit about failure.

`PoliteSession` wraps any `requests`-like session (a real `requests.Session`, or the
recording / replaying adapters of scrapers.ft_portal.replay): it waits a configurable delay
between requests, sends a clear User-Agent and a timeout, and retries connection errors,
timeouts, 429 and 5xx answers and bodies that are not JSON (a truncated transfer) with
exponential backoff, honouring `Retry-After`. When every attempt failed it raises one of
scrapers.ft_portal.errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests

from scrapers.ft_portal.errors import (
    PortalBadResponse,
    PortalError,
    PortalHTTPError,
    PortalUnreachable,
    TopicNotFound,
)
from scrapers.ft_portal.query import SearchParts, search_url, topic_details_url

USER_AGENT = "horizon-match/0.1 (EU call ingestion for a technology club; python-requests)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HTTPSession(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response: ...


@dataclass(frozen=True)
class FetchPolicy:
    """How hard and how politely to ask. Seconds throughout."""

    delay: float = 0.5  # pause between two requests
    timeout: float = 30.0  # connect and read timeout of one request
    attempts: int = 4  # tries per request, the first included
    backoff: float = 1.0  # first wait before a retry; doubles each time
    max_wait: float = 60.0  # cap on one wait, Retry-After included
    user_agent: str = USER_AGENT


@dataclass
class FetchStats:
    requests: int = 0
    retries: int = 0
    waited: float = 0.0


class PoliteSession:
    """A session that paces, retries and decodes JSON (see the module docstring)."""

    def __init__(
        self,
        session: HTTPSession | None = None,
        policy: FetchPolicy = FetchPolicy(),
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session if session is not None else requests.Session()
        self.policy = policy
        self.stats = FetchStats()
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited += seconds
            self._sleep(seconds)

    def _pace(self) -> None:
        if self._last is not None:
            self._pause(self.policy.delay - (self._clock() - self._last))
        self._last = self._clock()

    def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, str, str]] | None = None,
        what: str = "request",
    ) -> Any:
        """The decoded JSON body of a 200 answer, after as many attempts as the policy allows."""
        policy = self.policy
        problem = ""
        failure: type[PortalError] = PortalUnreachable
        status = 0
        for attempt in range(1, policy.attempts + 1):
            self._pace()
            self.stats.requests += 1
            wait = min(policy.backoff * 2 ** (attempt - 1), policy.max_wait)
            try:
                response = self.session.request(
                    method, url, params=params, files=files,
                    headers={"User-Agent": policy.user_agent, "Accept": "application/json"},
                    timeout=policy.timeout,
                )
            except requests.Timeout:
                problem, failure = f"no answer within {policy.timeout:g} s", PortalUnreachable
            except requests.RequestException as exc:
                # refused, reset, or the body cut short (ChunkedEncodingError)
                problem, failure = f"connection failed ({_short(exc)})", PortalUnreachable
            else:
                status = response.status_code
                if status == 200:
                    try:
                        return json.loads(response.content)
                    except ValueError as exc:
                        problem = f"the body is not valid JSON ({exc}; truncated transfer?)"
                        failure = PortalBadResponse
                elif status == 404:
                    raise TopicNotFound(
                        f"{what}: {url} answered 404 Not Found", status=404, url=url,
                        attempts=attempt,
                    )
                elif status in RETRY_STATUSES:
                    problem, failure = f"HTTP {status}", PortalHTTPError
                    asked = _retry_after(response.headers.get("Retry-After"))
                    if asked is not None:
                        wait = min(asked, policy.max_wait)
                else:
                    raise PortalHTTPError(
                        f"{what}: {url} answered HTTP {status} ({_short(response.text)})",
                        status=status, url=url, attempts=attempt,
                    )
            if attempt < policy.attempts:
                self.stats.retries += 1
                self._pause(wait)
        message = f"{what}: {url} failed {policy.attempts} time(s), last: {problem}"
        if failure is PortalHTTPError:
            raise PortalHTTPError(message, status=status, url=url, attempts=policy.attempts)
        raise failure(message, url=url, attempts=policy.attempts)


def _short(value: object, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def polite(session: HTTPSession | PoliteSession | None) -> PoliteSession:
    return session if isinstance(session, PoliteSession) else PoliteSession(session)


def fetch_search_page(
    session: HTTPSession | PoliteSession,
    base_url: str,
    parts: SearchParts,
    page_number: int,
    page_size: int = 100,
) -> dict:
    """One page of search results, as the decoded JSON envelope."""
    payload = polite(session).request_json(
        "POST", search_url(base_url), params=parts.params(page_number, page_size),
        files=parts.files(), what=f"search page {page_number}",
    )
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        raise PortalBadResponse(
            f"search page {page_number}: the answer has no `results` list "
            f"(keys: {sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__})",
            url=search_url(base_url),
        )
    return payload


def fetch_topic_details(
    session: HTTPSession | PoliteSession, base_url: str, identifier: str
) -> dict:
    """The topicDetails document of one topic (the endpoint wants the lower-cased id)."""
    url = topic_details_url(base_url, identifier)
    payload = polite(session).request_json("GET", url, what=f"topic details of {identifier}")
    if not isinstance(payload, dict) or not isinstance(payload.get("TopicDetails"), dict):
        raise PortalBadResponse(
            f"topic details of {identifier}: the answer has no `TopicDetails` object", url=url
        )
    return payload
