"""The product path of matching: stored members x stored calls, eligibility, storage, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from horizon_match.config import load_settings
from horizon_match.db import Database
from horizon_match.embedding import FakeEmbedder
from horizon_match.errors import NotFoundError
from horizon_match.matching import export_matches, list_matches, run_matching
from stocking import call_record, stock

AS_OF = date(2026, 6, 1)


@pytest.fixture
def filled(db: Database, tmp_path: Path) -> Database:
    calls = [
        call_record("HORIZON-CL5-2026-D3-01-01", "Offshore wind turbine blades",
              "Develop recyclable offshore wind turbine blades and composite materials.",
              "2026-09-01T17:00:00"),
        call_record("HORIZON-CL4-2026-DIGITAL-02", "Robotics for inspection",
              "Autonomous underwater robots for inspection of ship hulls and port infrastructure.",
              "2026-10-01T17:00:00", type_of_action="HORIZON-IA"),
        call_record("HORIZON-CL6-2026-FARM-03", "Soil health in farming",
              "Soil microbiome and sustainable agriculture practices.", "2026-10-01T17:00:00",
              budget=9_000_000),
        call_record("HORIZON-CL5-2025-D3-01-09", "Closed wind call",
              "Offshore wind turbine blades maintenance.", "2026-01-10T17:00:00"),
    ]
    members = [
        {"id": "windco", "name": "WindCo", "country": "IT", "organisation_type": "company",
         "description": "We design offshore wind turbine blades from recyclable composite materials.",
         "keywords": ["wind energy", "composites"]},
        {"id": "robotica", "name": "Robotica", "country": "IT", "organisation_type": "company",
         "description": "Robot subacquei autonomi per l'ispezione di scafi e infrastrutture portuali.",
         "preferences": {"types_of_action": ["HORIZON-IA"]}},
        {"id": "farmlab", "name": "FarmLab", "country": "IT", "organisation_type": "research",
         "description": "Soil microbiome research for sustainable agriculture.",
         "preferences": {"budget_max": 5_000_000}},
        {"id": "empty", "name": "Empty Srl", "country": "IT", "organisation_type": "company"},
    ]
    return stock(db, tmp_path, calls, members)


def test_best_call_first_closed_hidden_and_stored(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    summary = run_matching(filled, settings, embedder=FakeEmbedder(), top_k=5, as_of=AS_OF)
    rows = list_matches(filled, member_id="windco")
    assert rows[0]["call"] == "HORIZON-CL5-2026-D3-01-01"
    assert "HORIZON-CL5-2025-D3-01-09" not in {r["call"] for r in rows}  # deadline passed
    assert summary.hidden["windco"]["closed"] == 1
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    top = rows[0]["details"]
    assert top["member_passage"] and top["call_passage"]
    assert "wind" in " ".join(top["shared_terms"]) or "blades" in " ".join(top["shared_terms"])


def test_preferences_hide_and_count(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    summary = run_matching(filled, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    # robotica only wants innovation actions; farmlab has a budget ceiling below the soil call
    assert {r["call"] for r in list_matches(filled, member_id="robotica")} == {"HORIZON-CL4-2026-DIGITAL-02"}
    assert summary.hidden["robotica"]["type of action"] == 2
    assert "HORIZON-CL6-2026-FARM-03" not in {r["call"] for r in list_matches(filled, member_id="farmlab")}
    assert summary.hidden["farmlab"]["budget"] == 1


def test_empty_profile_warns_and_gets_nothing(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    summary = run_matching(filled, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    assert any("empty" in w for w in summary.warnings)
    assert list_matches(filled, member_id="empty") == []


def test_rerun_embeds_nothing_new(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    first = run_matching(filled, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    assert first.embedded.computed > 0
    second = run_matching(filled, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    assert second.embedded.computed == 0
    assert second.run_id != first.run_id
    assert list_matches(filled, member_id="windco")[0]["run"] == second.run_id


def test_after_every_deadline_nothing_matches(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    summary = run_matching(filled, settings, embedder=FakeEmbedder(), as_of=date(2027, 1, 1))
    assert summary.matches == 0 and summary.calls == 0


def test_unknown_member_is_a_clear_error(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    with pytest.raises(NotFoundError, match="members list"):
        run_matching(filled, settings, embedder=FakeEmbedder(), member_ids=["nobody"], as_of=AS_OF)


def test_export_csv_and_jsonl(filled: Database) -> None:
    settings = load_settings({}, db=filled.url)
    run_matching(filled, settings, embedder=FakeEmbedder(), as_of=AS_OF)
    out = io.StringIO()
    n = export_matches(filled, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == n > 0
    assert set(rows[0]) == {"member", "call", "title", "score", "rank", "deadline", "explanation"}
    out = io.StringIO()
    assert export_matches(filled, out, "jsonl") == n
    assert json.loads(out.getvalue().splitlines()[0])["member"]


@pytest.mark.integration
def test_cli_match_with_the_shipped_model(filled: Database) -> None:
    runner = CliRunner()
    result = runner.invoke(
        __import__("cli").main, ["--db", filled.url, "match", "--top", "2", "--as-of", "2026-06-01"]
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(__import__("cli").main, ["--db", filled.url, "matches", "list", "--member", "windco"])
    assert "HORIZON-CL5-2026-D3-01-01" in listed.output.splitlines()[1]


def test_storing_in_batches_and_a_resumed_run_replacing_its_rows(
    filled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import horizon_match.matching as matching
    from sqlalchemy import func, select

    from models.tables import Match

    settings = load_settings({}, db=filled.url)
    whole = run_matching(filled, settings, embedder=FakeEmbedder(), top_k=5, as_of=AS_OF)
    expected = {m: [(r["call"], r["rank"]) for r in list_matches(filled, member_id=m)]
                for m in ("windco", "robotica", "farmlab")}
    assert whole.matches > 3
    # several INSERT batches and several DELETE batches, into the same run (resumed)
    monkeypatch.setattr(matching, "STORE_BATCH", 2)
    monkeypatch.setattr(matching, "DELETE_BATCH", 1)
    again = run_matching(filled, settings, embedder=FakeEmbedder(), top_k=5, as_of=AS_OF,
                         run_id=whole.run_id)
    assert again.matches == whole.matches
    with filled.session() as s:
        stored = s.scalar(select(func.count()).select_from(Match).where(Match.run_id == whole.run_id))
    assert stored == whole.matches  # replaced, not added
    assert {m: [(r["call"], r["rank"]) for r in list_matches(filled, member_id=m)]
            for m in expected} == expected


def test_a_failure_while_storing_keeps_nothing_half_written_and_the_run_can_be_resumed(
    filled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import horizon_match.matching as matching
    from sqlalchemy import func, select

    from models.tables import Match, Run

    settings = load_settings({}, db=filled.url)
    real_insert = matching.insert
    statements: list[int] = []

    def failing_second_batch(table):  # type: ignore[no-untyped-def]
        statements.append(1)
        if len(statements) == 2:
            raise OSError("disk full")
        return real_insert(table)

    monkeypatch.setattr(matching, "STORE_BATCH", 2)
    monkeypatch.setattr(matching, "insert", failing_second_batch)
    with pytest.raises(OSError, match="disk full"):
        run_matching(filled, settings, embedder=FakeEmbedder(), top_k=5, as_of=AS_OF)
    with filled.session() as s:
        run = s.scalars(select(Run).where(Run.kind == "match")).one()
        assert run.status == "failed" and "disk full" in run.errors[0]["error"]
        # the first batch was written, then rolled back with the rest
        assert s.scalar(select(func.count()).select_from(Match)) == 0
        run_id = run.id
    monkeypatch.setattr(matching, "insert", real_insert)
    resumed = run_matching(filled, settings, embedder=FakeEmbedder(), top_k=5, as_of=AS_OF,
                           run_id=run_id)
    with filled.session() as s:
        stored = s.scalar(select(func.count()).select_from(Match).where(Match.run_id == run_id))
        assert s.get(Run, run_id).status == "done"
    assert len(statements) == 2 and resumed.matches == stored > 2
