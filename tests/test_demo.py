"""The shipped demo data and `horizon-match demo`.

Expected counts are computed from the shipped files (and from ../shared for the source),
never written down here, so a rebuilt data set keeps the tests meaningful.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from cli import main
from horizon_match.db import Database
from horizon_match.demo import build_demo
from horizon_match.errors import InputError
from horizon_match.members import parse_members_file
from models import Call, Member, Organisation, Project
from scrapers.ft_portal.dates import parse_portal_datetime

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
CORDIS_FILES = ("projects.csv.gz", "organizations.csv.gz", "project_euroscivoc.csv.gz")
# A fixed moment before every demo deadline, so call statuses do not depend on the day.
NOW = datetime(2026, 1, 15, 12, 0)
RESERVED_DOMAINS = ("example.org", "example.com", "example.net")


# Italian function words that English text does not use.
ITALIAN_WORDS = {"di", "e", "per", "con", "della", "delle", "dei", "il", "la", "le", "nelle"}


def words_of(text: str) -> set[str]:
    return set(text.lower().replace(",", " ").replace(".", " ").replace("'", " ").split())


def jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def csv_gz(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def plain_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def members() -> list[dict]:
    return jsonl(DEMO / "members.jsonl")


@pytest.fixture(scope="module")
def calls() -> list[dict]:
    return jsonl(DEMO / "calls.jsonl")


def expected_counts(members: list[dict], calls: list[dict]) -> dict:
    orgs = csv_gz(DEMO / "cordis" / "organizations.csv.gz")
    pics = {r["organisationID"] for r in orgs}
    return {
        "members": len(members),
        "by_type": Counter(m["organisation_type"] for m in members),
        "by_language": Counter(m["preferences"]["languages"][0] for m in members),
        # every member with a PIC shares its organisation with CORDIS; the others have their own
        "organisations": len(pics | {m["pic"] for m in members if m.get("pic")})
        + sum(1 for m in members if not m.get("pic")),
        "projects": len(csv_gz(DEMO / "cordis" / "projects.csv.gz")),
        "member_projects": sum(len(m.get("past_projects", [])) for m in members),
        "members_with_projects": sum(1 for m in members if m.get("pic") in pics),
        "calls": len(calls),
    }


# --- the files -------------------------------------------------------------------------------


def test_every_demo_member_passes_the_members_validator(members: list[dict]) -> None:
    records = parse_members_file(DEMO / "members.jsonl")
    assert [r.id for r in records] == [m["id"] for m in members]


def test_demo_members_are_genoa_organisations_with_real_pics(members: list[dict]) -> None:
    orgs = csv_gz(DEMO / "cordis" / "organizations.csv.gz")
    names_by_pic = {r["organisationID"]: r for r in orgs}
    real = [m for m in members if m.get("pic")]
    assert 15 <= len(real) <= 25
    for m in real:
        row = names_by_pic[m["pic"]]  # the PIC is in the shipped CORDIS subset
        assert row["nutsCode"] == "ITC33", (m["id"], row["nutsCode"])  # Genova
        assert m["country"] == row["country"] == "IT"
        assert m["description"] and m["keywords"]
        assert "past_projects" not in m  # their CORDIS projects join through the PIC
    names = " ".join(names_by_pic[m["pic"]]["name"] for m in real)
    for expected in ("ISTITUTO ITALIANO DI TECNOLOGIA", "RINA", "UNIVERSITA DEGLI STUDI DI GENOVA",
                     "HITACHI RAIL STS", "ANSALDO ENERGIA", "STAM", "SOFTJAM", "RULEX"):
        assert expected in names


def test_demo_email_addresses_are_reserved_domains(members: list[dict]) -> None:
    for m in members:
        assert m["emails"], m["id"]
        for address in m["emails"]:
            domain = address.rsplit("@", 1)[1].lower()
            assert domain.endswith(".example") or domain in RESERVED_DOMAINS, address


def test_italian_profiles_are_present(members: list[dict]) -> None:
    italian = [m for m in members if m["preferences"].get("languages") == ["it"]]
    assert 4 <= len(italian) <= 6
    for m in italian:
        assert not m.get("pic")  # fictional: no EU PIC
        assert m["size"] in ("sme", "micro", "startup")
        assert m["past_projects"] and all(p["title"] and p["summary"] for p in m["past_projects"])
        assert len(ITALIAN_WORDS & words_of(m["description"])) >= 3, m["id"]
    for m in members:
        if m not in italian:  # the English profiles do not trip the same test
            assert len(ITALIAN_WORDS & words_of(m["description"])) < 3, m["id"]


def test_cordis_subset_is_exactly_the_members_projects(
    cordis_dev: Path, members: list[dict]
) -> None:
    pics = {m["pic"] for m in members if m.get("pic")}
    source_orgs = plain_csv(cordis_dev / "organizations.csv")
    wanted = {r["projectID"] for r in source_orgs if r["organisationID"] in pics}
    projects = csv_gz(DEMO / "cordis" / "projects.csv.gz")
    orgs = csv_gz(DEMO / "cordis" / "organizations.csv.gz")
    assert {p["id"] for p in projects} == wanted
    # all organisation rows of those projects: the partner pool
    assert len(orgs) == sum(1 for r in source_orgs if r["projectID"] in wanted)
    labels = csv_gz(DEMO / "cordis" / "project_euroscivoc.csv.gz")
    assert {r["projectID"] for r in labels} <= wanted
    total = sum((DEMO / "cordis" / name).stat().st_size for name in CORDIS_FILES)
    assert total < 2 * 1024 * 1024


def test_demo_calls_are_the_live_topics(cordis_dev: Path, calls: list[dict]) -> None:
    topics = jsonl(cordis_dev / "live_topics_2026_2027.jsonl")
    assert sorted(c["identifier"] for c in calls) == sorted(t["topic"] for t in topics)
    by_id = {t["topic"]: t for t in topics}
    for c in calls:
        topic = by_id[c["identifier"]]
        assert c["title"] == topic["title"].strip()
        assert c["description"] == topic["description"]
        # the portal's deadlines are 17:00 Brussels time: 15:00 UTC in summer, 16:00 in winter
        [deadline] = c["deadlines"]
        at = parse_portal_datetime(deadline["at"])
        assert deadline["stage"] == 1 and at is not None
        local = at.replace(tzinfo=UTC).astimezone(ZoneInfo("Europe/Brussels"))
        assert (local.date().isoformat(), local.hour, local.minute) == (topic["deadline"], 17, 0)
        assert at.hour == (15 if local.utcoffset() == timedelta(hours=2) else 16)
        assert c["url"].endswith("/topic-details/" + c["identifier"].lower())
        assert c["status"] in ("open", "forthcoming", "closed")
        assert c["source"] == "demo" and c["programme"] == "HORIZON"


def test_build_script_reproduces_the_shipped_files(cordis_dev: Path, tmp_path: Path) -> None:
    script = tmp_path / "build_demo_data.py"
    shutil.copy(DEMO / "build_demo_data.py", script)
    result = subprocess.run(
        [sys.executable, str(script), str(cordis_dev)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for name in ("members.jsonl", "calls.jsonl", *(f"cordis/{n}" for n in CORDIS_FILES)):
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_sources_note_covers_every_file() -> None:
    sources = (DEMO / "SOURCES.md").read_text(encoding="utf-8")
    for name in ("members.jsonl", "calls.jsonl", "cordis/", "build_demo_data.py"):
        assert name in sources
    for licence in ("CC BY 4.0", "2011/833/EU", "© European Union", "fictional"):
        assert licence.lower() in sources.lower()


# --- build_demo --------------------------------------------------------------------------------


def test_build_demo_loads_everything(db: Database, members: list[dict], calls: list[dict]) -> None:
    expected = expected_counts(members, calls)
    report = build_demo(db, DEMO, now=NOW, weekly=False)
    assert set(report.stages) == {"cordis", "members", "calls"}
    assert report.members == expected["members"]
    assert report.members_by_type == dict(expected["by_type"])
    assert report.members_by_language == dict(expected["by_language"])
    assert report.organisations == expected["organisations"]
    assert report.projects == expected["projects"]
    assert report.member_projects == expected["member_projects"]
    assert report.member_organisations_with_projects == expected["members_with_projects"]
    assert report.calls == expected["calls"] == sum(report.calls_by_status.values())
    # the report describes the database, not the files
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == expected["members"]
        assert s.scalar(select(func.count()).select_from(Call)) == expected["calls"]
        pics = s.scalars(select(Organisation.pic).where(Organisation.pic.is_not(None))).all()
        assert len(pics) == len(set(pics))  # one organisation per PIC, shared with CORDIS
        iit = s.get(Member, "iit")
        assert iit is not None and iit.organisation.pic == "999596447"
        n_iit = s.scalar(
            select(func.count()).select_from(Project).where(Project.source == "cordis")
            .where(Project.participations.any(organisation_id=iit.organisation_id))
        )
    source_iit = {r["projectID"] for r in csv_gz(DEMO / "cordis" / "organizations.csv.gz")
                  if r["organisationID"] == "999596447"}
    assert n_iit == len(source_iit)
    # next deadlines: the earliest ones after NOW, in order
    moments = (parse_portal_datetime(d["at"]) for c in calls for d in c["deadlines"])
    future = sorted(at for at in moments if at is not None and at >= NOW)
    assert [d.at for d in report.next_deadlines] == future[: len(report.next_deadlines)]
    assert report.next_deadlines


def test_build_demo_twice_changes_nothing(db: Database) -> None:
    first = build_demo(db, DEMO, now=NOW, weekly=False)
    second = build_demo(db, DEMO, now=NOW, weekly=False)
    assert (second.members, second.organisations, second.projects, second.calls) == (
        first.members, first.organisations, first.projects, first.calls)
    assert second.stages["members"].created == 0


def test_build_demo_refuses_an_incomplete_demo_folder(db: Database, tmp_path: Path) -> None:
    shutil.copytree(DEMO, tmp_path / "demo")
    (tmp_path / "demo" / "calls.jsonl").unlink()
    with pytest.raises(InputError, match="calls.jsonl"):
        build_demo(db, tmp_path / "demo", now=NOW)
    with db.session() as s:  # checked before anything was written
        assert s.scalar(select(func.count()).select_from(Organisation)) == 0


# --- the command -----------------------------------------------------------------------------


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {"HORIZON_MATCH_DB": None, "HORIZON_MATCH_DATA_DIR": str(tmp_path)}
    env.update(extra)
    return env


def test_demo_command_into_an_explicit_database(
    tmp_path: Path, members: list[dict], calls: list[dict]
) -> None:
    url = f"sqlite:///{tmp_path / 'mine.db'}"
    result = CliRunner().invoke(main, ["--db", url, "demo", "--load-only"], env=clean_env(tmp_path))
    assert result.exit_code == 0, result.output
    expected = expected_counts(members, calls)
    assert f"members       {expected['members']} " in result.output
    assert f"calls         {expected['calls']} " in result.output
    assert f"horizon-match --db {url} members list" in result.output
    assert not (tmp_path / "demo.db").exists()
    db = Database(url)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == expected["members"]
        assert s.scalar(select(func.count()).select_from(Call)) == expected["calls"]
        n_projects = s.scalar(
            select(func.count()).select_from(Project).where(Project.source == "cordis"))
        assert n_projects == expected["projects"]
    db.close()


def test_demo_command_refuses_a_database_with_members_unless_forced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'club.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", url, "demo", "--load-only"], env=clean_env(tmp_path)).exit_code == 0
    again = runner.invoke(main, ["--db", url, "demo", "--load-only"], env=clean_env(tmp_path))
    assert again.exit_code == 1
    assert "already holds" in again.output and "--force" in again.output
    forced = runner.invoke(main, ["--db", url, "demo", "--force", "--load-only"], env=clean_env(tmp_path))
    assert forced.exit_code == 0, forced.output


def test_demo_command_default_recreates_demo_db_and_leaves_main_db_alone(tmp_path: Path) -> None:
    main_url = f"sqlite:///{tmp_path / 'main.db'}"
    mine = Database(main_url)
    with mine.engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (pic, name) VALUES ('123456789', 'OURS')"))
    mine.close()
    before = (tmp_path / "main.db").read_bytes()
    # a stale demo database with a row the fresh one must not have
    stale = Database(f"sqlite:///{tmp_path / 'demo.db'}")
    with stale.engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (pic, name) VALUES ('999999999', 'STALE')"))
    stale.close()

    env = clean_env(tmp_path, HORIZON_MATCH_DB=main_url)
    result = CliRunner().invoke(main, ["demo", "--load-only"], env=env)
    assert result.exit_code == 0, result.output
    assert "(created anew)" in result.output
    assert "demo.db members list" in result.output
    assert (tmp_path / "main.db").read_bytes() == before
    demo = Database(f"sqlite:///{tmp_path / 'demo.db'}")
    with demo.session() as s:
        assert s.scalar(select(Organisation.id).where(Organisation.pic == "999999999")) is None
        assert s.scalar(select(func.count()).select_from(Member)) > 0
    demo.close()


def test_demo_command_will_not_delete_the_configured_database(tmp_path: Path) -> None:
    env = clean_env(tmp_path, HORIZON_MATCH_DB=f"sqlite:///{tmp_path / 'demo.db'}")
    (tmp_path / "demo.db").write_bytes(b"")
    result = CliRunner().invoke(main, ["demo", "--load-only"], env=env)
    assert result.exit_code == 1
    assert "deletes and recreates" in result.output
    assert (tmp_path / "demo.db").exists()
