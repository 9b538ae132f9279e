"""Storing calls: upsert, change history, disappearance, statuses, file import and export."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from horizon_match.call_store import CallScope, store_calls
from horizon_match.calls import CallFilter, export_calls, list_calls, show_call
from horizon_match.db import Database
from horizon_match.errors import NotFoundError, ValidationError
from horizon_match.ingest import import_call_files
from models import Call, CallChange, CallRecord, DeadlineRecord

T1 = datetime(2026, 6, 1, 8, 0)
T2 = datetime(2026, 6, 8, 8, 0)


def call(identifier: str, deadline: datetime = datetime(2026, 9, 15), **kw: object) -> CallRecord:
    values: dict = dict(
        identifier=identifier, title=f"Topic {identifier}", call_identifier="HORIZON-CL5-2026",
        programme="HORIZON", opening_date=datetime(2026, 5, 5),
        deadlines=[DeadlineRecord(deadline)], budget=5_000_000.0,
        description="Expected Outcome:\n\nBatteries.", keywords=["batteries"],
    )
    values.update(kw)
    return CallRecord(**values)


def stored(db: Database) -> dict[str, Call]:
    with db.session() as session:
        return {c.identifier: c for c in session.scalars(select(Call))}


def changes(db: Database) -> list[tuple[str, str, datetime]]:
    with db.session() as session:
        rows = session.scalars(select(CallChange).order_by(CallChange.id))
        return [(c.call.identifier, c.field, c.changed_at) for c in rows]


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements sent to the database."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.count += 1


def test_new_calls_are_stored_with_derived_status(db: Database) -> None:
    summary = store_calls(db, [call("A"), call("B", opening_date=datetime(2026, 7, 1)),
                               call("C", deadline=datetime(2026, 1, 1))], now=T1)
    assert (summary.new, summary.changed, summary.unchanged) == (3, 0, 0)
    calls = stored(db)
    assert {k: c.status for k, c in calls.items()} == {
        "A": "open", "B": "forthcoming", "C": "closed"}
    a = calls["A"]
    assert a.first_seen == a.last_seen == T1 and a.missing_since is None
    assert a.deadlines == [{"at": "2026-09-15T00:00:00", "stage": 1}]
    assert a.next_deadline == datetime(2026, 9, 15) and len(a.content_hash) == 64


def test_unchanged_store_writes_nothing(db: Database) -> None:
    store_calls(db, [call("A"), call("B")], now=T1)
    writes = WriteCounter(db)
    summary = store_calls(db, [call("A"), call("B")], now=T1.replace(hour=20))
    assert (summary.new, summary.changed, summary.unchanged) == (0, 0, 2)
    assert writes.count == 0
    # a day later last_seen moves on, and nothing else
    store_calls(db, [call("A"), call("B")], now=T2)
    assert writes.count >= 1 and stored(db)["A"].last_seen == T2
    assert changes(db) == []


def test_changed_deadline_and_budget_are_recorded_with_their_time(db: Database) -> None:
    store_calls(db, [call("A"), call("B")], now=T1)
    first_hash = stored(db)["A"].content_hash
    summary = store_calls(db, [call("A", deadline=datetime(2026, 10, 1), budget=6e6),
                               call("B")], now=T2)
    assert (summary.changed, summary.unchanged) == (1, 1)
    assert changes(db) == [("A", "deadlines", T2), ("A", "budget", T2)]
    a = stored(db)["A"]
    assert a.content_hash != first_hash and a.budget == 6e6
    assert a.next_deadline == datetime(2026, 10, 1) and a.first_seen == T1
    with db.session() as session:
        budget = session.scalar(select(CallChange).where(CallChange.field == "budget"))
        assert (budget.old_value, budget.new_value) == ("5000000", "6000000")


def test_complete_fetch_marks_missing_and_never_deletes(db: Database) -> None:
    store_calls(db, [call("A"), call("B")], now=T1)
    summary = store_calls(db, [call("A")], now=T2, complete=True)
    assert summary.missing == 1
    b = stored(db)["B"]
    assert b.missing_since == T2 and b.title == "Topic B"
    assert ("B", "missing", T2) in changes(db)
    back = store_calls(db, [call("A"), call("B")], now=datetime(2026, 6, 15), complete=True)
    assert back.reappeared == 1 and stored(db)["B"].missing_since is None


def test_partial_fetch_marks_nothing_missing(db: Database) -> None:
    store_calls(db, [call("A"), call("B")], now=T1)
    summary = store_calls(db, [call("A")], now=T2, complete=False)
    assert summary.missing == 0 and stored(db)["B"].missing_since is None


def test_scope_keeps_closed_and_other_sources_out_of_missing(db: Database) -> None:
    store_calls(db, [call("OPEN"), call("OLD", deadline=datetime(2026, 1, 1))], now=T1)
    store_calls(db, [call("DEMO", source="demo")], now=T1)
    scope = CallScope(programmes=frozenset({"HORIZON"}),
                      statuses=frozenset({"open", "forthcoming"}))
    summary = store_calls(db, [], now=T2, complete=True, scope=scope)
    calls = stored(db)
    assert summary.missing == 1 and calls["OPEN"].missing_since == T2
    assert calls["OLD"].missing_since is None and calls["DEMO"].missing_since is None


def test_statuses_follow_the_clock(db: Database) -> None:
    store_calls(db, [call("A"), call("B", deadline=datetime(2026, 12, 1))], now=T1)
    summary = store_calls(db, [], now=datetime(2026, 9, 20))
    calls = stored(db)
    assert summary.closed == 1 and calls["A"].status == "closed" and calls["B"].status == "open"
    assert calls["A"].next_deadline == datetime(2026, 9, 15)


def test_import_fixtures_and_reimport_is_idempotent(db: Database, portal_fixtures: Path) -> None:
    files = sorted(portal_fixtures.glob("search_*.json")) + sorted(
        portal_fixtures.glob("topicDetails_*.json"))
    summary = import_call_files(db, files, now=T1)
    calls = stored(db)
    assert summary.new == len(calls) == 22  # bg copies skipped, duplicates merged
    assert calls["HORIZON-CL6-2026-01-CIRCBIO-07"].details_fetched_at == T1
    assert calls["HORIZON-EIC-2023-ACCELERATORCHALLENGES-01"].status == "closed"
    again = import_call_files(db, files, now=T1)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 22)


def test_bad_jsonl_imports_nothing_and_names_every_problem(db: Database, tmp_path: Path) -> None:
    good = {"identifier": "X-1", "title": "Fine", "deadlines": [{"at": "2026-09-01T17:00:00",
                                                                 "stage": 1}]}
    bad = {"identifier": "X-2", "title": "", "budget": "lots", "colour": "red",
           "deadlines": [{"at": "soon"}]}
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        import_call_files(db, [path], now=T1)
    text = str(caught.value)
    for expected in (f"{path}:2: title:", f"{path}:2: budget:", f"{path}:2: colour:",
                     f"{path}:2: deadlines[0]:", f"{path}:3: not a JSON object"):
        assert expected in text
    assert stored(db) == {}


def test_jsonl_status_is_rederived_and_source_kept(db: Database, tmp_path: Path) -> None:
    rows = [
        {"identifier": "D-1", "title": "Demo", "source": "demo", "status": "open",
         "opening_date": "2026-01-10T00:00:00",
         "deadlines": [{"at": "2026-03-01T17:00:00", "stage": 1}]},
        {"identifier": "D-2", "title": "No dates", "source": "demo", "status": "forthcoming"},
    ]
    path = tmp_path / "demo.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    import_call_files(db, [path], now=T1)
    calls = stored(db)
    assert calls["D-1"].status == "closed" and calls["D-1"].source == "demo"
    assert calls["D-2"].status == "forthcoming"  # nothing to derive from: as given


def test_export_jsonl_round_trips(db: Database, portal_fixtures: Path, tmp_path: Path) -> None:
    import_call_files(db, sorted(portal_fixtures.glob("search_trimmed_*.json")), now=T1)
    out = io.StringIO()
    count = export_calls(db, out, "jsonl", now=T1)
    path = tmp_path / "calls.jsonl"
    path.write_text(out.getvalue(), encoding="utf-8")
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    summary = import_call_files(other, [path], now=T1)
    assert summary.new == count == 10
    again = io.StringIO()
    export_calls(other, again, "jsonl", now=T1)
    assert again.getvalue() == out.getvalue()
    other.close()
    csv_out = io.StringIO()
    export_calls(db, csv_out, "csv", CallFilter(status="open"), now=T1)
    assert csv_out.getvalue().startswith("identifier,title,status,")
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    assert rows and {r["status"] for r in rows} == {"open"}
    assert all(r["deadlines"] and r["next_deadline"] >= "2026-06-01" for r in rows)


def test_list_filters_and_show(db: Database) -> None:
    store_calls(db, [call("HORIZON-A", title="Solid-state batteries"),
                     call("HORIZON-B", deadline=datetime(2026, 12, 1)),
                     call("OTHER-C", programme="DIGITAL", deadline=datetime(2026, 1, 1))],
                now=T1)
    ids = lambda rows: [r["identifier"] for r in rows]  # noqa: E731
    assert ids(list_calls(db, CallFilter(status="open"), now=T1)) == ["HORIZON-A", "HORIZON-B"]
    assert ids(list_calls(db, CallFilter(deadline_before=datetime(2026, 10, 1),
                                         deadline_after=datetime(2026, 6, 1)), now=T1)) == [
        "HORIZON-A"]
    assert ids(list_calls(db, CallFilter(programme="digital"), now=T1)) == ["OTHER-C"]
    assert ids(list_calls(db, CallFilter(text="solid-state"), now=T1)) == ["HORIZON-A"]
    # status is worked out as of the given time, not as stored
    assert ids(list_calls(db, CallFilter(status="closed"), now=datetime(2026, 10, 1))) == [
        "OTHER-C", "HORIZON-A"]
    store_calls(db, [replace(call("HORIZON-A"), budget=7e6)], now=T2)
    text = show_call(db, "horizon-a", now=T2)
    assert "HORIZON-A — Topic HORIZON-A" in text and "budget: 5000000 -> 7000000" in text
    # deadlines are stored in UTC and shown in Brussels time, as the portal states them
    store_calls(db, [call("HORIZON-W", deadline=datetime(2027, 1, 20, 16)),
                     call("HORIZON-S", deadline=datetime(2026, 9, 2, 15))], now=T2)
    assert "deadline:        2027-01-20 17:00 Brussels time (16:00 UTC)" in show_call(db, "HORIZON-W", now=T2)
    assert "deadline:        2026-09-02 17:00 Brussels time (15:00 UTC)" in show_call(db, "HORIZON-S", now=T2)
    with pytest.raises(NotFoundError):
        show_call(db, "NOPE")


def test_records_count_matches_table(db: Database) -> None:
    store_calls(db, [call(f"T-{n}") for n in range(450)], now=T1, batch_size=100)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 450


def test_call_files_must_be_utf8_and_not_empty(db: Database, tmp_path: Path) -> None:
    row = {"identifier": "X-1", "title": "Café robots"}
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(row, ensure_ascii=False).encode("latin-1") + b"\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(ValidationError) as caught:
        import_call_files(db, [latin, empty], now=T1)
    text = str(caught.value)
    assert f"{latin}:1: not UTF-8 text (byte 0xe9" in text  # not imported as "Caf\ufffd"
    assert f"{empty}: the file is empty" in text
    assert stored(db) == {}


def test_gzipped_jsonl_imports_and_a_truncated_one_is_refused(db: Database, tmp_path: Path) -> None:
    import gzip

    rows = "".join(json.dumps({"identifier": f"X-{n}", "title": "T"}) + "\n" for n in range(50))
    good = tmp_path / "calls.jsonl.gz"
    good.write_bytes(gzip.compress(rows.encode()))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ValidationError, match="truncated file"):
        import_call_files(db, [cut], now=T1)
    assert stored(db) == {}
    assert import_call_files(db, [good], now=T1).new == 50


def test_line_separators_inside_texts_survive_export_and_import(
    db: Database, tmp_path: Path
) -> None:
    # export writes JSON with ensure_ascii=False, so U+2028 / U+0085 stay raw inside strings
    store_calls(db, [call("SEP-1", description="one\u2028two\u0085three\x0cfour")], now=T1)
    out = io.StringIO()
    export_calls(db, out, "jsonl", now=T1)
    path = tmp_path / "calls.jsonl"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    assert import_call_files(other, [path], now=T1).new == 1
    assert stored(other)["SEP-1"].description == "one\u2028two\u0085three\x0cfour"
    other.close()


def test_values_too_long_for_their_column_are_reported_not_crashed(
    db: Database, tmp_path: Path
) -> None:
    # SQLite would store them; PostgreSQL refuses them inside the transaction
    row = {"identifier": "X-1", "title": "T", "type_of_action": "A" * 201,
           "url": "https://e.eu/" + "x" * 1000}
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        import_call_files(db, [path], now=T1)
    text = str(caught.value)
    assert f"{path}:1: type_of_action: 201 characters, at most 200 fit" in text
    assert f"{path}:1: url: 1013 characters, at most 1000 fit" in text
    assert stored(db) == {}
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"identifier": "X-2", "title": "T", "budget": NaN}\n', encoding="utf-8")
    with pytest.raises(ValidationError, match="budget"):
        import_call_files(db, [nan], now=T1)


def test_text_filter_takes_percent_and_underscore_literally(db: Database) -> None:
    store_calls(db, [call("P-1", title="Reach 100% recycling"),
                     call("P-2", title="Reach 1000 recycling"),
                     call("P-3", title="e_waste sorting"), call("P-4", title="e-waste sorting")],
                now=T1)
    def ids(text: str) -> list[str]:
        return [r["identifier"] for r in list_calls(db, CallFilter(text=text), now=T1)]

    assert ids("100%") == ["P-1"]
    assert ids("e_waste") == ["P-3"]
