"""Run bookkeeping: one `runs` row per job, with what each stage did, how long, and why it failed.

`Run.stats["stages"]` maps a stage name to {status, started_at, finished_at, seconds, counts,
error}; `Run.errors` lists {stage, error} for the staff's eye. Stage functions written by
others may put their own keys into `Run.stats`; everything here merges and never overwrites.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from horizon_match.db import Database
from horizon_match.errors import NotFoundError
from horizon_match.locks import utcnow
from models.tables import Delivery, OutboxMessage, Run

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass
class StageRecord:
    name: str
    status: str  # done | failed | skipped
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. addresses refused, portal quirks

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "seconds": self.seconds,
            "counts": self.counts,
            "error": self.error,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> StageRecord:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return cls(
            name=name,
            status=str(data.get("status", "?")),
            started_at=when("started_at"),
            finished_at=when("finished_at"),
            seconds=data.get("seconds"),
            counts=dict(data.get("counts") or {}),
            error=data.get("error"),
            notes=[str(n) for n in data.get("notes") or []],
        )


@dataclass
class RunInfo:
    id: int
    kind: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime | None
    options: dict[str, Any]
    stages: list[StageRecord]
    errors: list[dict[str, Any]]
    stats: dict[str, Any]  # everything in Run.stats besides "stages"
    messages: dict[str, int] = field(default_factory=dict)  # outbox status -> count
    deliveries: dict[str, int] = field(default_factory=dict)  # "kind status" -> count

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def counts_of(summary: object) -> dict[str, Any]:
    """The plain numbers and words of a stage's summary object, for storing as JSON."""
    if summary is None:
        return {}
    if dataclasses.is_dataclass(summary) and not isinstance(summary, type):
        raw = {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)}
    elif isinstance(summary, Mapping):
        raw = dict(summary)
    elif hasattr(summary, "__dict__"):
        raw = {k: v for k, v in vars(summary).items() if not k.startswith("_")}
    else:
        return {"result": str(summary)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool | int | float | str) or value is None:
            out[key] = value
        elif isinstance(value, datetime | date):
            out[key] = value.isoformat()
        elif isinstance(value, Path):
            out[key] = str(value)
        elif isinstance(value, list | tuple | set | dict):
            out[key] = len(value)  # lists of items: the count is what staff need
    return out


def notes_of(summary: object, limit: int = 100) -> list[str]:
    """The lines a stage's summary has for the staff (`problems` or `notes`)."""
    lines: list[str] = []
    for name in ("problems", "notes"):
        value = getattr(summary, name, None)
        if isinstance(value, list):
            lines.extend(str(v) for v in value)
    return lines[:limit]


def start_run(db: Database, kind: str, *, as_of: datetime | None, options: dict[str, Any]) -> int:
    with db.session() as s:
        run = Run(
            kind=kind, status=RUNNING, started_at=utcnow(), as_of=as_of, options=options,
            stats={"stages": {}}, errors=[],
        )
        s.add(run)
        s.flush()
        return run.id


def record_stage(db: Database, run_id: int, stage: StageRecord) -> None:
    """Store one stage's outcome at once, so a crash later keeps it."""
    with db.session() as s:
        run = s.get(Run, run_id, with_for_update=db.dialect == "postgresql")
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        stats = dict(run.stats or {})
        stages = dict(stats.get("stages") or {})
        stages[stage.name] = stage.to_json()
        stats["stages"] = stages
        run.stats = stats
        if stage.error:
            run.errors = [*(run.errors or []), {"stage": stage.name, "error": stage.error}]


def stage_records(db: Database, run_id: int) -> dict[str, StageRecord]:
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        stages = (run.stats or {}).get("stages") or {}
        return {name: StageRecord.from_json(name, data) for name, data in stages.items()}


def finish_run(db: Database, run_id: int, status: str, *, note: str | None = None) -> None:
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"run {run_id} does not exist")
        run.status = status
        run.finished_at = utcnow()
        if note:
            run.errors = [*(run.errors or []), {"stage": "run", "error": note}]


def _info(run: Run) -> RunInfo:
    stats = dict(run.stats or {})
    stages_json = stats.pop("stages", None) or {}
    return RunInfo(
        id=run.id,
        kind=run.kind,
        status=run.status,
        started_at=run.started_at,
        finished_at=run.finished_at,
        as_of=run.as_of,
        options=dict(run.options or {}),
        stages=[StageRecord.from_json(n, d) for n, d in stages_json.items()],
        errors=list(run.errors or []),
        stats=stats,
    )


def list_runs(db: Database, *, limit: int = 20, kind: str | None = None) -> list[RunInfo]:
    """Newest first."""
    with db.session() as s:
        query = select(Run).order_by(Run.id.desc()).limit(limit)
        if kind:
            query = query.where(Run.kind == kind)
        return [_info(r) for r in s.scalars(query)]


def get_run(db: Database, run_id: int) -> RunInfo:
    """One run with its stages and what it put in the outbox."""
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(
                f"there is no run {run_id}; `horizon-match runs list` shows the existing runs"
            )
        info = _info(run)
        for status, in s.execute(
            select(OutboxMessage.status).where(OutboxMessage.run_id == run_id)
        ):
            info.messages[status] = info.messages.get(status, 0) + 1
        for kind, status in s.execute(
            select(Delivery.kind, Delivery.status).where(Delivery.run_id == run_id)
        ):
            key = f"{kind} {status}"
            info.deliveries[key] = info.deliveries.get(key, 0) + 1
        return info
