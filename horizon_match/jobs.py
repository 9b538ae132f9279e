"""The weekly job: scrape, match, suggest consortia, send digests, as one locked, recorded run.

Boring on purpose:
- one at a time: a second start while one runs stops with who holds the lock (locks.py);
- recorded: a `runs` row with start, end, and per stage its status, time, counts and error;
- resumable: a run that died (crash, kill, reboot) is picked up by the next start with the same
  options within a day: finished stages are kept, the unfinished ones redone, their partial
  rows removed first;
- at most once: digests go through the outbox (deliveries.py), so running twice sends nothing
  new and a mail outage only delays messages to the next run.

A failing stage is recorded and the later ones still run on what the database holds (a portal
outage still sends the week's reminders); consortia are skipped when matching failed, because
they are built on this run's matches.
"""

from __future__ import annotations

import dataclasses
import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.deliveries import SendReport, check_mail_settings, send_digests
from horizon_match.errors import HorizonMatchError
from horizon_match.locks import DEFAULT_STALE_AFTER, HeldLock, LockHolder, acquire_lock, utcnow
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.runs import (
    DONE,
    FAILED,
    RUNNING,
    StageRecord,
    counts_of,
    finish_run,
    notes_of,
    record_stage,
    stage_records,
    start_run,
)
from models.tables import ConsortiumSuggestion, Match, Run

log = logging.getLogger(__name__)

WEEKLY = "weekly"
STAGES = ("scrape", "match", "consortia", "digest")
RESUME_WITHIN = timedelta(hours=24)


@dataclass
class WeeklyOptions:
    replay_dir: Path | None = None  # scrape from saved portal responses instead of the portal
    skip_scrape: bool = False  # use the calls already stored
    as_of: date | None = None  # "today" for deadlines and eligibility (default: today, UTC)
    dry_run_dir: Path | None = None  # write the emails there instead of sending them
    top_k: int = 20
    embedder: Any = None  # an Embedder/EmbedderSet to use; default: the settings' model
    stale_after: timedelta = DEFAULT_STALE_AFTER
    resume_within: timedelta = RESUME_WITHIN

    def to_json(self) -> dict[str, Any]:
        """What identifies the run, stored with it and compared when resuming."""
        return {
            "replay_dir": str(self.replay_dir) if self.replay_dir else None,
            "skip_scrape": self.skip_scrape,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "dry_run_dir": str(self.dry_run_dir) if self.dry_run_dir else None,
            "top_k": self.top_k,
        }


@dataclass
class WeeklyReport:
    run_id: int
    status: str
    as_of: date
    resumed: bool = False
    took_over_from: str | None = None  # the dead holder of a stale lock
    abandoned_run: int | None = None  # an interrupted run marked failed instead of resumed
    stages: list[StageRecord] = field(default_factory=list)
    send: SendReport | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == DONE


def _as_of_datetime(day: date) -> datetime:
    return datetime.combine(day, time.min)


def _interrupted_run(db: Database) -> Run | None:
    """The latest weekly run still marked running; holding the lock, we know it is dead."""
    with db.session() as s:
        return s.scalars(
            select(Run).where(Run.kind == WEEKLY, Run.status == RUNNING).order_by(Run.id.desc())
        ).first()


def _close_interrupted(db: Database, kinds: tuple[str, ...] = ("digest",)) -> list[int]:
    """Runs of these kinds still marked running died (we hold the lock): say so."""
    with db.session() as s:
        ids = list(s.scalars(select(Run.id).where(Run.kind.in_(kinds), Run.status == RUNNING)))
    for run_id in ids:
        finish_run(db, run_id, FAILED, note="interrupted (the process stopped before "
                   "finishing); its unsent messages stayed in the outbox for the next run")
    return ids


def _open_run(db: Database, options: WeeklyOptions, as_of: date) -> tuple[int, bool, int | None]:
    """(run id, resumed?, id of an interrupted run given up on)."""
    wanted = options.to_json()
    old = _interrupted_run(db)
    if old is not None:
        fresh = utcnow() - old.started_at <= options.resume_within
        if fresh and (old.options or {}) == wanted:
            return old.id, True, None
    run_id = start_run(db, WEEKLY, as_of=_as_of_datetime(as_of), options=wanted)
    if old is None:
        return run_id, False, None
    reason = "it started more than a day before" if not fresh else "it had other options"
    finish_run(
        db, old.id, FAILED,
        note=f"interrupted (the process stopped before finishing); not resumed because "
        f"{reason}; run {run_id} sends what it left in the outbox",
    )
    return run_id, False, old.id


