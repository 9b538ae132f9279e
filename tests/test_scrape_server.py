"""End-to-end scrapes against a real local HTTP server serving the saved portal responses.

The server (tests/portal_server.py) filters, sorts and pages the real search rows like the
portal, serves topic details, and injects faults. Whatever happens, a stored call is never
lost or corrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import event, select

from cli import main
from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.errors import ConfigError, FetchError
from horizon_match.ingest import ScrapeOptions, scrape
from models import Call, CallChange

sys.path.insert(0, str(Path(__file__).parent))
from portal_server import Fault, PortalServer  # noqa: E402

AS_OF = datetime(2026, 6, 1)
# Horizon grant topics among the served fixtures (bg copies, SMP, cascade excluded);
# the server filters on the raw (stale) status like the portal, so closed ones come too
EXPECTED = 17


@pytest.fixture
def server(portal_fixtures: Path) -> Iterator[PortalServer]:
    with PortalServer.from_fixtures(portal_fixtures) as running:
        yield running


def options(server: PortalServer, **kw: object) -> ScrapeOptions:
    values: dict = dict(base_url=server.url, delay=0.0, page_size=5, now=AS_OF, backoff=0.01,
                        timeout=2.0)
    values.update(kw)
    return ScrapeOptions(**values)


def run(db: Database, server: PortalServer, **kw: object):  # type: ignore[no-untyped-def]
    return scrape(db, Settings(db_url=db.url), options(server, **kw))


def snapshot(db: Database) -> dict[str, tuple]:
    with db.session() as session:
        return {c.identifier: (c.content_hash, c.title, c.description, c.deadlines, c.budget,
                               c.missing_since) for c in session.scalars(select(Call))}


def count_writes(db: Database) -> list[int]:
    box = [0]

    def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            box[0] += 1

    event.listen(db.engine, "before_cursor_execute", seen)
    return box


def test_clean_scrape_then_unchanged_rescrape(db: Database, server: PortalServer) -> None:
    summary = run(db, server)
    assert summary.new == EXPECTED and summary.failed == 0 and summary.complete
    assert summary.details_fetched == EXPECTED
    calls = snapshot(db)
    assert len(calls) == EXPECTED
    assert "HORIZON-CL6-2026-01-CIRCBIO-07" in calls and "SMP-COSME-2024-CLUSTER-01" not in calls
    # the requests looked like the portal front end's
    request = server.search_requests[0]
    assert request["languages"] == ["en"] and request["size"] == 5
    assert request["sort"] == {"order": "ASC", "field": "identifier"}
    assert request["user_agent"].startswith("horizon-match/")
    assert all(h.identifier == h.identifier.lower() for h in server.hits if h.kind == "details")
    with db.session() as session:
        circbio = session.scalar(select(Call).where(
            Call.identifier == "HORIZON-CL6-2026-01-CIRCBIO-07"))
        assert circbio.budget == 12_000_000 and circbio.conditions
        assert circbio.extra["submission_links"] and circbio.status == "open"

    details_before = server.count("details")
    writes = count_writes(db)
    again = run(db, server)
    assert (again.new, again.changed, again.unchanged, again.failed) == (0, 0, EXPECTED, 0)
    assert server.count("details") == details_before  # no topic details fetched
    assert writes[0] == 0  # and nothing written
    assert snapshot(db) == calls


def test_transient_faults_are_retried(db: Database, server: PortalServer) -> None:
    server.faults = [
        Fault("search", page=1, status=500),
        Fault("search", page=2, status=429, retry_after="1"),
        Fault("search", page=3, sleep=2.5),  # longer than the client's timeout
        Fault("search", page=4, truncate=True),
        Fault("search", page=2, repeat_previous=True),
        Fault("details", identifier="horizon-cl5-2026-09-d4-03", status=503),
        Fault("details", identifier="horizon-cl5-2026-09-d4-08", truncate=True),
    ]
    summary = run(db, server, timeout=1.0)
    assert summary.new == EXPECTED and summary.failed == 0 and summary.complete
    assert all(f.times == 0 for f in server.faults)  # every fault was met
    # page 2: the 429, the repeat of page 1 (asked again at once), the good answer
    assert sum(1 for h in server.hits if h.kind == "search" and h.page == 2) >= 3
    statuses = [h.status for h in server.hits if h.kind == "search"]
    assert 500 in statuses and 429 in statuses


def test_failed_search_keeps_every_stored_call(db: Database, server: PortalServer) -> None:
    run(db, server)
    before = snapshot(db)
    server.remove("HORIZON-CL5-2026-09-D4-08")  # gone, but page 2 never arrives to tell
    server.find("HORIZON-CL5-2027-03-D5-05")["metadata"]["title"] = ["Changed title"]
    server.faults = [Fault("search", page=2, status=500, times=-1)]
    with pytest.raises(FetchError) as caught:
        run(db, server, attempts=2)
    message = str(caught.value)
    assert "search page 2" in message and "HTTP 500" in message
    assert "no call was marked missing" in message
    assert snapshot(db) == before


def test_details_failure_keeps_the_stored_version(db: Database, server: PortalServer) -> None:
    run(db, server)
    before = snapshot(db)
    row = server.find("HORIZON-CL5-2026-09-D4-03")
    row["metadata"]["deadlineDate"] = ["2026-10-20T00:00:00.000+0000"]
    server.faults = [Fault("details", identifier="horizon-cl5-2026-09-d4-03", status=500,
                           times=-1)]
    summary = run(db, server, attempts=2)
    assert summary.failed == 1 and summary.changed == 0
    assert snapshot(db) == before
    # next time the portal answers: the change lands, with its date
    server.faults = []
    later = datetime(2026, 6, 3)
    summary = run(db, server, now=later)
    assert (summary.changed, summary.details_fetched) == (1, 1)
    with db.session() as session:
        change = session.scalar(select(CallChange).where(CallChange.field == "deadlines"))
        assert change.changed_at == later and "2026-10-20" in change.new_value
        assert change.call.identifier == "HORIZON-CL5-2026-09-D4-03"


def test_disappeared_call_is_marked_not_deleted(db: Database, server: PortalServer) -> None:
    run(db, server)
    server.remove("HORIZON-CL5-2026-09-D4-08")
    later = datetime(2026, 6, 8)
    summary = run(db, server, now=later)
    assert summary.missing == 1 and summary.complete
    calls = snapshot(db)
    assert calls["HORIZON-CL5-2026-09-D4-08"][5] == later
    assert len(calls) == EXPECTED


def test_order_shift_between_pages_is_caught(db: Database, server: PortalServer) -> None:
    newcomer = json.loads(json.dumps(server.find("HORIZON-CL5-2026-09-D4-03")))
    newcomer["metadata"]["identifier"] = ["HORIZON-CL4-2026-NEW-01"]

    def publish(srv: PortalServer) -> None:
        srv.results.append(newcomer)  # sorts before page 2: every later row moves by one

    server.faults = [Fault("search", page=2, before=publish)]
    summary = run(db, server)
    assert summary.complete and summary.new == EXPECTED + 1
    assert any("totalResults changed" in note for note in summary.notes)


def test_persistently_repeated_page_marks_nothing_missing(
    db: Database, server: PortalServer
) -> None:
    run(db, server)
    server.faults = [Fault("search", page=3, repeat_previous=True, times=-1)]
    summary = run(db, server, now=datetime(2026, 6, 8))
    assert not summary.complete and summary.missing == 0
    assert all(v[5] is None for v in snapshot(db).values())


def test_save_then_replay_offline(db: Database, server: PortalServer, tmp_path: Path,
                                  portal_fixtures: Path) -> None:
    saved = tmp_path / "saved"
    first = run(db, server, save_dir=saved)
    assert (saved / "index.jsonl").is_file() and len(list(saved.glob("topic-*.json"))) == EXPECTED
    other = Database(f"sqlite:///{tmp_path / 'replayed.db'}")
    try:
        # no server involved: ReplaySession never opens a socket
        replayed = scrape(other, Settings(db_url=other.url), ScrapeOptions(
            replay_dir=saved, page_size=5, delay=0.0, now=AS_OF))
        assert (replayed.new, replayed.details_fetched) == (first.new, first.details_fetched)
        assert snapshot(other) == snapshot(db)
        with pytest.raises(FetchError) as caught:
            scrape(other, Settings(db_url=other.url), ScrapeOptions(
                replay_dir=saved, page_size=7, delay=0.0, now=AS_OF))
        assert "no saved response" in str(caught.value) and "--save" in str(caught.value)
        with pytest.raises(ConfigError):
            scrape(other, Settings(db_url=other.url), ScrapeOptions(
                replay_dir=tmp_path / "nothing-here", now=AS_OF))
    finally:
        other.close()


def test_cli_scrape_list_show_export(server: PortalServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    base = ["--db", url, "calls"]
    result = runner.invoke(main, base + ["scrape", "--base-url", server.url, "--delay", "0",
                                         "--page-size", "5", "--as-of", "2026-06-01",
                                         "--cascade"])
    assert result.exit_code == 0, result.output
    assert f"{EXPECTED + 1} new, 0 changed" in result.output  # + the Horizon cascade call
    assert "search: " in result.output and "complete" in result.output
    listed = runner.invoke(main, base + ["list", "--status", "open", "--as-of", "2026-06-01"])
    assert listed.exit_code == 0 and "HORIZON-CL6-2026-01-CIRCBIO-07" in listed.output
    assert "HORIZON-EIC-2023" not in listed.output
    shown = runner.invoke(main, base + ["show", "HORIZON-CL6-2026-01-CIRCBIO-07"])
    assert shown.exit_code == 0 and "€12.0M" in shown.output and "Conditions" in shown.output
    exported = runner.invoke(main, base + ["export", "--format", "jsonl", "-o",
                                           str(tmp_path / "calls.jsonl")])
    assert exported.exit_code == 0
    lines = (tmp_path / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == EXPECTED + 1
    assert json.loads(lines[0])["identifier"]
    server.faults = [Fault("search", page=1, status=503, times=-1)]
    failed = runner.invoke(main, base + ["scrape", "--base-url", server.url, "--delay", "0",
                                         "--retries", "1"])
    assert failed.exit_code == 1 and "HTTP 503" in failed.output
    assert isinstance(failed.exception, SystemExit), failed.exception  # not a crash
