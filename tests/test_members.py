"""Member profiles: import in three formats, re-import, round trip, bad input, PIC sharing,
show / list / remove, and the texts the matcher reads."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from cli import main
from horizon_match.db import Database
from horizon_match.members import (
    import_members,
    member_profile_texts,
    members_profile_texts,
    parse_members_file,
)
from models.tables import (
    Member,
    Organisation,
    Participation,
    Project,
    ProjectField,
)

HERE = Path(__file__).resolve().parent / "fixtures" / "members"
FORMATS = {"csv": "members.csv", "jsonl": "members.jsonl", "yaml": "members.yaml"}
COUNTED = (Member, Organisation, Project, Participation, ProjectField)


def cli(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db_url, *map(str, args)])


def counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        return {
            t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in COUNTED
        }


def exported(db_url: str, fmt: str = "jsonl") -> str:
    result = cli(db_url, "members", "export", "--format", fmt)
    assert result.exit_code == 0, result.output
    return result.stdout


def snapshot(db: Database, db_url: str) -> tuple[dict[str, int], str]:
    return counts(db), exported(db_url)


def profiles(db_url: str) -> dict[str, dict]:
    # split("\n"), not splitlines(): descriptions may hold U+2028
    return {p["id"]: p for p in map(json.loads, exported(db_url).rstrip("\n").split("\n"))}


def copy(name: str, tmp_path: Path, new_name: str | None = None) -> Path:
    target = tmp_path / (new_name or name)
    shutil.copy(HERE / name, target)
    return target


# ---- importing ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_each_format_imports(db: Database, db_url: str, fmt: str) -> None:
    result = cli(db_url, "members", "import", HERE / FORMATS[fmt])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "3 created, 0 updated, 0 unchanged"
    got = profiles(db_url)
    assert sorted(got) == ["athena-lab", "portsoft", "robolab"]
    robolab = got["robolab"]
    assert robolab["emails"] == ["grants@robolab.example.it", "ceo@robolab.example.it"]
    assert robolab["country"] == "IT" and robolab["city"] == "Genova"
    assert (robolab["organisation_type"], robolab["size"], robolab["sme"]) == (
        "research",
        "large",
        False,
    )
    assert robolab["pic"] == "900000001"
    assert robolab["description"].splitlines() == [
        'Robotica umanoide, visione artificiale e "soft robotics".',
        "Laboratori a Genova, Pisa e Milano.",
    ]
    assert robolab["keywords"] == ["robotics", "computer vision", "AI"]
    assert robolab["preferences"] == {
        "programmes": ["HORIZON"],
        "types_of_action": ["HORIZON-RIA", "HORIZON-IA"],
        "budget_min": 500000,
        "budget_max": 6000000.5,
        "languages": ["it", "en"],
        "exclude_from_consortia": False,
    }
    # CSV has no past projects; the other formats carry them.
    expected_projects = (
        [] if fmt == "csv" else ["Humanoid platform for rehabilitation", "Soft grippers"]
    )
    assert [p["title"] for p in robolab["past_projects"]] == expected_projects
    # Lower-case and ISO codes are turned into the Commission's codes (GR -> EL).
    assert got["portsoft"]["country"] == "IT" and got["portsoft"]["sme"] is True
    assert got["athena-lab"]["country"] == "EL"
    assert got["athena-lab"]["pic"] == "900000003"
    assert got["athena-lab"]["description"] == "Εργαστήριο θαλάσσιας τεχνολογίας"
    assert got["athena-lab"]["preferences"] == {"exclude_from_consortia": True}
    assert counts(db)["members"] == 3 and counts(db)["organisations"] == 3


def test_gzip_member_file_imports(db_url: str, tmp_path: Path) -> None:
    result = cli(db_url, "members", "import", HERE / "members.jsonl.gz")
    assert result.exit_code == 0, result.output
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    assert cli(plain, "members", "import", HERE / "members.jsonl").exit_code == 0
    assert exported(db_url) == exported(plain)


def test_reimport_updates_by_id_and_never_duplicates(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    first = counts(db)
    again = cli(db_url, "members", "import", HERE / "members.jsonl")
    assert again.stdout.strip() == "0 created, 0 updated, 3 unchanged"
    assert counts(db) == first

    changed = tmp_path / "changed.jsonl"
    changed.write_text(
        json.dumps(
            {
                "id": "robolab",
                "name": "RoboLab Genova (renamed)",
                "past_projects": [{"title": "Only one project now", "summary": "s"}],
            }
        )
        + "\n"
        + json.dumps({"id": "newcomer", "name": "Newcomer Srl", "country": "IT"})
        + "\n",
        encoding="utf-8",
    )
    result = cli(db_url, "members", "import", changed)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 created, 1 updated, 0 unchanged"
    got = profiles(db_url)
    assert sorted(got) == ["athena-lab", "newcomer", "portsoft", "robolab"]
    assert got["robolab"]["name"] == "RoboLab Genova (renamed)"
    # Past projects are replaced, not appended.
    assert got["robolab"]["past_projects"] == [{"title": "Only one project now", "summary": "s"}]
    # Fields absent from the record keep their stored values.
    assert got["robolab"]["keywords"] == ["robotics", "computer vision", "AI"]
    assert got["robolab"]["pic"] == "900000001"
    after = counts(db)
    assert after["members"] == 4 and after["organisations"] == 4
    assert after["projects"] == 1 and after["participations"] == 1


def test_csv_import_keeps_past_projects_and_empty_cells_clear(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    partial = tmp_path / "partial.csv"
    partial.write_text(
        "id,name,city,keywords\nrobolab,RoboLab Genova,,robotics\n", encoding="utf-8"
    )
    result = cli(db_url, "members", "import", partial)
    assert result.exit_code == 0, result.output
    robolab = profiles(db_url)["robolab"]
    assert robolab["city"] is None  # present but empty: cleared
    assert robolab["keywords"] == ["robotics"]
    assert robolab["country"] == "IT"  # column absent: kept
    assert len(robolab["past_projects"]) == 2  # CSV cannot carry them: kept


# ---- round trip -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_import_round_trips_exactly(
    db: Database, db_url: str, tmp_path: Path, fmt: str
) -> None:
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    first = exported(db_url, fmt)
    path = tmp_path / f"export.{fmt}"
    path.write_text(first, encoding="utf-8")

    # Into the same database: nothing changes.
    before = snapshot(db, db_url)
    result = cli(db_url, "members", "import", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "0 created, 0 updated, 3 unchanged"
    assert snapshot(db, db_url) == before

    # Into an empty database: the same export comes out.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert cli(fresh, "members", "import", path).exit_code == 0
    assert exported(fresh, fmt) == first


def test_round_trip_keeps_awkward_text(db: Database, db_url: str, tmp_path: Path) -> None:
    awkward = {
        "id": "odd.one_1",
        "name": 'Quotes " and, commas',
        "description": "yes\n  indented line\nnull\n#not a comment\nTab\there · U+2028:\u2028end",
        "keywords": ["123", "true", "2021-01-01", "a, b"],
        "city": "No",
        "preferences": {"budget_min": 0, "budget_max": 1e20, "programmes": []},
    }
    source = tmp_path / "odd.jsonl"
    source.write_text(json.dumps(awkward, ensure_ascii=False) + "\n", encoding="utf-8")
    assert cli(db_url, "members", "import", source).exit_code == 0
    for fmt in FORMATS:
        out = tmp_path / f"odd-out.{fmt}"
        result = cli(db_url, "members", "export", "--output", out)
        assert result.exit_code == 0, result.output
        fresh = f"sqlite:///{tmp_path / f'fresh-{fmt}.db'}"
        assert cli(fresh, "members", "import", out).exit_code == 0
        assert exported(fresh, fmt) == out.read_text(encoding="utf-8")
        got = profiles(fresh)["odd.one_1"]
        assert got["description"] == awkward["description"]
        assert got["keywords"] == awkward["keywords"]


def test_export_to_gzip_file_reads_back(db: Database, db_url: str, tmp_path: Path) -> None:
    assert cli(db_url, "members", "import", HERE / "members.yaml").exit_code == 0
    out = tmp_path / "members.yaml.gz"
    result = cli(db_url, "members", "export", "-o", out)
    assert result.exit_code == 0, result.output
    assert "3 member(s) written" in result.output
    loaded = yaml.safe_load(gzip.decompress(out.read_bytes()).decode("utf-8"))
    assert [m["id"] for m in loaded["members"]] == ["athena-lab", "portsoft", "robolab"]


# ---- bad input ------------------------------------------------------------------------

BAD_CASES = {
    "bad_rows.csv": [
        "bad_rows.csv:3: id: missing",
        "bad_rows.csv:4: name: missing",
        "bad_rows.csv:5: emails: 'not-an-email' is not an email address",
        "bad_rows.csv:6: country: unknown country 'XX'",
        "bad_rows.csv:7: organisation_type: 'startup' is not one of",
        "bad_rows.csv:8: size: 'huge' is not one of",
        "bad_rows.csv:9: sme: expected true or false",
    ],
    "bad_types.jsonl": [
        "bad_types.jsonl:2: sme: expected true or false, got text",
        "bad_types.jsonl:3: keywords: expected a list",
        "bad_types.jsonl:4: organisation_type: expected text, got a number",
        "bad_types.jsonl:4: size: expected text, got a list",
        "bad_types.jsonl:5: preferences.budget_max: expected a number",
        "bad_types.jsonl:5: preferences.colour: unknown preference",
        "bad_types.jsonl:6: past_projects[1].title: missing",
    ],
    "bad_items.yaml": [
        "bad_items.yaml:6: emails: 'nobody@@example.eu' is not an email address",
        "bad_items.yaml:8: id: missing",
        "bad_items.yaml:12: country: unknown country 'Atlantis'",
    ],
    "unbalanced_quote.csv": [
        "unbalanced_quote.csv:3: malformed CSV: a quoted field that starts in this row is never "
        "closed"
    ],
    "latin1.csv": ["latin1.csv:3: not UTF-8 text (byte 0xe9"],
    "unknown_column.csv": ["unknown_column.csv:1: colour: unknown column"],
    "duplicate_ids.jsonl": ["duplicate_ids.jsonl:3: id: 'twin' is already used on line 1"],
    "truncated.jsonl.gz": [
        "truncated.jsonl.gz:3: the compressed data ends in the middle of this line"
    ],
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_file_is_rejected_whole(db: Database, db_url: str, tmp_path: Path, name: str) -> None:
    # A database that already holds members must come out of a rejected import untouched.
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    before = snapshot(db, db_url)
    path = copy(name, tmp_path)
    result = cli(db_url, "members", "import", path)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    for expected in BAD_CASES[name]:
        assert f"{tmp_path}/{expected}" in result.output, result.output
    # every problem is listed, and only those
    problem_lines = [line for line in result.output.splitlines() if line.startswith(str(tmp_path))]
    assert len(problem_lines) == len(BAD_CASES[name])
    assert snapshot(db, db_url) == before


def test_rejected_file_leaves_an_empty_database_empty(db: Database, db_url: str) -> None:
    # The good first row of bad_rows.csv must not be written either.
    result = cli(db_url, "members", "import", HERE / "bad_rows.csv")
    assert result.exit_code == 1
    assert counts(db) == {t.__tablename__: 0 for t in COUNTED}


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        (
            "semi.csv",
            "id;name\na;A\n",
            "semi.csv:1: the header is one column; separate columns with commas",
        ),
        (
            "ragged.csv",
            "id,name\na,A,extra\n",
            "ragged.csv:2: this row has 3 fields but the header has 2",
        ),
        (
            "quote.csv",
            'id,name\na,"A"B\n',
            "quote.csv:2: malformed CSV: text follows a closing quote",
        ),
        ("nocol.csv", "name\nA\n", "nocol.csv:1: id: required column is missing"),
        (
            "pp.csv",
            "id,name,past_projects\na,A,x\n",
            "pp.csv:1: past_projects: unknown column; past projects can only be given in JSONL",
        ),
        ("empty.csv", "", "empty.csv: the file is empty"),
        (
            "badjson.jsonl",
            '{"id": "a", "name": "A"}\n{"id": "b", "name": \n',
            "badjson.jsonl:2: not valid JSON",
        ),
        (
            "twice.jsonl",
            '{"id": "a", "name": "A", "name": "B"}\n',
            "twice.jsonl:1: name: given twice",
        ),
        ("array.jsonl", '["a"]\n', "array.jsonl:1: expected a JSON object"),
        (
            "field.jsonl",
            '{"id": "a", "name": "A", "colour": "red"}\n',
            "field.jsonl:1: colour: unknown field",
        ),
        (
            "badid.jsonl",
            '{"id": "a b", "name": "A"}\n',
            "badid.jsonl:1: id: 'a b' is not a usable id",
        ),
        (
            "pic.jsonl",
            '{"id": "a", "name": "A", "pic": "12AB"}\n',
            "pic.jsonl:1: pic: '12AB' is not a PIC",
        ),
        (
            "samepic.jsonl",
            '{"id": "a", "name": "A", "pic": "900000009"}\n'
            '{"id": "b", "name": "B", "pic": "900000009"}\n',
            "samepic.jsonl:2: pic: PIC 900000009 is also given to 'a' on line 1",
        ),
        (
            "budget.jsonl",
            '{"id": "a", "name": "A", "preferences": {"budget_min": 10, "budget_max": 5}}\n',
            "budget.jsonl:1: preferences.budget_min: 10 is more than budget_max 5",
        ),
        (
            "nul.jsonl",
            '{"id": "a", "name": "A\\u0000"}\n',
            "nul.jsonl:1: name: contains a NUL character",
        ),
        ("syntax.yaml", "- id: a\n  name: [A\n", "syntax.yaml:3: not valid YAML"),
        ("top.yaml", "people:\n  - id: a\n", "top.yaml:1: people: unknown top-level key"),
        ("scalar.yaml", "- just text\n", "scalar.yaml:1: expected the fields of one member"),
        ("dupkey.yaml", "- id: a\n  name: A\n  id: b\n", "dupkey.yaml:3: id: given twice"),
        (
            "date.yaml",
            "- id: a\n  name: A\n  city: 2024-01-01\n",
            "date.yaml:3: city: expected text, got a date",
        ),
        (
            "gzip.csv.gz",
            "not gzip at all",
            "gzip.csv.gz: the name ends in .gz but it is not a gzip file",
        ),
    ],
)
def test_more_bad_input(tmp_path: Path, filename: str, content: str, expected: str) -> None:
    # Rejected while reading, before any database work: one backend is enough here.
    db_url = f"sqlite:///{tmp_path / 'test.db'}"
    db = Database(db_url)
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    result = cli(db_url, "members", "import", path)
    assert result.exit_code == 1
    assert f"{tmp_path}/{expected}" in result.output, result.output
    assert counts(db)["members"] == 0
    db.close()


def test_unknown_extension_and_missing_file(db_url: str, tmp_path: Path) -> None:
    odd = tmp_path / "members.xlsx"
    odd.write_bytes(b"x")
    result = cli(db_url, "members", "import", odd)
    assert result.exit_code == 1 and "name it .csv, .jsonl, .yaml or .yml" in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    result = cli(db_url, "members", "import", tmp_path / "nowhere.csv")
    assert result.exit_code == 1 and "nowhere.csv: no such file" in result.output
    assert isinstance(result.exception, SystemExit), result.exception


def test_parse_collects_problems_without_a_database() -> None:
    from horizon_match.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        parse_members_file(HERE / "bad_rows.csv")
    assert [p.line for p in info.value.problems] == [3, 4, 5, 6, 7, 8, 9]
    assert [p.field for p in info.value.problems] == [
        "id",
        "name",
        "emails",
        "country",
        "organisation_type",
        "size",
        "sme",
    ]


# ---- organisations and PICs -----------------------------------------------------------


def _add_cordis_organisation(db: Database, pic: str) -> int:
    """What a CORDIS import leaves behind: an organisation with a project and its fields."""
    with db.session() as session:
        org = Organisation(
            pic=pic, name="ROBOLAB GENOVA SCARL", country="IT", organisation_type="research"
        )
        project = Project(
            id="101000001",
            source="cordis",
            acronym="HANDY",
            title="Dexterous robot hands",
            objective="Robot hands that learn to grasp.",
            funding_scheme="HORIZON-RIA",
            topic="HORIZON-CL4-2022-DIGITAL-EMERGING-01-01",
            legal_basis="HORIZON.2.4",
            call_year=2022,
        )
        project.participations.append(
            Participation(organisation=org, role="coordinator", position=1)
        )
        project.fields.append(ProjectField(code="/23/47/297", title="robotics"))
        session.add(project)
        session.flush()
        return org.id


def test_many_members_texts_load_in_batches_as_each_alone(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import horizon_match.members as members_module

    _add_cordis_organisation(db, "900000001")
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    with db.session() as session:
        everyone = list(session.scalars(select(Member).order_by(Member.id)))
        assert len(everyone) >= 3
        # a second member's organisation took part in the CORDIS project robolab coordinated
        athena = session.get(Member, "athena-lab")
        cordis_project = session.scalars(select(Project).where(Project.source == "cordis")).one()
        session.add(Participation(project=cordis_project, organisation_id=athena.organisation_id,
                                  role="participant", position=2))
        # robolab listed a second time, as a participant: it stays the coordinator
        robolab_org = session.get(Member, "robolab").organisation_id
        session.add(Participation(project=cordis_project, organisation_id=robolab_org,
                                  role="participant", position=3))
        session.flush()
        together = members_profile_texts(session, everyone)
        assert together == {m.id: member_profile_texts(session, m) for m in everyone}
        monkeypatch.setattr(members_module, "_ORGANISATIONS_PER_QUERY", 1)
        one_org_per_query = members_profile_texts(session, everyone)
        robolab = together["robolab"]
    assert together == one_org_per_query and set(together) == {m.id for m in everyone}
    # the CORDIS project reached through the PIC, after the member's own ones
    assert [(p["source"], p["role"]) for p in robolab["projects"]][-1] == ("cordis", "coordinator")
    assert robolab["description"].startswith("Robotica umanoide") and len(robolab["projects"]) == 3
    assert [(p["title"], p["role"]) for p in together["athena-lab"]["projects"]] == [
        ("Dexterous robot hands", "participant")]
    assert all(not t["projects"] for k, t in together.items() if k not in ("robolab", "athena-lab"))


def test_pic_shared_with_a_cordis_organisation_is_reused(db: Database, db_url: str) -> None:
    org_id = _add_cordis_organisation(db, "900000001")
    result = cli(db_url, "members", "import", HERE / "members.jsonl")
    assert result.exit_code == 0, result.output
    with db.session() as session:
        member = session.get(Member, "robolab")
        assert member is not None and member.organisation_id == org_id
        assert session.scalar(select(func.count()).where(Organisation.pic == "900000001")) == 1
        texts = member_profile_texts(session, member)
    assert counts(db)["organisations"] == 3
    assert texts["keywords"] == ["robotics", "computer vision", "AI"]
    assert texts["description"].startswith("Robotica umanoide")
    by_source = [(p["source"], p["title"]) for p in texts["projects"]]
    assert by_source == [
        ("member", "Humanoid platform for rehabilitation"),
        ("member", "Soft grippers"),
        ("cordis", "Dexterous robot hands"),
    ]
    cordis = texts["projects"][2]
    assert cordis["fields"] == ["robotics"]
    assert (cordis["funding_scheme"], cordis["topic"], cordis["legal_basis"]) == (
        "HORIZON-RIA",
        "HORIZON-CL4-2022-DIGITAL-EMERGING-01-01",
        "HORIZON.2.4",
    )
    assert cordis["summary"] == "Robot hands that learn to grasp."

    shown = cli(db_url, "members", "show", "robolab")
    assert shown.exit_code == 0, shown.output
    assert (
        "Track record: 2 own past project(s), 1 CORDIS project(s) (1 as coordinator)"
        in shown.output
    )
    assert "HANDY [101000001] coordinator: Dexterous robot hands" in shown.output
    listed = cli(db_url, "members", "list")
    robolab_row = next(line for line in listed.output.splitlines() if line.startswith("robolab"))
    assert robolab_row.split()[-2:] == ["2", "1"]

    # Removing the member keeps the CORDIS organisation and project, drops its own projects.
    removed = cli(db_url, "members", "remove", "robolab")
    assert removed.exit_code == 0, removed.output
    assert "removed member robolab" in removed.output and "2 own past project(s)" in removed.output
    with db.session() as session:
        assert session.get(Member, "robolab") is None
        assert session.get(Organisation, org_id) is not None
        assert session.get(Project, "101000001") is not None
        assert session.scalar(select(func.count()).where(Project.source == "member")) == 0


def test_member_organisation_without_cordis_goes_with_the_member(db: Database, db_url: str) -> None:
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    result = cli(db_url, "members", "remove", "portsoft")
    assert result.exit_code == 0
    assert result.stdout.strip() == "removed member portsoft (PortSoft S.r.l.)"
    assert counts(db)["organisations"] == 2
    missing = cli(db_url, "members", "remove", "portsoft")
    assert missing.exit_code == 1
    assert "no member with id portsoft; see `horizon-match members list`" in missing.output
    nobody = cli(db_url, "members", "show", "nobody")
    assert nobody.exit_code == 1 and isinstance(nobody.exception, SystemExit), nobody.exception
    assert "no member with id nobody" in nobody.output


def test_pic_of_another_member_is_refused_untouched(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    before = snapshot(db, db_url)
    clash = tmp_path / "clash.yaml"
    clash.write_text("- id: intruder\n  name: Intruder\n  pic: 900000001\n", encoding="utf-8")
    result = cli(db_url, "members", "import", clash)
    assert result.exit_code == 1
    assert f"{clash}:3: pic: PIC 900000001 already belongs to member 'robolab'" in result.output
    assert snapshot(db, db_url) == before


def test_pic_changes_move_members_between_organisations(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    cordis_org = _add_cordis_organisation(db, "900000077")
    assert cli(db_url, "members", "import", HERE / "members.jsonl").exit_code == 0
    # robolab and athena-lab trade PICs in one file; portsoft (no PIC so far) gets the
    # CORDIS organisation's PIC.
    swap = tmp_path / "swap.jsonl"
    swap.write_text(
        '{"id": "robolab", "name": "RoboLab Genova", "pic": "900000003"}\n'
        '{"id": "athena-lab", "name": "Athena Marine Lab", "pic": "900000001"}\n'
        '{"id": "portsoft", "name": "PortSoft S.r.l.", "pic": 900000077}\n',
        encoding="utf-8",
    )
    result = cli(db_url, "members", "import", swap)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "0 created, 3 updated, 0 unchanged"
    got = profiles(db_url)
    assert (got["robolab"]["pic"], got["athena-lab"]["pic"], got["portsoft"]["pic"]) == (
        "900000003",
        "900000001",
        "900000077",
    )
    # fields the file did not give keep their stored values, whichever organisation the
    # member now sits in: traded ones carry nothing of the other member's, and the CORDIS
    # organisation keeps only what portsoft left empty (organisation_type is portsoft's)
    place = {k: (v["country"], v["city"], v["organisation_type"], v["size"], v["sme"])
             for k, v in got.items()}
    assert place == {
        "robolab": ("IT", "Genova", "research", "large", False),
        "athena-lab": ("EL", None, "university", None, None),
        "portsoft": ("IT", "La Spezia", "company", "micro", True),
    }
    with db.session() as session:
        assert session.get(Member, "portsoft").organisation_id == cordis_org
        # portsoft's own PIC-less organisation is gone; nothing is left over
        assert session.scalar(select(func.count()).select_from(Organisation)) == 3
        # robolab's own projects follow it to its new organisation
        robolab = session.get(Member, "robolab")
        texts = member_profile_texts(session, robolab)
        assert [p["title"] for p in texts["projects"]] == [
            "Humanoid platform for rehabilitation",
            "Soft grippers",
        ]
    # Dropping the PIC gives the member an organisation of its own again; the CORDIS one stays.
    drop = tmp_path / "drop.csv"
    drop.write_text("id,name,pic\nportsoft,PortSoft S.r.l.,\n", encoding="utf-8")
    assert cli(db_url, "members", "import", drop).exit_code == 0
    with db.session() as session:
        assert session.get(Member, "portsoft").organisation.pic is None
        assert session.get(Organisation, cordis_org) is not None


def test_import_members_library_summary(db: Database) -> None:
    summary = import_members(db, HERE / "members.yaml")
    assert (summary.created, summary.updated, summary.unchanged) == (3, 0, 0)
    assert sorted(summary.created_ids) == ["athena-lab", "portsoft", "robolab"]


def test_every_members_command_has_help() -> None:
    runner = CliRunner()
    for command in ("import", "export", "list", "show", "remove"):
        result = runner.invoke(main, ["members", command, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_list_on_empty_database_says_what_to_do(db_url: str) -> None:
    result = cli(db_url, "members", "list")
    assert result.exit_code == 0
    assert "members import FILE" in result.output
