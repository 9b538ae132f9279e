"""CORDIS import: reading both published shapes, storing, re-import, member PICs, bad input."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from cli import main
from horizon_match import cordis
from horizon_match.cordis import (
    ACTIVITY_TYPES,
    detect_delimiter,
    import_cordis,
    parse_bool,
    parse_date,
    parse_money,
    read_cordis_folder,
    store_cordis,
)
from horizon_match.db import Database
from horizon_match.errors import InputError, ValidationError
from models.tables import Member, Organisation, Participation, Project, ProjectField

CORDIS = Path(__file__).resolve().parent / "fixtures" / "cordis"
COMMA = CORDIS / "comma"
OFFICIAL = CORDIS / "official"
GZ = CORDIS / "gz"
TABLES = (Organisation, Member, Project, Participation, ProjectField)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) for t in TABLES}


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every stored row of the CORDIS tables, ids included, in a stable order."""
    out: dict[str, list[tuple]] = {}
    with db.engine.connect() as conn:
        for model in TABLES:
            table = model.__table__
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def copy_folder(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cordis"
    shutil.copytree(source, target)
    return target


def line_of(path: Path, prefix: str) -> int:
    """Number of the first physical line starting with `prefix`."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(prefix):
            return n
    raise AssertionError(f"{prefix!r} not in {path}")


def add_member(db: Database, pic: str, **org: object) -> int:
    now = datetime(2026, 1, 5, 9, 0)
    with db.session() as s:
        organisation = Organisation(pic=pic, **org)
        s.add(organisation)
        s.flush()
        s.add(Member(id="m1", organisation_id=organisation.id, name=str(org.get("name")),
                     created_at=now, updated_at=now))
        return organisation.id


# --- reading ------------------------------------------------------------------------------


def test_official_semicolon_comma_and_gzip_folders_read_the_same() -> None:
    comma = read_cordis_folder(COMMA)
    official = read_cordis_folder(OFFICIAL)  # ;-separated, quoted, decimal commas, BOM, CRLF
    gz = read_cordis_folder(GZ)
    for other in (official, gz):
        assert other.projects == comma.projects
        assert other.organisations == comma.organisations
        assert other.participations == comma.participations
        assert other.fields == comma.fields
    # the official export has no call_year / topicTitle columns: derived and joined instead
    raw = {r["id"]: r for r in read_rows(COMMA / "projects.csv")}
    for p in official.projects:
        assert p["call_year"] == int(raw[p["id"]]["call_year"])
        assert p["topic_title"] == raw[p["id"]]["topicTitle"]
        assert p["ec_max_contribution"] == float(raw[p["id"]]["ecMaxContribution"])


def test_projects_keep_every_value_of_the_file() -> None:
    data = read_cordis_folder(COMMA)
    raw = {r["id"]: r for r in read_rows(COMMA / "projects.csv")}
    assert {p["id"] for p in data.projects} == set(raw)
    for p in data.projects:
        r = raw[p["id"]]
        assert p["title"] == r["title"].strip()
        assert p["objective"] == r["objective"].strip()
        assert "\n" in p["objective"] or "\n" not in r["objective"].strip()
        assert p["start_date"] == date.fromisoformat(r["startDate"])
        assert p["end_date"] == date.fromisoformat(r["endDate"])
        assert p["total_cost"] == float(r["totalCost"])
        assert (p["funding_scheme"], p["master_call"], p["topic"], p["legal_basis"]) == (
            r["fundingScheme"], r["masterCall"], r["topic"], r["legalBasis"])


def test_organisations_are_mapped_from_cordis_codes() -> None:
    data = read_cordis_folder(COMMA)
    rows = read_rows(COMMA / "organizations.csv")
    assert set(data.organisations) == {r["organisationID"] for r in rows}
    expected_type = {"HES": "university", "REC": "research", "PRC": "company",
                     "PUB": "public", "OTH": "other"}
    for r in rows:
        o = data.organisations[r["organisationID"]]
        assert o["organisation_type"] == expected_type[r["activityType"]]
        assert o["country"] == r["country"]  # as given: UK stays UK
        sme = {"true": True, "false": False, "": None}[r["SME"]]
        assert o["sme"] is sme
        if sme:
            assert o["size"] == "sme"
        elif sme is False and r["activityType"] == "PRC":
            assert o["size"] == "large"
        else:
            assert o["size"] is None
    assert ACTIVITY_TYPES == expected_type
    assert any(o["country"] == "UK" for o in data.organisations.values())
    assert any(o["sme"] is None for o in data.organisations.values())


def test_a_third_party_listed_per_beneficiary_becomes_one_participation() -> None:
    rows = read_rows(COMMA / "organizations.csv")
    repeated = Counter((r["projectID"], r["organisationID"], r["role"]) for r in rows)
    key = next(k for k, n in repeated.items() if n > 1)
    data = read_cordis_folder(COMMA)
    assert data.merged_rows == sum(n - 1 for n in repeated.values())
    assert len(data.participations) == len(repeated)
    merged = [p for p in data.participations if (p["project_id"], p["pic"], p["role"]) == key]
    assert len(merged) == 1
    same = [r for r in rows if (r["projectID"], r["organisationID"], r["role"]) == key]
    assert merged[0]["position"] == min(int(r["order"]) for r in same)


def test_value_parsers() -> None:
    assert parse_money("172618,56") == 172618.56
    assert parse_money("172618.56") == 172618.56
    assert parse_money(" ") is None
    with pytest.raises(ValueError, match="not an amount"):
        parse_money("12 EUR")
    assert parse_date("2022-09-01 00:00:00") == date(2022, 9, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("01/09/2022")
    assert parse_bool("TRUE") is True and parse_bool("false") is False and parse_bool("") is None
    assert detect_delimiter('"id";"acronym";"title"') == ";"
    assert detect_delimiter("id,acronym,title") == ","
    assert detect_delimiter("id") == ","


def test_an_unknown_extra_column_is_fine(tmp_path: Path) -> None:
    folder = copy_folder(COMMA, tmp_path)
    path = folder / "organizations.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(line + ",x" for line in lines) + "\n", encoding="utf-8")
    assert read_cordis_folder(folder).organisations == read_cordis_folder(COMMA).organisations


class RecordingProgress:
    def __init__(self) -> None:
        self.stages: list[list] = []

    def start(self, label: str, total: int | None) -> None:
        self.stages.append([label, total, 0, False])

    def advance(self, n: int = 1) -> None:
        self.stages[-1][2] += n

    def finish(self) -> None:
        self.stages[-1][3] = True


# --- storing ------------------------------------------------------------------------------


def test_import_stores_projects_organisations_participations_fields(db: Database) -> None:
    progress = RecordingProgress()
    summary = import_cordis(db, COMMA, progress=progress)
    raw_orgs = read_rows(COMMA / "organizations.csv")
    raw_fields = read_rows(COMMA / "project_euroscivoc.csv")
    raw_projects = read_rows(COMMA / "projects.csv")
    distinct_parts = {(r["projectID"], r["organisationID"], r["role"]) for r in raw_orgs}
    assert counts(db) == {
        "organisations": len({r["organisationID"] for r in raw_orgs}),
        "members": 0,
        "projects": len(raw_projects),
        "participations": len(distinct_parts),
        "project_fields": len(raw_fields),
    }
    assert (summary.projects, summary.projects_created) == (len(raw_projects), len(raw_projects))
    assert summary.participations == len(distinct_parts)
    # every stage reported and completed
    assert [s[0] for s in progress.stages] == ["reading CORDIS files", "storing CORDIS data"]
    assert all(s[1] == s[2] and s[3] for s in progress.stages)

    with db.session() as s:
        stored = {
            (p.project_id, p.organisation.pic, p.role): p
            for p in s.scalars(select(Participation))
        }
        assert set(stored) == distinct_parts
        for r in raw_orgs:
            p = stored[(r["projectID"], r["organisationID"], r["role"])]
            if r["ecContribution"] and Counter(
                (x["projectID"], x["organisationID"], x["role"]) for x in raw_orgs
            )[(r["projectID"], r["organisationID"], r["role"])] == 1:
                assert p.ec_contribution == float(r["ecContribution"])
                assert p.position == int(r["order"])
        project = s.get(Project, raw_projects[0]["id"])
        assert project.source == "cordis"
        assert project.title == raw_projects[0]["title"]
        assert project.call_year == int(raw_projects[0]["call_year"])
        assert {(f.code, f.title) for f in project.fields} == {
            (r["code"], r["title"]) for r in raw_fields if r["projectID"] == project.id}
        kcl = s.scalar(select(Organisation).where(Organisation.country == "UK"))
        assert kcl is not None and kcl.organisation_type == "university"


def test_reimport_changes_nothing_then_follows_the_file(db: Database, tmp_path: Path) -> None:
    import_cordis(db, COMMA)
    before = snapshot(db)
    again = import_cordis(db, OFFICIAL)  # the same data in the other shape
    assert snapshot(db) == before
    assert again.projects_created == again.organisations_created == 0
    assert again.participations_removed == again.fields_removed == 0

    folder = copy_folder(COMMA, tmp_path)
    orgs = read_rows(folder / "organizations.csv")
    dropped = next(r for r in orgs if r["role"] == "associatedPartner")
    kept = [r for r in orgs if r is not dropped]
    for r in kept:
        if r["organisationID"] == "999865331":
            r["city"] = "AVEIRO (moved)"
    with (folder / "organizations.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(orgs[0]))
        writer.writeheader()
        writer.writerows(kept)
    labels = read_rows(folder / "project_euroscivoc.csv")
    with (folder / "project_euroscivoc.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(labels[0]))
        writer.writeheader()
        writer.writerows(labels[1:])

    summary = import_cordis(db, folder)
    assert summary.participations_removed == 1 and summary.fields_removed == 1
    after = counts(db)
    assert after["participations"] == len(before["participations"]) - 1
    assert after["project_fields"] == len(before["project_fields"]) - 1
    assert after["organisations"] == len(before["organisations"])  # the pool keeps it
    with db.session() as s:
        pics = {
            p.organisation.pic
            for p in s.scalars(select(Participation).where(
                Participation.project_id == dropped["projectID"],
                Participation.role == dropped["role"]))
        }
        assert dropped["organisationID"] not in pics
        aveiro = s.scalar(select(Organisation).where(Organisation.pic == "999865331"))
        assert aveiro.city == "AVEIRO (moved)"  # not a member: CORDIS values are refreshed
        assert s.get(ProjectField, (labels[0]["projectID"], labels[0]["code"])) is None


def test_member_pic_joins_its_cordis_projects(db: Database) -> None:
    pic = "910945140"  # SINTEF: in two projects of the fixture
    org_id = add_member(db, pic, name="SINTEF (club member)", country="NO",
                        organisation_type="research", city=None)
    summary = import_cordis(db, COMMA)
    raw = read_rows(COMMA / "organizations.csv")
    assert summary.organisations_created == len({r["organisationID"] for r in raw}) - 1
    with db.session() as s:
        orgs = s.scalars(select(Organisation).where(Organisation.pic == pic)).all()
        assert [o.id for o in orgs] == [org_id]  # reused, never a second row for one PIC
        org = orgs[0]
        assert org.name == "SINTEF (club member)"  # the member's own value stands
        sintef = next(r for r in raw if r["organisationID"] == pic)
        assert org.city == sintef["city"]  # empty in the member's row: filled from CORDIS
        assert org.short_name == sintef["shortName"]
        member = s.get(Member, "m1")
        projects = {p.project_id for p in member.organisation.participations}
        assert projects == {r["projectID"] for r in raw if r["organisationID"] == pic}
    import_cordis(db, COMMA)  # and again: still the member's values
    with db.session() as s:
        assert s.get(Organisation, org_id).name == "SINTEF (club member)"


def test_a_slice_of_the_real_dev_folder(db: Database, cordis_dev: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slice"
    folder.mkdir()
    with (cordis_dev / "projects.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        projects = [row for _, row in zip(range(200), reader)]
        header = reader.fieldnames
    ids = {p["id"] for p in projects}
    parts = [r for r in read_rows(cordis_dev / "organizations.csv") if r["projectID"] in ids]
    labels = [r for r in read_rows(cordis_dev / "project_euroscivoc.csv") if r["projectID"] in ids]
    for name, rows, fieldnames in (
        ("projects.csv", projects, header),
        ("organizations.csv", parts, list(parts[0])),
        ("project_euroscivoc.csv", labels, list(labels[0])),
    ):
        with (folder / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames)
            writer.writeheader()
            writer.writerows(rows)

    result = CliRunner().invoke(main, ["--db", db.url, "cordis", "import", str(folder)])
    assert result.exit_code == 0, result.output
    distinct = {(r["projectID"], r["organisationID"], r["role"]) for r in parts}
    assert counts(db) == {
        "organisations": len({r["organisationID"] for r in parts}),
        "members": 0,
        "projects": 200,
        "participations": len(distinct),
        "project_fields": len(labels),
    }
    assert f"imported 200 projects (200 new), {len({r['organisationID'] for r in parts})} " \
           "organisations" in result.output
    with db.session() as s:
        roles = Counter(s.scalars(select(Participation.role)))
        assert roles == Counter(role for _, _, role in distinct)
        coordinators = s.scalars(
            select(Organisation.pic).join(Participation).where(Participation.role == "coordinator")
        ).all()
        assert len(coordinators) == 200
        # the longest objective survives the round trip byte for byte
        longest = max(projects, key=lambda p: len(p["objective"]))
        assert s.get(Project, longest["id"]).objective == longest["objective"].strip()


def test_a_failure_while_storing_writes_nothing(db: Database) -> None:
    add_member(db, "999865331", name="Aveiro", country="PT")
    before = snapshot(db)
    data = read_cordis_folder(COMMA)
    # SINTEF's participations now point nowhere: storing fails after the upserts ran
    del data.organisations["910945140"]
    with pytest.raises(KeyError):
        store_cordis(db, data)
    assert snapshot(db) == before


# --- bad input, through the command line ----------------------------------------------------


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def _unclosed_quote(folder: Path) -> tuple[str, ...]:
    path = folder / "projects.csv"
    line = line_of(path, "101130814,")
    _rewrite(path, "101130814,SO-TOX,", '101130814,"SO-TOX,')
    return (f"projects.csv:{line}:", "malformed CSV", "quote")


def _stray_quote(folder: Path) -> tuple[str, ...]:
    path = folder / "organizations.csv"
    line = line_of(path, "101108499,999993080")
    _rewrite(path, "101108499,999993080,INSTITUT PASTEUR,",
             '101108499,999993080,"INSTITUT" PASTEUR,')
    return (f"organizations.csv:{line}:", "malformed CSV")


def _wrong_encoding(folder: Path) -> tuple[str, ...]:
    path = folder / "projects.csv"
    text = path.read_text(encoding="utf-8")
    line = next(n for n, s in enumerate(text.splitlines(), 1) if not s.isascii())
    path.write_bytes(text.encode("cp1252", errors="replace"))
    return (f"projects.csv:{line}:", "not valid UTF-8", "save the file as UTF-8")


def _utf16(folder: Path) -> tuple[str, ...]:
    path = folder / "project_euroscivoc.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    return ("project_euroscivoc.csv:1:", "UTF-16")


def _missing_column(folder: Path) -> tuple[str, ...]:
    _rewrite(folder / "organizations.csv", "projectID,organisationID,", "projectID,PIC,")
    return ("organizations.csv:1: header:", "missing required column(s) organisationID")


def _misspelt_column(folder: Path) -> tuple[str, ...]:
    _rewrite(folder / "projects.csv", ",objective,", ",objectve,")
    return ("projects.csv:1: header:", "objective", "'objectve' looks like 'objective'")


def _semicolon_header_comma_rows(folder: Path) -> tuple[str, ...]:
    path = folder / "project_euroscivoc.csv"
    _rewrite(path, "projectID,code,title", "projectID;code;title")
    return ("project_euroscivoc.csv:2:", "header is separated by ';' but this row is not")


def _extra_field(folder: Path) -> tuple[str, ...]:
    path = folder / "organizations.csv"
    line = line_of(path, "101130814,998482208")
    _rewrite(path, "101130814,998482208,INSTITUTO POLITECNICO DE BRAGANCA,",
             "101130814,998482208,INSTITUTO POLITECNICO, DE BRAGANCA,")
    return (f"organizations.csv:{line}:", "18 field(s) where the header has 17")


def _duplicate_project(folder: Path) -> tuple[str, ...]:
    path = folder / "projects.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    first = line_of(path, rows[1][0] + ",")
    total_lines = len(path.read_text(encoding="utf-8").splitlines())
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow(rows[1])
    return (f"projects.csv:{total_lines + 1}: id:", f"project {rows[1][0]} is listed twice",
            f"lines {first} and {total_lines + 1}")


def _duplicate_label(folder: Path) -> tuple[str, ...]:
    path = folder / "project_euroscivoc.csv"
    with path.open("a", encoding="utf-8") as f:
        f.write("101115028,/21/39/225,oncology\n")
    first = line_of(path, "101115028,/21/39/225,")
    last = len(path.read_text(encoding="utf-8").splitlines())
    return (f"project_euroscivoc.csv:{last}: code:", f"lines {first} and {last}")


def _bad_values(folder: Path) -> tuple[str, ...]:
    orgs = folder / "organizations.csv"
    line = line_of(orgs, "101090287,999865331")
    _rewrite(orgs, "PT501461108,coordinator,1,false,HES", "PT501461108,coordinator,1,maybe,HES")
    projects = folder / "projects.csv"
    pline = line_of(projects, "101108499,")
    with projects.open(encoding="utf-8", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["id"] == "101108499")
    _rewrite(projects, f",{row['startDate']},{row['endDate']},", f",{row['startDate']},31/12/2027,")
    return (f"organizations.csv:{line}: SME:", "'maybe' is not true or false",
            f"projects.csv:{pline}: endDate:", "YYYY-MM-DD")


def _unknown_project(folder: Path) -> tuple[str, ...]:
    path = folder / "organizations.csv"
    with path.open("a", encoding="utf-8") as f:
        f.write("999,999865331,UNIVERSIDADE DE AVEIRO,UAveiro,,participant,2,false,HES,Aveiro,"
                "PT,PT191,,1,1,0,false\n")
    last = len(path.read_text(encoding="utf-8").splitlines())
    return (f"organizations.csv:{last}: projectID:", "project 999 is not in projects.csv")


def _missing_file(folder: Path) -> tuple[str, ...]:
    (folder / "organizations.csv").unlink()
    return ("organizations.csv: file missing",)


def _empty_file(folder: Path) -> tuple[str, ...]:
    (folder / "projects.csv").write_bytes(b"")
    return ("projects.csv:1:", "empty")


def _truncated_gzip(folder: Path) -> tuple[str, ...]:
    for p in folder.glob("*.csv"):
        p.unlink()
    for p in GZ.iterdir():
        shutil.copy(p, folder / p.name)
    path = folder / "projects.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ("projects.csv.gz:", "truncated or damaged")


def _not_gzip(folder: Path) -> tuple[str, ...]:
    (folder / "project_euroscivoc.csv").rename(folder / "project_euroscivoc.csv.gz")
    return ("project_euroscivoc.csv.gz:1:", "not a gzip file")


BAD_INPUT = {
    "unclosed quote": _unclosed_quote,
    "stray quote": _stray_quote,
    "wrong encoding": _wrong_encoding,
    "utf-16": _utf16,
    "missing column": _missing_column,
    "misspelt column": _misspelt_column,
    "wrong separator in header": _semicolon_header_comma_rows,
    "extra field in a row": _extra_field,
    "duplicate project id": _duplicate_project,
    "duplicate label": _duplicate_label,
    "bad values": _bad_values,
    "unknown project": _unknown_project,
    "missing file": _missing_file,
    "empty file": _empty_file,
    "truncated gzip": _truncated_gzip,
    "not gzip": _not_gzip,
}


# every data row of project_euroscivoc.csv is one problem when the header's separator differs
PROBLEM_COUNT = {"bad values": 2,
                 "wrong separator in header": len(read_rows(COMMA / "project_euroscivoc.csv"))}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_message_and_writes_nothing(
    case: str, db: Database, tmp_path: Path
) -> None:
    add_member(db, "999865331", name="Aveiro", country="PT")
    before = snapshot(db)
    folder = copy_folder(COMMA, tmp_path)
    expected = BAD_INPUT[case](folder)
    result = CliRunner().invoke(main, ["--db", db.url, "cordis", "import", str(folder)])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    for fragment in expected:
        assert fragment in result.output, (fragment, result.output)
    # one message per real problem, not a follow-up error for every row of the other files
    problem_lines = [line for line in result.output.splitlines()
                     if re.match(r"^(Error: )?\S+\.csv(\.gz)?:(\d+:| file missing)", line)]
    assert len(problem_lines) == PROBLEM_COUNT.get(case, 1), result.output
    assert "nothing was imported" in result.output or "file missing" in result.output
    assert snapshot(db) == before


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        read_cordis_folder(tmp_path / "nope")
    # a file given instead of its folder is not "no such folder"
    (tmp_path / "projects.csv").write_text("id\n", encoding="utf-8")
    with pytest.raises(InputError, match="projects.csv: is a file, not a folder"):
        read_cordis_folder(tmp_path / "projects.csv")


def test_problems_are_listed_all_at_once_but_capped(tmp_path: Path) -> None:
    folder = copy_folder(COMMA, tmp_path)
    path = folder / "organizations.csv"
    rows = read_rows(path)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        for _ in range(3):
            writer.writerows({**r, "SME": "perhaps"} for r in rows)
    with pytest.raises(ValidationError) as info:
        read_cordis_folder(folder)
    assert len(info.value.problems) == cordis.MAX_PROBLEMS_PER_FILE
    assert all(p.field == "SME" for p in info.value.problems)


def test_participation_ids_survive_a_reimport(db: Database) -> None:
    import_cordis(db, GZ)
    with db.session() as s:
        first = {(p.project_id, p.organisation_id, p.role): p.id
                 for p in s.scalars(select(Participation))}
    import_cordis(db, COMMA)
    with db.session() as s:
        second = {(p.project_id, p.organisation_id, p.role): p.id
                  for p in s.scalars(select(Participation))}
    assert first == second
    by_project: dict[str, int] = defaultdict(int)
    for project_id, _, _ in second:
        by_project[project_id] += 1
    assert set(by_project) == {r["id"] for r in read_rows(COMMA / "projects.csv")}
