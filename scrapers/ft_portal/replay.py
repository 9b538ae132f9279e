"""Keep every raw response (`--save DIR`) and serve them again offline (`--replay DIR`).

Both are session-like adapters placed under `PoliteSession`, so a replayed run goes through
the very same fetch, parse and store code as a live one. A response is filed under a
deterministic name derived from the request (method, URL path, query parameters and the
multipart parts), so recording the same scrape twice overwrites rather than piles up, and
the host is not part of the key: a scrape recorded against a mirror replays anywhere.
`index.jsonl` lists every response received, in order, failed ones included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from scrapers.ft_portal.errors import ReplayMissing
from scrapers.ft_portal.fetch import HTTPSession

INDEX = "index.jsonl"
# statuses worth serving again: a body, or the portal's "no such topic"
_REPLAYABLE = (200, 404)


def request_key(
    method: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    files: Mapping[str, tuple[str, str, str]] | None = None,
) -> str:
    """sha256 of the request's meaningful parts (not the host, not the headers)."""
    canonical = json.dumps(
        {
            "method": method.upper(),
            "path": urlsplit(url).path.rstrip("/"),
            "params": sorted((str(k), str(v)) for k, v in (params or {}).items()),
            "parts": sorted((name, part[1]) for name, part in (files or {}).items()),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _file_name(key: str, url: str) -> str:
    kind = "topic" if "/topicDetails/" in url else "search"
    return f"{kind}-{key[:24]}.json"


class RecordingSession:
    """Passes requests to a real session and writes each answer into `directory`."""

    def __init__(self, directory: Path, session: HTTPSession | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.session = session if session is not None else requests.Session()

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        key = request_key(method, url, kwargs.get("params"), kwargs.get("files"))
        entry: dict[str, Any] = {
            "key": key, "method": method.upper(), "url": urlsplit(url).path,
            "params": dict(kwargs.get("params") or {}),
            "at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            entry["error"] = type(exc).__name__
            self._log(entry)
            raise
        entry["status"] = response.status_code
        if response.status_code in _REPLAYABLE:
            name = _file_name(key, url)
            (self.directory / name).write_bytes(response.content)
            entry["file"] = name
        self._log(entry)
        return response

    def _log(self, entry: dict[str, Any]) -> None:
        with (self.directory / INDEX).open("a", encoding="utf-8") as index:
            index.write(json.dumps(entry, sort_keys=True) + "\n")


class ReplaySession:
    """Answers requests from a directory written by RecordingSession; never opens a socket.

    The last good answer recorded for a request is served (a retried request's final body).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        index = self.directory / INDEX
        if not index.is_file():
            raise ReplayMissing(
                f"{self.directory} has no {INDEX}: it is not a folder written by --save"
            )
        self._answers: dict[str, tuple[int, str | None]] = {}
        with index.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    entry = json.loads(line)
                except ValueError as exc:
                    raise ReplayMissing(f"{index}:{number}: not a JSON line ({exc})") from exc
                if entry.get("status") in _REPLAYABLE:
                    self._answers[entry["key"]] = (entry["status"], entry.get("file"))
        self.served = 0

    def __len__(self) -> int:
        return len(self._answers)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        key = request_key(method, url, kwargs.get("params"), kwargs.get("files"))
        if key not in self._answers:
            raise ReplayMissing(
                f"no saved response for {method.upper()} {urlsplit(url).path} "
                f"{dict(kwargs.get('params') or {})} in {self.directory}; record this scrape "
                "with --save first (same programmes, statuses and page size)",
                url=url,
            )
        status, name = self._answers[key]
        response = requests.Response()
        response.status_code = status
        response.url = url
        response.headers["Content-Type"] = "application/json"
        try:
            response._content = (self.directory / name).read_bytes() if name else b""
        except OSError as exc:
            raise ReplayMissing(
                f"{self.directory / str(name)}: listed in {INDEX} but cannot be read "
                f"({exc.strerror}); record the scrape again with --save", url=url,
            ) from exc
        self.served += 1
        return response
