"""Consortium suggestions end to end: a small club, a small CORDIS pool, real databases
(SQLite and PostgreSQL), the fake embedder, the shipped ranking model and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from horizon_match.config import Settings
from horizon_match.consortia import export_suggestions, list_suggestions, suggest_consortia
from horizon_match.cordis import import_cordis
from horizon_match.db import Database
from horizon_match.embedding import FakeEmbedder
from horizon_match.errors import InputError, NotFoundError
from horizon_match.ingest import import_call_files
from horizon_match.members import import_members
from models.tables import Call, ConsortiumPartner, ConsortiumSuggestion, Match, Run

HERE = Path(__file__).parent / "fixtures" / "consortia"
SMALL = HERE / "cordis_small"
ROBOT_CALL = "HORIZON-CL4-2027-DIGITAL-EMERGING-01-05"
BATTERY_CALL = "HORIZON-CL5-2027-D3-01-09"
AS_OF = date(2026, 10, 1)


def _club(db: Database) -> None:
    import_cordis(db, SMALL)
    import_members(db, HERE / "members.jsonl")
    import_call_files(db, [HERE / "calls.jsonl"], now=datetime(2026, 10, 1))


@pytest.fixture
def club(db: Database) -> Database:
    _club(db)
    return db


def _settings(db: Database) -> Settings:
    return Settings(db_url=db.url)


def test_suggest_builds_eligible_teams_led_by_members(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL], as_of=AS_OF)
    assert summary.calls == 1 and summary.suggestions >= 1
    best = summary.teams[0]
    assert best.call == ROBOT_CALL and best.rank == 1
    assert best.partners[0].role == "coordinator"
    assert best.partners[0].member_id in {"grl", "ligurvision"}
    assert best.lead_member_id == best.partners[0].member_id
    assert all(p.role == "partner" for p in best.partners[1:])
    # the excluded member is never proposed, anywhere
    assert all(p.member_id != "busy" for t in summary.teams for p in t.partners)
    # the pool is small: every suitable organisation may be used, the team says what is missing
    countries = {p.country for p in best.partners}
    if best.eligible:
        assert len(countries) >= 3
    else:
        assert best.missing
    # every aspect of the call is covered by someone
    covered = {a for p in best.partners for a in p.aspects}
    assert covered == {a["label"] for a in best.details["aspects"]}
    # organisations only known from an associated-partner row are never proposed
    assert all(p.pic != "100000012" for t in summary.teams for p in t.partners)

    with club.session() as s:
        run = s.get(Run, summary.run_id)
        assert run.kind == "consortia" and run.status == "done"
        assert run.stats["consortia"]["suggestions"] == summary.suggestions
        stored = s.scalars(select(ConsortiumSuggestion).where(
            ConsortiumSuggestion.run_id == summary.run_id)).all()
        assert len(stored) == summary.suggestions
        partners = s.scalar(select(func.count()).select_from(ConsortiumPartner))
        assert partners == sum(len(t.partners) for t in summary.teams)


def test_club_members_join_where_they_add_competence(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL], lead="grl", as_of=AS_OF)
    assert len(summary.teams) == 1
    team = summary.teams[0]
    assert team.lead_member_id == "grl"
    members = [p.member_id for p in team.partners if p.member_id]
    # the vision SME covers the hyperspectral inspection, which the robotics lab lacks
    assert "ligurvision" in members
    vision = next(p for p in team.partners if p.member_id == "ligurvision")
    assert vision.aspects and "club member" in vision.reasons


def test_members_can_be_excluded_for_one_run(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL], exclude_members=["ligurvision"], as_of=AS_OF)
    assert summary.teams
    assert all(p.member_id not in {"ligurvision", "busy"} for t in summary.teams for p in t.partners)
    with pytest.raises(NotFoundError, match="--exclude: no member 'ghost'"):
        suggest_consortia(club, _settings(club), embedder=FakeEmbedder(), call_ids=[ROBOT_CALL],
                          exclude_members=["ghost"])


def test_every_stored_team_can_be_listed_and_exported(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL, BATTERY_CALL], as_of=AS_OF)
    listed = list_suggestions(club, ROBOT_CALL)
    assert [v.rank for v in listed] == sorted(v.rank for v in listed)
    assert {v.run_id for v in listed} == {summary.run_id}
    assert [p.name for p in listed[0].partners] == [
        p.name for p in next(t for t in summary.teams if t.call == ROBOT_CALL and t.rank == 1).partners
    ]
    out = io.StringIO()
    n = export_suggestions(club, out, "jsonl")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert n == len(lines) == summary.suggestions
    assert {"call", "rank", "eligible", "missing", "partners", "aspects"} <= set(lines[0])
    out = io.StringIO()
    export_suggestions(club, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == sum(len(t.partners) for t in summary.teams)
    assert {r["role"] for r in rows} == {"coordinator", "partner"}


def test_single_beneficiary_calls_and_prizes(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=["ERC-2027-STG", "HORIZON-CL4-2027-PRIZE-01"], as_of=AS_OF)
    erc = [t for t in summary.teams if t.call == "ERC-2027-STG"]
    assert erc and all(len(t.partners) == 1 and t.eligible for t in erc)
    assert any("no partners are needed" in n for n in erc[0].details["notes"])
    assert not [t for t in summary.teams if t.call == "HORIZON-CL4-2027-PRIZE-01"]
    assert any("PRIZE" in n and "no consortium" in n for n in summary.notes)


def test_without_matches_open_calls_are_used_and_closed_ones_skipped(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(), as_of=AS_OF)
    calls = {t.call for t in summary.teams}
    assert "HORIZON-CL4-2020-OLD-01" not in calls
    assert any("no matching run" in n for n in summary.notes)


def test_matched_members_lead_the_teams(club: Database) -> None:
    with club.session() as s:
        call_id = s.scalar(select(Call.id).where(Call.identifier == BATTERY_CALL))
        run = Run(kind="match", status="done", started_at=datetime(2026, 10, 1), stats={}, options={}, errors=[])
        s.add(run)
        s.flush()
        s.add(Match(run_id=run.id, member_id="ligurvision", call_id=call_id, score=0.9, rank=1))
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(), as_of=AS_OF)
    assert {t.call for t in summary.teams} == {BATTERY_CALL}
    assert {t.lead_member_id for t in summary.teams} == {"ligurvision"}


# --- bad input --------------------------------------------------------------------------------


def test_unknown_call_or_lead_and_bad_size_are_clear_errors(club: Database) -> None:
    settings = _settings(club)
    with pytest.raises(NotFoundError, match="no call 'HORIZON-NOPE'"):
        suggest_consortia(club, settings, embedder=FakeEmbedder(), call_ids=["HORIZON-NOPE"])
    with pytest.raises(NotFoundError, match="--lead 'nobody': no such member"):
        suggest_consortia(club, settings, embedder=FakeEmbedder(), call_ids=[ROBOT_CALL], lead="nobody")
    with pytest.raises(InputError, match="excluded from consortium"):
        suggest_consortia(club, settings, embedder=FakeEmbedder(), call_ids=[ROBOT_CALL], lead="busy")
    with pytest.raises(InputError, match="--size 0"):
        suggest_consortia(club, settings, embedder=FakeEmbedder(), call_ids=[ROBOT_CALL], size=0)
    with club.session() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0


def test_a_size_below_the_minimum_gives_ineligible_teams_that_say_why(club: Database) -> None:
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL], size=2, as_of=AS_OF)
    assert summary.teams and all(len(t.partners) <= 2 and not t.eligible for t in summary.teams)
    team = summary.teams[0]
    assert any("1 more partner" in m for m in team.missing)
    assert any("below the minimum" in n for n in team.details["notes"])


def test_a_call_without_text_is_noted_not_fatal(club: Database) -> None:
    with club.session() as s:
        call = s.scalar(select(Call).where(Call.identifier == BATTERY_CALL))
        call.title = ""
        call.description = ""
        call.call_title = None
        call.destination = None
    summary = suggest_consortia(club, _settings(club), embedder=FakeEmbedder(),
                                call_ids=[BATTERY_CALL, ROBOT_CALL], as_of=AS_OF)
    assert any(BATTERY_CALL in n and "no title and no description" in n for n in summary.notes)
    assert {t.call for t in summary.teams} == {ROBOT_CALL}


def test_a_pool_from_one_country_says_so(db: Database) -> None:
    import_members(db, HERE / "members.jsonl")
    import_call_files(db, [HERE / "calls.jsonl"], now=datetime(2026, 10, 1))
    summary = suggest_consortia(db, _settings(db), embedder=FakeEmbedder(),
                                call_ids=[ROBOT_CALL], as_of=AS_OF)
    assert any("organisations from IT only" in n for n in summary.notes)
    assert summary.teams and not any(t.eligible for t in summary.teams)
    assert any("more EU member states or associated countries" in m
               for m in summary.teams[0].missing)


# --- the command line -------------------------------------------------------------------------


@pytest.mark.integration
def test_cli_suggest_list_export_and_errors(db_url: str, tmp_path: Path) -> None:
    import cli

    database = Database(db_url)
    _club(database)
    database.close()
    # the CLI loads the real shipped model; the club's texts are few and short
    runner = CliRunner()
    base = ["--db", db_url, "consortia"]
    result = runner.invoke(cli.main, [*base, "suggest", "--call", ROBOT_CALL, "--lead", "grl",
                                      "--as-of", "2026-10-01"])
    assert result.exit_code == 0, result.output
    assert "team 1" in result.output and "coordinator" in result.output
    assert "Genoa Robotics Lab" in result.output

    result = runner.invoke(cli.main, [*base, "list", "--call", ROBOT_CALL])
    assert result.exit_code == 0 and "team 1" in result.output

    out = tmp_path / "teams.csv"
    result = runner.invoke(cli.main, [*base, "export", "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("run_id,call,team_rank")

    result = runner.invoke(cli.main, [*base, "suggest", "--call", ROBOT_CALL, "--lead", "nobody"])
    assert result.exit_code == 1
    assert "no such member" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli.main, [*base, "list", "--call", "HORIZON-NOPE"])
    assert result.exit_code == 1 and "no call 'HORIZON-NOPE'" in result.output
