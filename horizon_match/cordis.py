"""Importing CORDIS project data: the partner pool and the members' track record.

A CORDIS folder holds `projects.csv`, `organizations.csv` and optionally
`project_euroscivoc.csv`, either as the Commission publishes them (`project.csv`,
`organization.csv`, `euroSciVoc.csv`: `;`-separated, many more columns, decimal commas) or as
in ../shared/data/cordis_dev (comma-separated); any of them may be gzipped (`.csv.gz`).

Two steps, kept apart so either can be tested alone:

- `read_cordis_folder` reads and checks every file whole and returns plain rows
  (`CordisData`), or raises `ValidationError` listing each problem as `file:line: field: ...`;
- `store_cordis` writes those rows in one transaction with bulk statements (executemany,
  dialect upserts), so a re-import is idempotent and bad input writes nothing.

Organisations are keyed by PIC. A PIC that a member's organisation already carries is reused:
the member's own values win, CORDIS only fills the fields the member left empty.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, case, delete, func, select, update
from sqlalchemy.sql.expression import ColumnElement, bindparam

from horizon_match.db import Database
from horizon_match.errors import DatabaseError, InputError, Problem, ValidationError
from horizon_match.progress import NULL_PROGRESS, Progress
from models.tables import Member, Organisation, Participation, Project, ProjectField

# CORDIS activity types -> models.tables.ORGANISATION_TYPES
ACTIVITY_TYPES = {
    "HES": "university",
    "REC": "research",
    "PRC": "company",
    "PUB": "public",
    "OTH": "other",
}

# Problems listed per file before the rest are cut: a wrong file gives one per row.
MAX_PROBLEMS_PER_FILE = 20
BATCH_SIZE = 1000


@dataclass(frozen=True)
class FileSpec:
    """One kind of CORDIS file: the names it goes by and the columns we read from it."""

    key: str
    names: tuple[str, ...]  # accepted file names (each also with .gz), the first is ours
    # our field -> header names accepted for it (matched case-insensitively)
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]  # fields whose column must be in the header

    @property
    def label(self) -> str:
        return " / ".join(self.names)


PROJECTS = FileSpec(
    "projects",
    ("projects.csv", "project.csv"),
    {
        "id": ("id",),
        "acronym": ("acronym",),
        "title": ("title",),
        "objective": ("objective",),
        "keywords": ("keywords",),
        "status": ("status",),
        "start_date": ("startDate",),
        "end_date": ("endDate",),
        "total_cost": ("totalCost",),
        "ec_max_contribution": ("ecMaxContribution",),
        "funding_scheme": ("fundingScheme",),
        "master_call": ("masterCall",),
        "topic": ("topic", "topics"),
        "topic_title": ("topicTitle",),
        "legal_basis": ("legalBasis",),
        "call_year": ("call_year", "callYear"),
    },
    required=(
        "id", "acronym", "title", "objective", "status", "start_date", "end_date",
        "total_cost", "ec_max_contribution", "funding_scheme", "master_call", "topic",
        "legal_basis",
    ),
)

ORGANIZATIONS = FileSpec(
    "organizations",
    ("organizations.csv", "organization.csv"),
    {
        "project_id": ("projectID",),
        "pic": ("organisationID", "organizationID"),
        "name": ("name",),
        "short_name": ("shortName",),
        "role": ("role",),
        "order": ("order",),
        "sme": ("SME",),
        "activity_type": ("activityType",),
        "city": ("city",),
        "country": ("country",),
        "url": ("organizationURL", "organisationURL"),
        "ec_contribution": ("ecContribution",),
    },
    required=(
        "project_id", "pic", "name", "role", "order", "sme", "activity_type", "country",
        "ec_contribution",
    ),
)

EUROSCIVOC = FileSpec(
    "euroscivoc",
    ("project_euroscivoc.csv", "euroSciVoc.csv"),
    {
        "project_id": ("projectID",),
        "code": ("code", "euroSciVocCode"),
        "title": ("title", "euroSciVocTitle"),
    },
    required=("project_id", "code", "title"),
)

# Only read when projects.csv has no topicTitle column (the official export keeps topic
# titles in topics.csv: projectID;topic;title). Both shapes have `topic` and `title`.
TOPICS = FileSpec(
    "topics",
    ("topics.csv",),
    {"topic": ("topic",), "title": ("title",)},
    required=("topic", "title"),
)

# Column sizes in models.tables: keys longer than these are errors, text is shortened.
_KEY_LIMITS = {"id": 120, "pic": 20, "code": 200, "topic": 120, "master_call": 120, "role": 30}
_TEXT_LIMITS = {
    "acronym": 200, "status": 20, "funding_scheme": 100, "legal_basis": 300,
    "name": 500, "short_name": 200, "city": 200, "url": 500, "field_title": 300,
}
_CALL_YEAR = re.compile(r"-(20\d\d)-")


# --- results ------------------------------------------------------------------------------


@dataclass
class CordisData:
    """Everything read from one CORDIS folder, checked and ready to store.

    Rows are dicts keyed by table column names; participations and organisations refer to
    organisations by PIC (the database id is only known when storing).
    """

    projects: list[dict[str, Any]]
    organisations: dict[str, dict[str, Any]]  # PIC -> organisation columns
    participations: list[dict[str, Any]]  # project_id, pic, role, position, ec_contribution
    fields: list[dict[str, Any]] | None  # None: no EuroSciVoc file, stored labels are kept
    files: dict[str, Path]
    # rows of organizations.csv folded into another row with the same (project, PIC, role):
    # a third party linked to several beneficiaries is listed once per beneficiary
    merged_rows: int = 0


@dataclass
class CordisImportSummary:
    projects: int = 0
    projects_created: int = 0
    organisations: int = 0
    organisations_created: int = 0
    participations: int = 0
    participations_removed: int = 0
    fields: int = 0
    fields_removed: int = 0
    merged_rows: int = 0
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)


# --- reading CSV files -----------------------------------------------------------------------


class _FileFailed(Exception):
    """A file cannot be read further (bad encoding, broken gzip, malformed CSV)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def find_cordis_files(folder: Path) -> dict[str, Path]:
    """The CORDIS files in `folder`, by kind ("projects", "organizations", ...).

    Raises InputError naming the missing file when a required one is absent.
    """
    if folder.is_file():
        raise InputError(
            f"{folder}: is a file, not a folder; give the folder holding projects.csv and "
            "organizations.csv"
        )
    if not folder.is_dir():
        raise InputError(
            f"{folder}: no such folder; give the folder holding projects.csv and "
            "organizations.csv (as CORDIS publishes them or as in ../shared/data/cordis_dev)"
        )
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    found: dict[str, Path] = {}
    for spec in (PROJECTS, ORGANIZATIONS, EUROSCIVOC, TOPICS):
        candidates = sorted({
            by_lower[n.lower() + suffix]
            for n in spec.names
            for suffix in ("", ".gz")
            if n.lower() + suffix in by_lower
        })
        if len(candidates) > 1:
            raise InputError(
                f"{folder}: several {spec.key} files ({', '.join(p.name for p in candidates)}); "
                "keep only one of them"
            )
        if candidates:
            found[spec.key] = candidates[0]
    for spec in (PROJECTS, ORGANIZATIONS):
        if spec.key not in found:
            raise InputError(
                f"{folder / spec.names[0]}: file missing; a CORDIS folder needs "
                f"{spec.label} (optionally .gz) beside "
                f"{(ORGANIZATIONS if spec is PROJECTS else PROJECTS).names[0]}"
            )
    return found