def _stage_scrape(db: Database, settings: Settings, options: WeeklyOptions, run_id: int,
                  as_of: date, progress: Progress, embedder: Callable[[], Any]) -> object:
    from horizon_match.ingest import ScrapeOptions, scrape

    now = datetime.combine(as_of, time(12)) if options.as_of else None
    scrape_options = ScrapeOptions(replay_dir=options.replay_dir, now=now)
    if options.replay_dir is not None:  # saved answers need no pause between requests
        scrape_options = dataclasses.replace(scrape_options, delay=0.0)
    return scrape(db, settings, scrape_options, progress)


def _stage_match(db: Database, settings: Settings, options: WeeklyOptions, run_id: int,
                 as_of: date, progress: Progress, embedder: Callable[[], Any]) -> object:
    from horizon_match.matching import run_matching

    with db.session() as s:  # a resumed stage starts clean
        s.execute(delete(Match).where(Match.run_id == run_id))
    return run_matching(
        db, settings, embedder=embedder(), top_k=options.top_k, as_of=as_of, progress=progress,
        run_id=run_id,
    )


def _stage_consortia(db: Database, settings: Settings, options: WeeklyOptions, run_id: int,
                     as_of: date, progress: Progress, embedder: Callable[[], Any]) -> object:
    from horizon_match.consortia import suggest_consortia

    with db.session() as s:
        s.execute(delete(ConsortiumSuggestion).where(ConsortiumSuggestion.run_id == run_id))
    return suggest_consortia(
        db, settings, embedder=embedder(), as_of=as_of, progress=progress, run_id=run_id
    )


StageFn = Callable[
    [Database, Settings, WeeklyOptions, int, date, Progress, Callable[[], Any]], object
]
_STAGE_FUNCS: dict[str, StageFn] = {
    "scrape": _stage_scrape,
    "match": _stage_match,
    "consortia": _stage_consortia,
}


def _run_stage(
    db: Database, run_id: int, name: str, body: Callable[[], object]
) -> tuple[StageRecord, object]:
    started = utcnow()
    t0 = clock.perf_counter()
    result: object = None
    error: str | None = None
    try:
        result = body()
    except HorizonMatchError as exc:
        error = str(exc)
    except Exception as exc:  # a bug in a stage must not hide what the other stages did
        log.exception("stage %s of run %s failed", name, run_id)
        error = f"{type(exc).__name__}: {exc}"
    record = StageRecord(
        name=name,
        status=FAILED if error else DONE,
        started_at=started,
        finished_at=utcnow(),
        seconds=round(clock.perf_counter() - t0, 3),
        counts=counts_of(result),
        error=error,
        notes=notes_of(result),
    )
    if isinstance(result, SendReport) and not result.ok:
        record.status = FAILED
        record.error = result.error or f"{result.left_pending} message(s) left in the outbox"
    record_stage(db, run_id, record)
    return record, result


def _skip(db: Database, run_id: int, name: str, why: str) -> StageRecord:
    record = StageRecord(name=name, status="skipped", counts={"reason": why})
    record_stage(db, run_id, record)
    return record


def run_weekly(
    db: Database,
    settings: Settings,
    options: WeeklyOptions | None = None,
    progress: Progress = NULL_PROGRESS,
) -> WeeklyReport:
    """Run (or resume) the weekly job; see the module docstring. Raises LockedError when
    another run holds the lock and ConfigError when mail is not configured (before any work)."""
    options = options or WeeklyOptions()
    if options.dry_run_dir is None:
        check_mail_settings(settings)
    t0 = clock.perf_counter()
    with acquire_lock(db, WEEKLY, stale_after=options.stale_after) as lock:
        report = _run_locked(db, settings, options, progress, lock)
    report.seconds = round(clock.perf_counter() - t0, 3)
    return report


