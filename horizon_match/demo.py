"""The demo: load the shipped Genoa member set, CORDIS subset and live calls into a database.

`build_demo` runs a fixed sequence of stages on a database and reports what it then holds;
`run_demo` is what `horizon-match demo` calls: it picks the database (a fresh
`data/demo.db` unless one is named explicitly) and runs `build_demo` on it. Later stages
(matching, consortia, digests) are appended to `STAGES`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from horizon_match.call_store import utc_naive
from horizon_match.config import DEMO_DIR, Settings
from horizon_match.db import Database, open_database
from horizon_match.errors import ConfigError, InputError
from horizon_match.progress import NULL_PROGRESS, Progress
from models import Call, Member, Organisation, Participation, Project

DEMO_DB_NAME = "demo.db"
NEXT_DEADLINES = 5

CORDIS_FILES = ("projects.csv.gz", "organizations.csv.gz", "project_euroscivoc.csv.gz")
MEMBERS_FILE = "members.jsonl"
CALLS_FILE = "calls.jsonl"


@dataclass(frozen=True)
class Deadline:
    identifier: str
    title: str
    at: datetime


@dataclass
class DemoReport:
    """What the demo database holds after `build_demo`, for the CLI to print."""

    db_url: str = ""
    fresh: bool = False  # True when run_demo created the default demo database anew
    db_path: Path | None = None  # that database's file, when it is the default one
    stages: dict[str, Any] = field(default_factory=dict)  # stage name -> that stage's summary
    members: int = 0
    members_by_type: dict[str, int] = field(default_factory=dict)
    members_by_language: dict[str, int] = field(default_factory=dict)
    organisations: int = 0
    member_organisations_with_projects: int = 0
    projects: int = 0  # from CORDIS
    member_projects: int = 0  # members' own past projects
    calls: int = 0
    calls_by_status: dict[str, int] = field(default_factory=dict)
    next_deadlines: list[Deadline] = field(default_factory=list)


Stage = Callable[[Database, Path, Progress, datetime | None], Any]


def _stage_cordis(db: Database, demo_dir: Path, progress: Progress, now: datetime | None) -> Any:
    from horizon_match.cordis import import_cordis

    return import_cordis(db, demo_dir / "cordis", progress=progress)


def _stage_members(db: Database, demo_dir: Path, progress: Progress, now: datetime | None) -> Any:
    from horizon_match.members import import_members

    return import_members(db, demo_dir / MEMBERS_FILE, now=now)


def _stage_calls(db: Database, demo_dir: Path, progress: Progress, now: datetime | None) -> Any:
    from horizon_match.ingest import import_call_files

    return import_call_files(db, [demo_dir / CALLS_FILE], now=now)


def _stage_weekly(db: Database, demo_dir: Path, progress: Progress, now: datetime | None) -> Any:
    """The weekly job on the loaded data (match, consortia, digests), emails as previews."""
    from horizon_match.jobs import WeeklyOptions, run_weekly

    out = demo_dir.parent / "demo-out"  # data/demo-out/, git-ignored
    for old in [*out.glob("*.eml"), *out.glob("*.html")] if out.is_dir() else []:
        old.unlink()
    options = WeeklyOptions(skip_scrape=True, as_of=now.date() if now else None, dry_run_dir=out)
    return run_weekly(db, Settings(db_url=db.url), options, progress)


# The order matters only for speed and readability: CORDIS first gives the partner pool, the
# members then attach to their CORDIS organisations by PIC, the calls come last.
STAGES: list[tuple[str, Stage]] = [
    ("cordis", _stage_cordis),
    ("members", _stage_members),
    ("calls", _stage_calls),
    ("weekly", _stage_weekly),
]


def check_demo_dir(demo_dir: Path) -> None:
    """Fail before touching any database when the shipped demo files are not all there."""
    needed = [demo_dir / MEMBERS_FILE, demo_dir / CALLS_FILE]
    needed += [demo_dir / "cordis" / name for name in CORDIS_FILES]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise InputError(
            f"the demo data is incomplete, missing: {', '.join(missing)}; restore data/demo/ "
            "from the repository (or rebuild it with data/demo/build_demo_data.py)"
        )


def build_demo(
    db: Database,
    demo_dir: Path = DEMO_DIR,
    progress: Progress = NULL_PROGRESS,
    *,
    now: datetime | None = None,
    weekly: bool = True,
) -> DemoReport:
    """Load the demo data into `db` stage by stage, then describe what the database holds.

    `weekly=False` only loads the data (the weekly job embeds every text with the real model,
    which takes minutes on a small machine).
    """
    check_demo_dir(demo_dir)
    report = DemoReport(db_url=db.engine.url.render_as_string(hide_password=True))
    for name, stage in STAGES:
        if name == "weekly" and not weekly:
            continue
        report.stages[name] = stage(db, demo_dir, progress, now)
    describe(db, report, now=now)
    return report


def describe(db: Database, report: DemoReport, *, now: datetime | None = None) -> DemoReport:
    """Fill the counts of `report` from the database."""
    # deadlines are stored as naive UTC: compare with "now" in the same terms
    moment = utc_naive(now)
    with db.session() as s:
        members = s.execute(
            select(Member.preferences, Member.language, Organisation.organisation_type).join(
                Organisation, Member.organisation_id == Organisation.id
            )
        ).all()
        report.members = len(members)
        report.members_by_type = dict(
            sorted(Counter(t or "unknown" for _, _, t in members).items())
        )
        report.members_by_language = dict(
            sorted(Counter(_language(p, lang) for p, lang, _ in members).items())
        )
        report.organisations = s.scalar(select(func.count()).select_from(Organisation)) or 0
        report.projects = (
            s.scalar(select(func.count()).select_from(Project).where(Project.source == "cordis"))
            or 0
        )
        report.member_projects = (
            s.scalar(select(func.count()).select_from(Project).where(Project.source == "member"))
            or 0
        )
        report.member_organisations_with_projects = (
            s.scalar(
                select(func.count(func.distinct(Member.id)))
                .join(Participation, Participation.organisation_id == Member.organisation_id)
                .join(Project, Project.id == Participation.project_id)
                .where(Project.source == "cordis")
            )
            or 0
        )
        statuses = s.execute(select(Call.status, func.count()).group_by(Call.status)).all()
        report.calls_by_status = dict(sorted((st or "unknown", n) for st, n in statuses))
        report.calls = sum(report.calls_by_status.values())
        upcoming = s.execute(
            select(Call.identifier, Call.title, Call.next_deadline)
            .where(Call.next_deadline.is_not(None), Call.next_deadline >= moment)
            .order_by(Call.next_deadline, Call.identifier)
            .limit(NEXT_DEADLINES)
        ).all()
        report.next_deadlines = [Deadline(i, t, at) for i, t, at in upcoming]
    return report


def _language(preferences: dict | None, language: str | None) -> str:
    languages = (preferences or {}).get("languages") or []
    if languages:
        return str(languages[0])
    return language or "unspecified"


def demo_database_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / DEMO_DB_NAME


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def _remove_sqlite_file(path: Path) -> None:
    # WAL mode leaves -wal/-shm companions; a stale -wal would replay into the new file.
    for suffix in ("", "-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.unlink()


def run_demo(
    settings: Settings,
    *,
    explicit_db: bool = False,
    force: bool = False,
    demo_dir: Path = DEMO_DIR,
    progress: Progress = NULL_PROGRESS,
    now: datetime | None = None,
    weekly: bool = True,
) -> DemoReport:
    """Build the demo database and report what it holds.

    Without `explicit_db` the demo always goes to a freshly recreated `<data_dir>/demo.db`,
    whatever the configured database is, so the user's own data is never touched. With
    `explicit_db` (the user named a database with --db) the demo loads into `settings.db_url`,
    refusing a database that already holds members unless `force` is set.
    """
    check_demo_dir(demo_dir)
    path: Path | None = None
    if not explicit_db:
        path = demo_database_path(settings).resolve()
        if _sqlite_file(settings.db_url) == path:
            raise ConfigError(
                f"the configured database is the demo file {path}, which the demo deletes and "
                "recreates; set HORIZON_MATCH_DB to another file, or pass --db "
                f"{path} explicitly to load the demo into it"
            )
        _remove_sqlite_file(path)
        db = open_database(f"sqlite:///{path}")
    else:
        db = open_database(settings.db_url)
        with db.session() as s:
            existing = s.scalar(select(func.count()).select_from(Member)) or 0
        if existing and not force:
            db.close()
            shown = make_url(settings.db_url).render_as_string(hide_password=True)
            raise ConfigError(
                f"the database {shown} already holds {existing} member(s) and the demo would "
                "mix its members into them; run `horizon-match demo` without --db to use a "
                "fresh data/demo.db, or add --force to load the demo into this database anyway"
            )
    try:
        report = build_demo(db, demo_dir, progress, now=now, weekly=weekly)
    finally:
        db.close()
    report.fresh = path is not None
    report.db_path = path
    return report