def _open_binary(path: Path) -> Any:
    with path.open("rb") as probe:
        magic = probe.read(2)
    # By content, not name: a gzipped file without .gz still reads, a .gz that is not
    # gzip fails on its first line with a clear message.
    if magic == b"\x1f\x8b" or path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _text_lines(path: Path, raw: Any, where: list[int]) -> Iterator[str]:
    """Decoded lines of a binary file; `where[0]` is the number of the last line read."""
    while True:
        try:
            line = raw.readline()
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            problem = "the gzip file is truncated or damaged"
            if isinstance(exc, gzip.BadGzipFile) or "Not a gzipped" in str(exc):
                problem = "not a gzip file although its name ends in .gz"
            raise _FileFailed(
                Problem(str(path), where[0] + 1, None,
                        f"{problem} ({exc}); download or compress it again")
            ) from exc
        if not line:
            return
        where[0] += 1
        if where[0] == 1 and line[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise _FileFailed(Problem(str(path), 1, None,
                                      "the file is UTF-16 encoded; save it as UTF-8"))
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(line[: exc.start].decode("utf-8", "replace")) + 1
            raise _FileFailed(
                Problem(str(path), where[0], None,
                        f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column {column}); "
                        "CORDIS files are UTF-8: save the file as UTF-8 and import again")
            ) from exc
        if where[0] == 1:
            text = text.removeprefix("\ufeff")
        yield text