def _run_locked(
    db: Database, settings: Settings, options: WeeklyOptions, progress: Progress, lock: HeldLock
) -> WeeklyReport:
    as_of = options.as_of or utcnow().date()
    _close_interrupted(db)
    run_id, resumed, abandoned = _open_run(db, options, as_of)
    if resumed:
        with db.session() as s:
            run = s.get(Run, run_id)
            if run is not None and run.as_of is not None:
                as_of = run.as_of.date()
    holder: LockHolder | None = lock.took_over
    report = WeeklyReport(
        run_id=run_id, status=RUNNING, as_of=as_of, resumed=resumed, abandoned_run=abandoned,
        took_over_from=holder.describe(utcnow()) if holder else None,
    )
    done_before = {n: r for n, r in stage_records(db, run_id).items() if r.status == DONE}
    loaded: list[Any] = [options.embedder]

    def embedder() -> Any:
        # loaded inside the first stage that needs it, so a missing model is that stage's error
        if loaded[0] is None:
            loaded[0] = _load_embedder(settings)
        return loaded[0]

    outcome: dict[str, str] = {}
    for name in STAGES:
        lock.check()
        if name in done_before:
            report.stages.append(done_before[name])
            outcome[name] = DONE
            continue
        if name == "scrape" and options.skip_scrape:
            report.stages.append(_skip(db, run_id, name, "--skip-scrape: using the stored calls"))
            outcome[name] = "skipped"
            continue
        if name == "consortia" and outcome.get("match") != DONE:
            report.stages.append(_skip(db, run_id, name, "matching failed in this run"))
            outcome[name] = "skipped"
            continue
        if name == "digest":
            record, result = _run_stage(db, run_id, name, lambda: send_digests(
                db, settings, as_of=as_of, run_id=run_id,
                match_run_id=run_id if outcome.get("match") == DONE else None,
                consortia_run_id=run_id if outcome.get("consortia") == DONE else None,
                dry_run_dir=options.dry_run_dir, progress=progress,
            ))
            report.send = result if isinstance(result, SendReport) else None
        else:
            fn = _STAGE_FUNCS[name]
            record, _ = _run_stage(db, run_id, name, lambda fn=fn: fn(
                db, settings, options, run_id, as_of, progress, embedder
            ))
        report.stages.append(record)
        outcome[name] = record.status
    failed = [r for r in report.stages if r.status == FAILED]
    report.status = FAILED if failed else DONE
    finish_run(db, run_id, report.status)
    return report


def _load_embedder(settings: Settings) -> Any:
    """The models once for both matching and consortia (loading takes seconds): the default
    one plus, where configured, the multilingual one for non-English profiles, as `match`."""
    from horizon_match.embedding import load_embedder_set

    return load_embedder_set(settings)


@dataclass
class DigestRunReport:
    run_id: int | None  # None for a dry run (nothing is recorded)
    send: SendReport


def send_digests_now(
    db: Database,
    settings: Settings,
    *,
    as_of: date | None = None,
    dry_run_dir: Path | None = None,
    progress: Progress = NULL_PROGRESS,
) -> DigestRunReport:
    """Only the sending stage, on the latest matches and teams (`horizon-match digest send`).

    Takes the same lock as the weekly job; a real send is recorded as a run of kind "digest".
    """
    if dry_run_dir is None:
        check_mail_settings(settings)
    with acquire_lock(db, WEEKLY):
        _close_interrupted(db)
        if dry_run_dir is not None:
            return DigestRunReport(None, send_digests(
                db, settings, as_of=as_of, dry_run_dir=dry_run_dir, progress=progress
            ))
        day = as_of or utcnow().date()
        run_id = start_run(
            db, "digest", as_of=_as_of_datetime(day), options={"as_of": day.isoformat()}
        )
        record, result = _run_stage(db, run_id, "digest", lambda: send_digests(
            db, settings, as_of=day, run_id=run_id, progress=progress
        ))
        finish_run(db, run_id, record.status)
        if not isinstance(result, SendReport):
            raise HorizonMatchError(record.error or "sending failed")
        return DigestRunReport(run_id, result)
