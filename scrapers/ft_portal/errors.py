"""What can go wrong when reading the Funding & Tenders portal.

PortalError
├── PortalUnreachable   connection refused, reset or timed out on every attempt
├── PortalHTTPError     an error status on every attempt (429, 5xx, 4xx)
│   └── TopicNotFound   the topic-details endpoint has no file for this identifier (404)
├── PortalBadResponse   the body is not the JSON the portal sends (truncated, HTML error page)
└── ReplayMissing       replaying saved responses, and this request was never saved
"""

from __future__ import annotations


class PortalError(Exception):
    """Base class; `str(error)` says which request failed and why."""

    def __init__(self, message: str, *, url: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class PortalUnreachable(PortalError):
    pass


class PortalHTTPError(PortalError):
    def __init__(self, message: str, *, status: int, url: str = "", attempts: int = 1) -> None:
        super().__init__(message, url=url, attempts=attempts)
        self.status = status


class TopicNotFound(PortalHTTPError):
    pass


class PortalBadResponse(PortalError):
    pass


class ReplayMissing(PortalError):
    pass