def detect_delimiter(header_line: str) -> str:
    """`;` (the official CORDIS export), tab, or `,` — whichever splits the header most."""
    counts = {d: header_line.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def iter_csv_records(
    path: Path, info: dict[str, str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(line number where the record starts, fields) for every record, header included.

    Quoted fields may span lines. The delimiter found in the header goes to
    `info["delimiter"]`. Raises _FileFailed on bad encoding, broken gzip or malformed
    quoting, naming the line.
    """
    where = [0]
    try:
        opened = _open_binary(path)
    except OSError as exc:
        raise _FileFailed(Problem(str(path), None, None,
                                  f"cannot read it ({exc.strerror}); check its permissions")
                          ) from exc
    with opened as raw:
        lines = _text_lines(path, raw, where)
        first = next(lines, None)
        if first is None:
            raise _FileFailed(
                Problem(str(path), 1, None, "the file is empty; expected a header line"))
        delimiter = detect_delimiter(first)
        if info is not None:
            info["delimiter"] = delimiter

        def chained() -> Iterator[str]:
            yield first
            yield from lines

        reader = csv.reader(chained(), delimiter=delimiter, strict=True)
        start = 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                hint = (
                    "a quote opened there is never closed"
                    if "end of data" in str(exc) or "field larger" in str(exc)
                    else "check the quotes around that line (a quote inside a quoted field "
                    "is written twice: \"\")"
                )
                at = f" (reading line {where[0]})" if where[0] != start else ""
                raise _FileFailed(
                    Problem(str(path), start, None,
                            f"malformed CSV in the record starting here{at}: {exc}; {hint}")
                ) from exc
            yield start, record
            start = where[0] + 1


def _match_header(
    path: Path, header: list[str], spec: FileSpec
) -> tuple[dict[str, int], list[Problem]]:
    """Map each of our fields to its column index; problems for missing/duplicate columns."""
    problems: list[Problem] = []
    positions: dict[str, int] = {}
    names = [h.strip() for h in header]
    lower = [n.lower() for n in names]
    used: set[int] = set()
    for fld, aliases in spec.columns.items():
        hits = [i for i, n in enumerate(lower) if n in {a.lower() for a in aliases}]
        if len(hits) > 1:
            problems.append(Problem(
                str(path), 1, names[hits[0]],
                f"column appears {len(hits)} times "
                f"(columns {', '.join(str(i + 1) for i in hits)}); keep one",
            ))
        if hits:
            positions[fld] = hits[0]
            used.update(hits)
    missing = [spec.columns[f][0] for f in spec.required if f not in positions]
    if missing:
        unknown = [n for i, n in enumerate(names) if i not in used and n]
        hints = []
        for m in missing:
            close = difflib.get_close_matches(
                m.lower(), [u.lower() for u in unknown], n=1, cutoff=0.75)
            if close:
                original = next(u for u in unknown if u.lower() == close[0])
                hints.append(f"{original!r} looks like {m!r}")
        shape = (
            f"the header has {len(names)} column(s)"
            + (f" ({'; '.join(hints)})" if hints else "")
        )
        problems.append(Problem(
            str(path), 1, "header",
            f"missing required column(s) {', '.join(missing)}; {shape}. Expected a CORDIS "
            f"{spec.key} file ({spec.label}) with a header line naming its columns",
        ))
    return positions, problems


class _Table:
    """One CSV file being read: the header is checked at once, rows come one by one.

    Rows are streamed rather than kept, so a large export is never held twice in memory.
    Problems (header, encoding, quoting, field counts) go to the shared `problems` list as
    they are found; `broken` tells whether this file had any.
    """

    def __init__(self, path: Path, spec: FileSpec, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        self.count = 0
        self.fields: set[str] = set()
        self._info: dict[str, str] = {}
        self._records: Iterator[tuple[int, list[str]]] | None = None
        self._width = 0
        self._wanted: list[tuple[str, int]] = []
        try:
            records = iter_csv_records(path, self._info)
            _, header = next(records)
        except _FileFailed as failed:
            self._add(failed.problem)
            return
        positions, header_problems = _match_header(path, header, spec)
        for problem in header_problems:
            self._add(problem)
        if header_problems:
            return
        self.fields = set(positions)
        self._records = records
        self._width = len(header)
        self._wanted = list(positions.items())

    @property
    def broken(self) -> bool:
        return self.count > 0

    def _add(self, problem: Problem) -> None:
        self.count += 1
        self.problems.append(problem)

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line, {field: raw text}) for each well-formed record; stops at a fatal problem."""
        if self._records is None:
            return
        width, wanted = self._width, self._wanted
        try:
            for line, record in self._records:
                if len(record) == width:
                    yield line, {f: record[i] for f, i in wanted}
                elif record and record != [""]:  # blank lines are skipped
                    self._add(Problem(str(self.path), line, None,
                                      f"{len(record)} field(s) where the header has {width}; "
                                      f"{self._width_hint(record)}"))
                    if self.count >= MAX_PROBLEMS_PER_FILE:
                        return
        except _FileFailed as failed:
            self._add(failed.problem)

    def _width_hint(self, record: list[str]) -> str:
        delimiter = self._info["delimiter"]
        if len(record) == 1 and any(d in record[0] for d in ",;\t" if d != delimiter):
            return f"the header is separated by {delimiter!r} but this row is not"
        return "a stray separator, or a field containing the separator without quotes?"


# --- values ---------------------------------------------------------------------------------


def parse_money(value: str) -> float | None:
    """EUR amount: `1234.5`, or the official export's decimal comma `1234,5`."""
    text = value.strip()
    if not text:
        return None
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        amount = float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an amount (expected e.g. 1234.50)") from None
    if amount != amount or amount in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not an amount (expected e.g. 1234.50)")
    return amount


def parse_date(value: str) -> date | None:
    """ISO date; a time part (`2022-09-01 00:00:00`) is ignored."""
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def parse_bool(value: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def parse_int(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def organisation_size(sme: bool | None, activity_type: str | None) -> str | None:
    """CORDIS knows SMEs; a private for-profit company that is not an SME is large."""
    if sme:
        return "sme"
    if sme is False and activity_type == "PRC":
        return "large"
    return None


def _text(value: str, limit: int | None = None) -> str | None:
    text = value.replace("\r\n", "\n").strip()
    if not text:
        return None
    return text[:limit] if limit else text


class _Checker:
    """Collects problems of one file, at most MAX_PROBLEMS_PER_FILE."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= MAX_PROBLEMS_PER_FILE

    def add(self, line: int | None, fld: str | None, message: str) -> None:
        self.count += 1
        if self.count <= MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.path, line, fld, message))

    def value(self, parse: Any, raw: str, line: int, column: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            self.add(line, column, str(exc))
            return None

    def key(self, raw: str, line: int, column: str, limit: int) -> str | None:
        text = raw.strip()
        if not text:
            self.add(line, column, "empty; every row needs one")
            return None
        if len(text) > limit:
            self.add(line, column, f"{len(text)} characters, at most {limit} fit")
            return None
        return text


def _column(spec: FileSpec, fld: str) -> str:
    return spec.columns[fld][0]


def _check_projects(
    table: _Table, topic_titles: dict[str, str], problems: list[Problem]
) -> list[dict[str, Any]]:
    check = _Checker(table.path, problems)
    col = lambda f: _column(PROJECTS, f)  # noqa: E731
    seen: dict[str, int] = {}
    projects: list[dict[str, Any]] = []
    for line, row in table.rows():
        if check.full:
            break
        pid = check.key(row["id"], line, col("id"), _KEY_LIMITS["id"])
        if pid is not None and pid in seen:
            check.add(line, col("id"), f"project {pid} is listed twice (lines {seen[pid]} and "
                      f"{line}); keep one row per project")
            continue
        if pid is not None:
            seen[pid] = line
        title = _text(row["title"])
        if title is None:
            check.add(line, col("title"), "empty; every project needs a title")
        # The official `topics` column may list several topics; the first is the main one.
        topic_raw = re.split(r"[;,]", row["topic"])[0]
        topic = _text(topic_raw)
        if topic and len(topic) > _KEY_LIMITS["topic"]:
            check.add(line, col("topic"), f"{len(topic)} characters, at most 120 fit")
        master_call = _text(row["master_call"])
        if master_call and len(master_call) > _KEY_LIMITS["master_call"]:
            check.add(line, col("master_call"), f"{len(master_call)} characters, at most 120 fit")
        call_year = None
        if row.get("call_year", "").strip():
            call_year = check.value(parse_int, row["call_year"], line, col("call_year"))
        elif master_call and (m := _CALL_YEAR.search(master_call)):
            call_year = int(m.group(1))
        topic_title = _text(row["topic_title"]) if "topic_title" in row else None
        projects.append({
            "id": pid,
            "source": "cordis",
            "acronym": _text(row["acronym"], _TEXT_LIMITS["acronym"]),
            "title": title or "",
            "objective": _text(row["objective"]) or "",
            "keywords": _text(row["keywords"]) if "keywords" in row else None,
            "status": _text(row["status"], _TEXT_LIMITS["status"]),
            "start_date": check.value(parse_date, row["start_date"], line, col("start_date")),
            "end_date": check.value(parse_date, row["end_date"], line, col("end_date")),
            "total_cost": check.value(parse_money, row["total_cost"], line, col("total_cost")),
            "ec_max_contribution": check.value(
                parse_money, row["ec_max_contribution"], line, col("ec_max_contribution")),
            "funding_scheme": _text(row["funding_scheme"], _TEXT_LIMITS["funding_scheme"]),
            "master_call": master_call,
            "topic": topic,
            "topic_title": topic_title or (topic_titles.get(topic) if topic else None),
            "legal_basis": _text(row["legal_basis"], _TEXT_LIMITS["legal_basis"]),
            "call_year": call_year,
        })
    return projects


def _check_organisations(
    table: _Table, project_ids: set[str] | None, problems: list[Problem]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], int]:
    check = _Checker(table.path, problems)
    col = lambda f: _column(ORGANIZATIONS, f)  # noqa: E731
    organisations: dict[str, dict[str, Any]] = {}
    participations: dict[tuple[str, str, str], dict[str, Any]] = {}
    merged = 0
    for line, row in table.rows():
        if check.full:
            break
        project_id = check.key(row["project_id"], line, col("project_id"), _KEY_LIMITS["id"])
        if project_ids is not None and project_id is not None and project_id not in project_ids:
            check.add(line, col("project_id"), f"project {project_id} is not in projects.csv; "
                      "use the organizations file of the same CORDIS export")
        pic = check.key(row["pic"], line, col("pic"), _KEY_LIMITS["pic"])
        if pic is not None and not pic.isdigit():
            check.add(line, col("pic"), f"{pic!r} is not a PIC (digits only)")
        role = check.key(row["role"], line, col("role"), _KEY_LIMITS["role"])
        name = _text(row["name"], _TEXT_LIMITS["name"])
        if name is None:
            check.add(line, col("name"), "empty; every organisation needs a name")
        activity = row["activity_type"].strip().upper() or None
        if activity is not None and activity not in ACTIVITY_TYPES:
            check.add(line, col("activity_type"),
                      f"{row['activity_type']!r} is not a CORDIS activity type "
                      f"({', '.join(ACTIVITY_TYPES)})")
        country = row["country"].strip().upper() or None
        if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
            check.add(line, col("country"), f"{row['country']!r} is not a two-letter country code")
        sme = check.value(parse_bool, row["sme"], line, col("sme"))
        position = check.value(parse_int, row["order"], line, col("order"))
        contribution = check.value(
            parse_money, row["ec_contribution"], line, col("ec_contribution"))
        if pic is None or project_id is None or role is None or check.count:
            continue
        values = {
            "pic": pic,
            "name": name,
            "short_name": _text(row.get("short_name", ""), _TEXT_LIMITS["short_name"]),
            "country": country,
            "city": _text(row.get("city", ""), _TEXT_LIMITS["city"]),
            "organisation_type": ACTIVITY_TYPES.get(activity) if activity else None,
            "sme": sme,
            "url": _text(row.get("url", ""), _TEXT_LIMITS["url"]),
            "_activity": activity,
        }
        known = organisations.get(pic)
        if known is None:
            organisations[pic] = values
        else:
            # Same PIC in several rows: the first row's values stand, later rows fill gaps.
            for k, v in values.items():
                if known.get(k) is None and v is not None:
                    known[k] = v
        key = (project_id, pic, role)
        existing = participations.get(key)
        if existing is None:
            participations[key] = {
                "project_id": project_id, "pic": pic, "role": role,
                "position": position, "ec_contribution": contribution,
            }
        else:
            # One row per linked beneficiary: keep the first position, add up the grant.
            merged += 1
            if position is not None:
                earlier = existing["position"]
                existing["position"] = position if earlier is None else min(position, earlier)
            if contribution is not None:
                existing["ec_contribution"] = (existing["ec_contribution"] or 0.0) + contribution
    for values in organisations.values():
        values["size"] = organisation_size(values["sme"], values.pop("_activity"))
    return organisations, list(participations.values()), merged


def _check_fields(
    table: _Table, project_ids: set[str] | None, problems: list[Problem]
) -> list[dict[str, Any]]:
    check = _Checker(table.path, problems)
    col = lambda f: _column(EUROSCIVOC, f)  # noqa: E731
    seen: dict[tuple[str, str], int] = {}
    fields: list[dict[str, Any]] = []
    for line, row in table.rows():
        if check.full:
            break
        project_id = check.key(row["project_id"], line, col("project_id"), _KEY_LIMITS["id"])
        if project_ids is not None and project_id is not None and project_id not in project_ids:
            check.add(line, col("project_id"), f"project {project_id} is not in projects.csv; "
                      "use the EuroSciVoc file of the same CORDIS export")
        code = check.key(row["code"], line, col("code"), _KEY_LIMITS["code"])
        title = _text(row["title"], _TEXT_LIMITS["field_title"])
        if title is None:
            check.add(line, col("title"), "empty; every EuroSciVoc label needs a title")
        if project_id is None or code is None:
            continue
        if (project_id, code) in seen:
            check.add(line, col("code"), f"label {code} of project {project_id} is listed twice "
                      f"(lines {seen[(project_id, code)]} and {line}); keep one")
            continue
        seen[(project_id, code)] = line
        fields.append({"project_id": project_id, "code": code, "title": title or ""})
    return fields


def read_cordis_folder(folder: Path, progress: Progress = NULL_PROGRESS) -> CordisData:
    """Read and check a CORDIS folder whole. Raises ValidationError listing every problem."""
    files = find_cordis_files(folder)
    problems: list[Problem] = []
    projects_table = _Table(files["projects"], PROJECTS, problems)
    topic_titles: dict[str, str] = {}
    wants_titles = not projects_table.broken and "topic_title" not in projects_table.fields
    if "topics" in files and wants_titles:
        topics_table = _Table(files["topics"], TOPICS, problems)
        topic_titles = {
            r["topic"].strip(): t for _, r in topics_table.rows() if (t := _text(r["title"]))
        }
    else:
        files.pop("topics", None)
    progress.start("reading CORDIS files", len(files))
    if "topics" in files:
        progress.advance()
    projects = _check_projects(projects_table, topic_titles, problems)
    progress.advance()
    # With projects.csv unreadable, "project X is not in projects.csv" for every row of the
    # other files would only bury the one message that matters.
    project_ids = None if projects_table.broken else {p["id"] for p in projects}

    org_table = _Table(files["organizations"], ORGANIZATIONS, problems)
    organisations, participations, merged = _check_organisations(org_table, project_ids, problems)
    progress.advance()

    fields: list[dict[str, Any]] | None = None
    if "euroscivoc" in files:
        field_table = _Table(files["euroscivoc"], EUROSCIVOC, problems)
        fields = _check_fields(field_table, project_ids, problems)
        progress.advance()
    progress.finish()
    if problems:
        raise ValidationError(
            problems,
            f"{len(problems)} problem(s) in the CORDIS folder {folder}, nothing was imported; "
            "fix them and run the import again",
        )
    return CordisData(projects, organisations, participations, fields, files, merged)


# --- storing ----------------------------------------------------------------------------------


def _insert_for(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise DatabaseError(f"CORDIS import supports SQLite and PostgreSQL, not {dialect}")
    return insert


def _batches(rows: Sequence[Any], size: int = BATCH_SIZE) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


PROJECT_COLUMNS = (
    "id", "source", "acronym", "title", "objective", "keywords", "status", "start_date",
    "end_date", "total_cost", "ec_max_contribution", "funding_scheme", "master_call", "topic",
    "topic_title", "legal_basis", "call_year",
)
ORGANISATION_COLUMNS = (
    "pic", "name", "short_name", "country", "city", "organisation_type", "sme", "size", "url",
)
_TEXT_ORGANISATION_COLUMNS = {
    "name", "short_name", "country", "city", "organisation_type", "size", "url",
}


def _execute_batched(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]],
                     progress: Progress) -> None:
    for batch in _batches(rows):
        conn.execute(statement, list(batch))
        progress.advance(len(batch))


def _upsert_projects(conn: Connection, insert: Any, projects: list[dict[str, Any]],
                     progress: Progress) -> None:
    table = Project.__table__
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={c: stmt.excluded[c] for c in PROJECT_COLUMNS if c != "id"},
    )
    _execute_batched(conn, stmt, projects, progress)


def _upsert_organisations(conn: Connection, insert: Any, organisations: Iterable[dict[str, Any]],
                          progress: Progress) -> None:
    table = Organisation.__table__
    members = Member.__table__
    stmt = insert(table)
    owned_by_member = table.c.id.in_(select(members.c.organisation_id))

    def merged(column: str) -> ColumnElement[Any]:
        current: ColumnElement[Any] = table.c[column]
        if column in _TEXT_ORGANISATION_COLUMNS:
            current = func.nullif(current, "")
        # A member's own values win; CORDIS only fills what the member left empty.
        return case(
            (owned_by_member, func.coalesce(current, stmt.excluded[column])),
            else_=stmt.excluded[column],
        )

    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.pic],
        set_={c: merged(c) for c in ORGANISATION_COLUMNS if c != "pic"},
    )
    rows = [{c: o[c] for c in ORGANISATION_COLUMNS} for o in organisations]
    _execute_batched(conn, stmt, rows, progress)


def _sync_participations(
    conn: Connection, data: CordisData, organisation_ids: dict[str, int], progress: Progress
) -> tuple[int, int]:
    """Make the participations of the imported projects exactly those of the file.

    Returns (rows written, rows removed). Unchanged rows are not touched.
    """
    table = Participation.__table__
    project_ids = {p["id"] for p in data.projects}
    existing: dict[tuple[str, int, str], tuple[int, int | None, float | None]] = {}
    cordis_projects = select(Project.__table__.c.id).where(Project.__table__.c.source == "cordis")
    query = select(
        table.c.id, table.c.project_id, table.c.organisation_id, table.c.role,
        table.c.position, table.c.ec_contribution,
    ).where(table.c.project_id.in_(cordis_projects))
    for row_id, project_id, org_id, role, position, contribution in conn.execute(query):
        if project_id in project_ids:
            existing[(project_id, org_id, role)] = (row_id, position, contribution)

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    wanted: set[tuple[str, int, str]] = set()
    for p in data.participations:
        key = (p["project_id"], organisation_ids[p["pic"]], p["role"])
        wanted.add(key)
        old = existing.get(key)
        if old is None:
            inserts.append({"project_id": key[0], "organisation_id": key[1], "role": key[2],
                            "position": p["position"], "ec_contribution": p["ec_contribution"]})
        elif (old[1], old[2]) != (p["position"], p["ec_contribution"]):
            updates.append({"_id": old[0], "position": p["position"],
                            "ec_contribution": p["ec_contribution"]})
    stale = [v[0] for k, v in existing.items() if k not in wanted]

    _execute_batched(conn, table.insert(), inserts, progress)
    if updates:
        stmt = update(table).where(table.c.id == bindparam("_id")).values(
            position=bindparam("position"), ec_contribution=bindparam("ec_contribution"))
        for batch in _batches(updates):
            conn.execute(stmt, list(batch))
    for batch in _batches(stale):
        conn.execute(delete(table).where(table.c.id.in_(list(batch))))
    progress.advance(len(data.participations) - len(inserts))
    return len(inserts) + len(updates), len(stale)


def _sync_fields(conn: Connection, data: CordisData, progress: Progress) -> int:
    """Make the EuroSciVoc labels of the imported projects those of the file; returns removed."""
    assert data.fields is not None
    table = ProjectField.__table__
    project_ids = {p["id"] for p in data.projects}
    cordis_projects = select(Project.__table__.c.id).where(Project.__table__.c.source == "cordis")
    existing: dict[tuple[str, str], str] = {}
    query = select(table.c.project_id, table.c.code, table.c.title).where(
        table.c.project_id.in_(cordis_projects))
    for project_id, code, title in conn.execute(query):
        if project_id in project_ids:
            existing[(project_id, code)] = title
    inserts = [f for f in data.fields if (f["project_id"], f["code"]) not in existing]
    updates = [
        {"_project_id": f["project_id"], "_code": f["code"], "title": f["title"]}
        for f in data.fields
        if existing.get((f["project_id"], f["code"]), f["title"]) != f["title"]
    ]
    wanted = {(f["project_id"], f["code"]) for f in data.fields}
    stale = [k for k in existing if k not in wanted]
    _execute_batched(conn, table.insert(), inserts, progress)
    if updates:
        stmt = update(table).where(
            table.c.project_id == bindparam("_project_id"), table.c.code == bindparam("_code")
        ).values(title=bindparam("title"))
        conn.execute(stmt, updates)
    if stale:
        stmt = delete(table).where(
            table.c.project_id == bindparam("_project_id"), table.c.code == bindparam("_code"))
        conn.execute(stmt, [{"_project_id": p, "_code": c} for p, c in stale])
    progress.advance(len(data.fields) - len(inserts))
    return len(stale)


def store_cordis(
    db: Database, data: CordisData, progress: Progress = NULL_PROGRESS
) -> CordisImportSummary:
    """Write checked CORDIS rows in one transaction; a re-import of the same data is a no-op.

    Projects and organisations are upserted; the participations and EuroSciVoc labels of each
    imported project become exactly those of the files (rows gone from a file are removed).
    Projects missing from the files are kept: an export of one year does not erase another.
    """
    started = time.perf_counter()
    insert = _insert_for(db.dialect)
    total = (len(data.projects) + len(data.organisations) + len(data.participations)
             + len(data.fields or []))
    progress.start("storing CORDIS data", total)
    project_table = Project.__table__
    org_table = Organisation.__table__
    with db.session() as session:
        conn = session.connection()
        known_projects = set(conn.execute(select(project_table.c.id)).scalars())
        known_pics = set(conn.execute(
            select(org_table.c.pic).where(org_table.c.pic.is_not(None))).scalars())
        _upsert_projects(conn, insert, data.projects, progress)
        _upsert_organisations(conn, insert, data.organisations.values(), progress)
        organisation_ids: dict[str, int] = {
            pic: org_id for pic, org_id in conn.execute(
                select(org_table.c.pic, org_table.c.id).where(org_table.c.pic.is_not(None)))
        }
        _, removed = _sync_participations(conn, data, organisation_ids, progress)
        fields_removed = _sync_fields(conn, data, progress) if data.fields is not None else 0
    progress.finish()
    return CordisImportSummary(
        projects=len(data.projects),
        projects_created=sum(1 for p in data.projects if p["id"] not in known_projects),
        organisations=len(data.organisations),
        organisations_created=sum(1 for pic in data.organisations if pic not in known_pics),
        participations=len(data.participations),
        participations_removed=removed,
        fields=len(data.fields or []),
        fields_removed=fields_removed,
        merged_rows=data.merged_rows,
        seconds=time.perf_counter() - started,
        files=data.files,
    )


def import_cordis(
    db: Database, folder: Path, progress: Progress = NULL_PROGRESS
) -> CordisImportSummary:
    """Read, check and store a CORDIS folder (see the module docstring); all or nothing."""
    started = time.perf_counter()
    data = read_cordis_folder(Path(folder), progress)
    summary = store_cordis(db, data, progress)
    summary.seconds = time.perf_counter() - started
    return summary
