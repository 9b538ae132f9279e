"""Members x calls, as stored: eligibility and preferences first, then the matcher, stored.

`run_matching` reads the members (their description, keywords, own past projects and CORDIS
history) and the calls open or forthcoming on the matching date, hides per member the calls
its preferences or the calls' stated conditions rule out (counted by reason), ranks the rest
with `horizon_match.scoring.Matcher` (the same code the CORDIS evaluation measures) and stores
the run with each member's best calls, scores, ranks, explanations and flags.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import joinedload

from horizon_match.call_filters import CallFacts, MemberFacts, condition_flags, visible_calls
from horizon_match.call_records import deadlines_from_json
from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.embedding import (
    Embedder,
    EmbedderSet,
    EmbeddingCache,
    EncodeStats,
    detect_language,
    load_embedder_set,
)
from horizon_match.errors import InputError, NotFoundError
from horizon_match.members import members_profile_texts
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.ranker import RankerModel, load_ranker
from horizon_match.scoring import CallDoc, Matcher, PastProject, Profile
from models.tables import Call, Match, Member, Run

EXPORT_COLUMNS = ["member", "call", "title", "score", "rank", "deadline", "explanation"]


@dataclass
class MatchSummary:
    run_id: int
    members: int = 0
    calls: int = 0  # calls open on the matching date, scored for at least one member
    matches: int = 0
    # member id -> reason -> number of calls hidden (closed, programme, type of action, ...)
    hidden: dict[str, dict[str, int]] = field(default_factory=dict)
    embedded: EncodeStats = field(default_factory=EncodeStats)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        hidden = sum(n for v in self.hidden.values() for why, n in v.items() if why != "closed")
        return (
            f"run {self.run_id}: {self.matches} matches for {self.members} members over "
            f"{self.calls} open calls ({hidden} member/call pairs hidden by preferences or "
            f"conditions); embedded {self.embedded.computed} new passages, "
            f"{self.embedded.cached} from the cache"
        )


def _as_datetime(value: date | datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, time(0, 0))


# --- loading ----------------------------------------------------------------------------------


# matches handed to the database driver at a time: bounds the memory of one call (SQLAlchemy
# splits each call into statements under the driver's parameter limit)
STORE_BATCH = 5000
# member ids per DELETE of a resumed run's earlier matches (bound parameters)
DELETE_BATCH = 500


@dataclass
class _MemberRow:
    profile: Profile
    facts: MemberFacts


def load_members(
    db: Database, member_ids: Sequence[str] | None
) -> tuple[list[_MemberRow], list[str]]:
    """Profiles and facts of the members (all, or those named); warnings for thin profiles."""
    warnings: list[str] = []
    rows: list[_MemberRow] = []
    with db.session() as session:
        query = select(Member).order_by(Member.id)
        if member_ids:
            query = query.where(Member.id.in_(list(member_ids)))
        members = list(session.scalars(query.options(joinedload(Member.organisation))))
        if member_ids:
            missing = sorted(set(member_ids) - {m.id for m in members})
            if missing:
                raise NotFoundError(
                    f"no member with id {', '.join(missing)}; see `horizon-match members list`"
                )
        all_texts = members_profile_texts(session, members)
        for member in members:
            texts = all_texts.pop(member.id)  # freed as the profiles are built
            org = member.organisation
            projects = [
                PastProject(
                    title=p.get("title") or "",
                    summary=p.get("summary") or "",
                    topic=p.get("topic"),
                    funding_scheme=p.get("funding_scheme"),
                    fields=tuple(p.get("fields") or ()),
                )
                for p in texts["projects"]
            ]
            profile = Profile(
                key=member.id,
                description=texts["description"] or "",
                keywords=tuple(texts["keywords"] or ()),
                projects=projects,
                organisation_type=org.organisation_type if org else None,
                country=org.country if org else None,
                language=member.language or _profile_language(texts),
            )
            if profile.is_empty():
                warnings.append(
                    f"member {member.id} has no description, keywords or past projects; it gets "
                    "no matches until its profile is filled in (`horizon-match members import`)"
                )
            elif not profile.description.strip() and not profile.projects:
                warnings.append(
                    f"member {member.id} has only keywords; matches rest on them alone, a "
                    "description or past projects would make them more precise"
                )
            facts = MemberFacts(
                organisation_type=org.organisation_type if org else None,
                size=org.size if org else None,
                sme=org.sme if org else None,
                country=org.country if org else None,
                preferences=dict(member.preferences or {}),
            )
            rows.append(_MemberRow(profile, facts))
    return rows, warnings


def _profile_language(texts: dict[str, Any]) -> str | None:
    sample = " ".join(
        [texts.get("description") or ""]
        + [p.get("title") or "" for p in texts.get("projects", []) if p.get("source") == "member"]
    )
    if not sample.strip():
        sample = " ".join(texts.get("keywords") or [])
    language = detect_language(sample)
    return None if language in (None, "und") else language


@dataclass
class _CallRow:
    call_id: int
    doc: CallDoc
    facts: CallFacts


def load_calls(db: Database) -> list[_CallRow]:
    with db.session() as session:
        calls = list(session.scalars(select(Call).order_by(Call.identifier)))
    out = []
    for c in calls:
        deadlines = [d.at for d in deadlines_from_json(c.deadlines)]
        doc = CallDoc(
            key=c.identifier,
            title=c.title or c.identifier,
            destination=c.destination or "",
            call_title=c.call_title or "",
            description=c.description or "",
            type_of_action=c.type_of_action,
            keywords=tuple(c.keywords or ()),
            call_identifier=c.call_identifier,
            two_stage=len({d.stage for d in deadlines_from_json(c.deadlines)}) > 1,
        )
        facts = CallFacts(
            identifier=c.identifier,
            programme=c.programme,
            type_of_action=c.type_of_action,
            budget=c.budget,
            status=c.status,
            opening_date=c.opening_date,
            deadlines=deadlines,
            text="\n".join(x for x in (c.conditions, c.description) if x),
        )
        out.append(_CallRow(c.id, doc, facts))
    return out


# --- the run ----------------------------------------------------------------------------------


def run_matching(
    db: Database,
    settings: Settings,
    *,
    embedder: Embedder | EmbedderSet | None = None,
    member_ids: Sequence[str] | None = None,
    top_k: int = 20,
    as_of: date | datetime | None = None,
    progress: Progress = NULL_PROGRESS,
    run_id: int | None = None,
    model: RankerModel | None = None,
) -> MatchSummary:
    """Match members against the calls open on `as_of` (default now); store the best `top_k`.

    Creates a Run(kind="match") unless `run_id` is given (the weekly job's run). `model` is the
    learned ranker (default: the shipped one).
    """
    if top_k < 1:
        raise InputError(f"--top must be at least 1, not {top_k}")
    now = _as_datetime(as_of)
    embedders = EmbedderSet.of(embedder) if embedder is not None else load_embedder_set(settings)
    caches = {e.name: EmbeddingCache(db, e) for e in embedders.all()}
    ranker = model if model is not None else load_ranker(_ranker_path(settings))
    members, warnings = load_members(db, member_ids)
    calls = load_calls(db)

    own_run = run_id is None
    if own_run:
        with db.session() as s:
            run = Run(
                kind="match", status="running", started_at=_as_datetime(None), as_of=now,
                options={"members": list(member_ids or []), "top": top_k}, stats={}, errors=[],
            )
            s.add(run)
            s.flush()
            run_id = run.id
    assert run_id is not None
    summary = MatchSummary(run_id=run_id, members=len(members), warnings=warnings)
    try:
        _match_and_store(db, summary, members, calls, embedders, caches, ranker, top_k, now, progress)
    except BaseException as exc:
        if own_run:
            with db.session() as s:
                run = s.get(Run, run_id)
                if run is not None:
                    run.status = "failed"
                    run.finished_at = _as_datetime(None)
                    run.errors = [{"stage": "match", "error": str(exc)}]
        raise
    return summary


def _ranker_path(settings: Settings) -> Path | None:
    path = (settings.extra or {}).get("matching_ranker")
    return None if path is None else Path(path)


def _match_and_store(
    db: Database,
    summary: MatchSummary,
    members: list[_MemberRow],
    calls: list[_CallRow],
    embedders: EmbedderSet,
    caches: dict[str, EmbeddingCache],
    ranker: RankerModel | None,
    top_k: int,
    now: datetime,
    progress: Progress,
) -> None:
    # eligibility per (member, call) before any scoring
    allowed, hidden = visible_calls([c.facts for c in calls], [m.facts for m in members], now)
    for member, counts in zip(members, hidden, strict=True):
        summary.hidden[member.profile.key] = counts
    scored = np.flatnonzero(allowed.any(axis=0)) if len(members) else np.zeros(0, np.int64)
    summary.calls = len(scored)
    no_text = [calls[j].doc.key for j in scored if not calls[j].doc.description.strip()]
    if no_text:
        summary.warnings.append(
            f"{len(no_text)} open call(s) have no description (e.g. {no_text[0]}); they are "
            "matched on their title, destination and call title only"
        )

    ranked: list[list[Any]] = [[] for _ in members]
    if len(scored) and members:
        matcher = Matcher(embedders, dict(caches), ranker)
        ranked, summary.embedded = matcher.rank_profiles(
            [m.profile for m in members], [calls[j].doc for j in scored], top_k,
            allowed[:, scored], progress=progress,
        )

    with db.session() as s:
        # a resumed run replaces what it had stored for these members
        keys = [m.profile.key for m in members]
        for start in range(0, len(keys), DELETE_BATCH):
            s.execute(
                delete(Match).where(
                    Match.run_id == summary.run_id,
                    Match.member_id.in_(keys[start : start + DELETE_BATCH]),
                )
            )
        rows: list[dict[str, Any]] = []
        for member, items in zip(members, ranked, strict=True):
            for rank, item in enumerate(items, start=1):
                call = calls[int(scored[item.call_index])]
                rows.append({
                    "run_id": summary.run_id,
                    "member_id": member.profile.key,
                    "call_id": call.call_id,
                    "score": round(item.score, 6),
                    "rank": rank,
                    "explanation": item.explanation,
                    "flags": condition_flags(call.facts, member.facts),
                })
        # plain bulk INSERTs on the session's connection (same transaction): one ORM object
        # per match made storing 300,000 matches take minutes
        connection = s.connection()
        for start in range(0, len(rows), STORE_BATCH):
            connection.execute(insert(Match.__table__), rows[start : start + STORE_BATCH])
        summary.matches += len(rows)
        run = s.get(Run, summary.run_id)
        if run is not None and run.kind == "match":
            run.status = "done"
            run.finished_at = _as_datetime(None)
            run.stats = {
                "members": summary.members,
                "calls": summary.calls,
                "matches": summary.matches,
                "embedded": summary.embedded.computed,
                "cached": summary.embedded.cached,
                "hidden": summary.hidden,
                "ranker": (ranker.meta.get("name", "learned") if ranker else "fallback weights"),
            }
            run.errors = [{"stage": "match", "warning": w} for w in summary.warnings]


# --- reading stored matches -------------------------------------------------------------------


def latest_match_run(db: Database, member_id: str | None = None) -> int | None:
    with db.session() as s:
        query = select(func.max(Match.run_id))
        if member_id:
            query = query.where(Match.member_id == member_id)
        return s.scalar(query)


def _deadline(call: Call, as_of: datetime | None) -> str:
    times = sorted(d.at for d in deadlines_from_json(call.deadlines))
    if not times:
        return ""
    if as_of is not None:
        ahead = [t for t in times if t > as_of]
        if ahead:
            return ahead[0].date().isoformat()
    return times[-1].date().isoformat()


def explanation_line(explanation: dict[str, Any] | None) -> str:
    """The stored one-line reason (built by the matcher), or one made from the parts."""
    exp = explanation or {}
    if exp.get("reason"):
        return str(exp["reason"])
    terms = exp.get("shared_terms") or []
    pieces = [f"shared terms: {', '.join(terms)}"] if terms else []
    if exp.get("member_passage"):
        pieces.append(f"your \u201c{str(exp['member_passage'])[:80]}\u201d")
    return "; ".join(pieces)


def list_matches(
    db: Database, *, member_id: str | None = None, run_id: int | None = None
) -> list[dict[str, Any]]:
    """Matches of one run (default: the latest run that has any), best first per member."""
    if member_id:
        with db.session() as s:
            if s.get(Member, member_id) is None:
                raise NotFoundError(f"no member with id {member_id}; see `horizon-match members list`")
    run_id = run_id or latest_match_run(db, member_id)
    if run_id is None:
        return []
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}; see `horizon-match runs list`")
        as_of = run.as_of
        query = (
            select(Match, Call)
            .join(Call, Call.id == Match.call_id)
            .where(Match.run_id == run_id)
            .order_by(Match.member_id, Match.rank)
        )
        if member_id:
            query = query.where(Match.member_id == member_id)
        rows = []
        for m, c in s.execute(query):
            rows.append(
                {
                    "run": m.run_id,
                    "member": m.member_id,
                    "call": c.identifier,
                    "title": c.title,
                    "score": round(m.score, 4),
                    "rank": m.rank,
                    "deadline": _deadline(c, as_of),
                    "explanation": explanation_line(m.explanation),
                    "flags": list(m.flags or []),
                    "details": dict(m.explanation or {}),
                }
            )
        return rows


def hidden_counts(db: Database, member_id: str, run_id: int | None = None) -> dict[str, int]:
    """How many calls a member's preferences and the calls' conditions hid in a run."""
    run_id = run_id or latest_match_run(db, member_id)
    if run_id is None:
        return {}
    with db.session() as s:
        run = s.get(Run, run_id)
        stats = (run.stats or {}) if run is not None else {}
    return {k: v for k, v in (stats.get("hidden", {}).get(member_id) or {}).items() if k != "closed"}


def export_matches(
    db: Database,
    out: TextIO,
    fmt: str,
    *,
    member_id: str | None = None,
    run_id: int | None = None,
) -> int:
    """Write matches as JSONL (with the full explanation) or CSV; returns how many."""
    if fmt not in ("jsonl", "csv"):
        raise InputError(f"unknown export format {fmt!r}; use jsonl or csv")
    rows = list_matches(db, member_id=member_id, run_id=run_id)
    if fmt == "jsonl":
        for r in rows:
            record = {k: r[k] for k in EXPORT_COLUMNS}
            record["flags"] = r["flags"]
            record["details"] = r["details"]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
