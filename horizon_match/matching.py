"""Members x calls: eligibility first, then dense + lexical + track-record scores, explained.

`Matcher` is the one scoring path: `run_matching` (the `match` command and the weekly job)
uses it on stored members and calls. Dense similarity compares each member passage with every
call passage; a member passage counts by its best call passage, and the member's score is the
mean of its best three passages, so twenty unrelated projects do not dilute a strong one and a
single stray sentence does not win alone. Lexical TF-IDF makes exact technical terms count; the
track record rewards calls in the corners of the work programme (programme part, destination,
type of action) where the member has won before.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any, TextIO

import numpy as np
from sqlalchemy import delete, func, select

from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.embedding import (
    EmbedderSet,
    EmbeddingCache,
    EncodeStats,
    detect_language,
    load_embedder_set,
    split_passages,
)
from horizon_match.errors import InputError, NotFoundError
from horizon_match.features import TrackRecord, action_kind, parse_identifier, track_features
from horizon_match.lexical import LexicalIndex, cosine, shared_terms
from horizon_match.members import member_profile_texts
from horizon_match.progress import NULL_PROGRESS, Progress
from models.tables import Call, Match, Member, Run
from scrapers.ft_portal import derive_status

# Weights of the three signals (each in [0, 1] before weighting).
WEIGHTS = {"dense": 0.55, "lexical": 0.30, "track": 0.15}
TOP_PASSAGES = 3


@dataclass
class Profile:
    member_id: str
    language: str | None
    passages: list[str]  # description, keywords, each project (title + summary)
    text: str  # everything, for the lexical score
    track: TrackRecord
    country: str | None = None
    organisation_type: str | None = None
    preferences: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallText:
    call_id: int
    identifier: str
    title: str
    text: str
    type_of_action: str | None
    destination: str | None
    programme: str | None = None
    budget: float | None = None
    deadline: datetime | None = None
    conditions: str = ""


@dataclass
class Scored:
    call_id: int
    score: float
    parts: dict[str, float]
    explanation: dict[str, Any]


@dataclass
class MatchSummary:
    run_id: int
    members: int = 0
    calls: int = 0
    matches: int = 0
    hidden: dict[str, dict[str, int]] = field(default_factory=dict)
    embedded: EncodeStats = field(default_factory=EncodeStats)
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        hidden = sum(sum(v.values()) for v in self.hidden.values())
        return (
            f"run {self.run_id}: {self.matches} matches for {self.members} members over "
            f"{self.calls} eligible calls ({hidden} member/call pairs hidden by eligibility or "
            f"preferences); embedded {self.embedded.computed} new passages, "
            f"{self.embedded.cached} from the cache"
        )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


class Matcher:
    """Scores profiles against calls with one embedder set and a lexical index fitted per run."""

    def __init__(self, embedders: EmbedderSet, caches: dict[str, Any]) -> None:
        self.embedders = embedders
        self.caches = caches  # embedder name -> EmbeddingCache / MemoryCache

    def _encode(self, language: str | None, texts: list[str], progress: Progress) -> np.ndarray:
        embedder = self.embedders.for_language(language)
        return self.caches[embedder.name].encode(texts, progress)

    def score(
        self, profiles: Sequence[Profile], calls: Sequence[CallText], progress: Progress = NULL_PROGRESS
    ) -> list[list[Scored]]:
        """For each profile, every call scored (same order as `calls`)."""
        if not calls or not profiles:
            return [[] for _ in profiles]
        index = LexicalIndex()
        counts = index.fit_counts([c.text for c in calls] + [p.text for p in profiles])
        weighted = index.weigh(counts)
        call_rows, profile_rows = weighted[: len(calls)], weighted[len(calls) :]
        lexical = cosine(profile_rows, call_rows)
        places = [(parse_identifier(c.identifier), action_kind(c.type_of_action)) for c in calls]

        call_passages: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}
        out: list[list[Scored]] = []
        progress.start("scoring members", len(profiles))
        for i, profile in enumerate(profiles):
            embedder = self.embedders.for_language(profile.language)
            if embedder.name not in call_passages:
                pieces = split_passages([c.text for c in calls], embedder)
                owner = np.array([j for j, ps in enumerate(pieces) for _ in ps], dtype=np.int64)
                flat = [p for ps in pieces for p in ps]
                vectors = self._encode(profile.language, flat, NULL_PROGRESS)
                call_passages[embedder.name] = (vectors, flat, owner)
            c_vec, c_text, c_owner = call_passages[embedder.name]
            m_pieces = [p for ps in split_passages(profile.passages, embedder) for p in ps]
            dense = np.zeros(len(calls), dtype=np.float32)
            best_pair: list[tuple[int, int]] = [(-1, -1)] * len(calls)
            if m_pieces and len(c_vec):
                m_vec = self._encode(profile.language, m_pieces, NULL_PROGRESS)
                sims = m_vec @ c_vec.T  # (member passages, call passages)
                # best call passage per (member passage, call)
                best = np.full((len(m_pieces), len(calls)), -1.0, dtype=np.float32)
                arg = np.zeros((len(m_pieces), len(calls)), dtype=np.int64)
                for j in range(len(calls)):
                    cols = np.flatnonzero(c_owner == j)
                    if len(cols):
                        block = sims[:, cols]
                        arg[:, j] = cols[block.argmax(1)]
                        best[:, j] = block.max(1)
                k = min(TOP_PASSAGES, len(m_pieces))
                top = -np.sort(-best, axis=0)[:k]
                dense = np.clip(top.mean(0), 0.0, 1.0)
                which = best.argmax(0)
                best_pair = [(int(which[j]), int(arg[which[j], j])) for j in range(len(calls))]
            track = track_features(profile.track, places)
            # share of past projects in the call's destination / programme part and type
            track_score = np.clip(
                0.5 * track[:, 2] + 0.3 * track[:, 0] + 0.2 * track[:, 7], 0.0, 1.0
            )
            total = (
                WEIGHTS["dense"] * dense + WEIGHTS["lexical"] * lexical[i] + WEIGHTS["track"] * track_score
            )
            row: list[Scored] = []
            for j, call in enumerate(calls):
                mp, cp = best_pair[j]
                row.append(
                    Scored(
                        call_id=call.call_id,
                        score=float(total[j]),
                        parts={
                            "dense": float(dense[j]),
                            "lexical": float(lexical[i, j]),
                            "track": float(track_score[j]),
                        },
                        explanation={
                            "member_passage": _short(m_pieces[mp]) if mp >= 0 else "",
                            "call_passage": _short(c_text[cp]) if cp >= 0 else "",
                            "shared_terms": [],
                        },
                    )
                )
            # shared terms only for the calls that will be shown
            for j in np.argsort(-total)[:50]:
                row[j].explanation["shared_terms"] = shared_terms(
                    index, profile_rows[i], call_rows[j]
                )
            out.append(row)
            progress.advance()
        progress.finish()
        return out


# --- eligibility and preferences --------------------------------------------------------------


def hidden_reason(profile: Profile, call: CallText, as_of: datetime) -> str | None:
    """Why a call is not shown to a member, or None when it is eligible."""
    if call.deadline is None or call.deadline <= as_of:
        return "closed"
    prefs = profile.preferences or {}
    programmes = [p.upper() for p in prefs.get("programmes") or []]
    if programmes and (call.programme or "").upper() not in programmes:
        return "programme"
    kinds = {action_kind(t) for t in prefs.get("types_of_action") or []}
    if kinds and action_kind(call.type_of_action) not in kinds:
        return "type of action"
    low, high = prefs.get("budget_min"), prefs.get("budget_max")
    if call.budget is not None and (
        (low is not None and call.budget < float(low)) or (high is not None and call.budget > float(high))
    ):
        return "budget"
    return None


def flags_for(profile: Profile, call: CallText) -> list[str]:
    """Warnings shown with a match: conditions that may exclude this member."""
    flags = []
    text = call.conditions.lower()
    if profile.organisation_type == "company" and "only" in text and "universit" in text:
        flags.append("conditions may restrict who can apply; check eligibility")
    return flags


# --- loading from the database ----------------------------------------------------------------


def _as_datetime(value: date | datetime | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, time(0, 0))


def load_profiles(db: Database, member_ids: Sequence[str] | None) -> tuple[list[Profile], list[str]]:
    warnings: list[str] = []
    with db.session() as session:
        query = select(Member).order_by(Member.id)
        if member_ids:
            query = query.where(Member.id.in_(list(member_ids)))
        members = list(session.scalars(query))
        if member_ids:
            missing = sorted(set(member_ids) - {m.id for m in members})
            if missing:
                raise NotFoundError(
                    f"no member with id {', '.join(missing)}; see `horizon-match members list`"
                )
        profiles = []
        for member in members:
            texts = member_profile_texts(session, member)
            passages = [texts["description"]] if texts["description"].strip() else []
            if texts["keywords"]:
                passages.append(", ".join(texts["keywords"]))
            for p in texts["projects"]:
                passages.append(f"{p['title']}. {p['summary']}".strip())
                if p.get("fields"):
                    passages.append(", ".join(p["fields"]))
            if not passages:
                warnings.append(
                    f"member {member.id} has no description, keywords or projects; it gets no "
                    "matches until its profile is filled in"
                )
            language = member.language or detect_language(texts["description"]) or "en"
            profiles.append(
                Profile(
                    member_id=member.id,
                    language=language,
                    passages=passages,
                    text="\n".join(passages),
                    track=TrackRecord.of(
                        [p.get("topic") for p in texts["projects"]],
                        [p.get("funding_scheme") for p in texts["projects"]],
                    ),
                    country=member.organisation.country,
                    organisation_type=member.organisation.organisation_type,
                    preferences=dict(member.preferences or {}),
                )
            )
    return profiles, warnings


def load_calls(db: Database, as_of: datetime) -> list[CallText]:
    with db.session() as session:
        calls = list(session.scalars(select(Call).order_by(Call.identifier)))
    out = []
    for c in calls:
        deadlines = sorted(datetime.fromisoformat(d["at"]).replace(tzinfo=None) for d in c.deadlines or [])
        ahead = [d for d in deadlines if d > as_of]
        status = derive_status(c.opening_date, deadlines, as_of)
        if status == "closed" and not ahead:
            deadline = deadlines[-1] if deadlines else None
        else:
            deadline = ahead[0] if ahead else None
        text = "\n".join(x for x in (c.title, c.call_title or "", c.destination or "", c.description) if x)
        out.append(
            CallText(
                call_id=c.id, identifier=c.identifier, title=c.title, text=text,
                type_of_action=c.type_of_action, destination=c.destination,
                programme=c.programme, budget=c.budget, deadline=deadline,
                conditions=c.conditions or "",
            )
        )
    return out


def run_matching(
    db: Database,
    settings: Settings,
    *,
    embedder: Any = None,
    member_ids: Sequence[str] | None = None,
    top_k: int = 20,
    as_of: date | datetime | None = None,
    progress: Progress = NULL_PROGRESS,
    run_id: int | None = None,
) -> MatchSummary:
    """Match members against the eligible calls as on `as_of` and store the top `top_k` each."""
    if top_k < 1:
        raise InputError(f"--top must be at least 1, not {top_k}")
    now = _as_datetime(as_of)
    embedders = EmbedderSet.of(embedder) if embedder is not None else load_embedder_set(settings)
    caches = {e.name: EmbeddingCache(db, e) for e in embedders.all()}
    profiles, warnings = load_profiles(db, member_ids)
    calls = load_calls(db, now)

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
    summary = MatchSummary(run_id=run_id, members=len(profiles), warnings=warnings)

    # Eligibility per member; the matcher scores each member against its eligible calls only.
    shown: list[list[CallText]] = []
    eligible_any: set[int] = set()
    for profile in profiles:
        reasons: Counter[str] = Counter()
        keep = []
        for call in calls:
            reason = hidden_reason(profile, call, now)
            if reason:
                reasons[reason] += 1
            else:
                keep.append(call)
        summary.hidden[profile.member_id] = dict(reasons)
        shown.append(keep)
        eligible_any.update(c.call_id for c in keep)
    summary.calls = len(eligible_any)

    open_calls = [c for c in calls if c.call_id in eligible_any]
    position = {c.call_id: j for j, c in enumerate(open_calls)}
    matcher = Matcher(embedders, caches)
    scored = matcher.score(profiles, open_calls, progress)
    for cache in caches.values():
        summary.embedded.add(cache.stats)

    with db.session() as s:
        # a re-run of the same run (crash recovery) replaces its matches
        s.execute(delete(Match).where(Match.run_id == run_id, Match.member_id.in_([p.member_id for p in profiles])))
        for profile, keep, row in zip(profiles, shown, scored, strict=True):
            if not profile.passages:
                continue
            ranked = sorted((row[position[c.call_id]] for c in keep), key=lambda x: -x.score)[:top_k]
            call_by_id = {c.call_id: c for c in keep}
            for rank, item in enumerate(ranked, start=1):
                explanation = dict(item.explanation, parts=item.parts)
                s.add(
                    Match(
                        run_id=run_id, member_id=profile.member_id, call_id=item.call_id,
                        score=round(item.score, 6), rank=rank, explanation=explanation,
                        flags=flags_for(profile, call_by_id[item.call_id]),
                    )
                )
                summary.matches += 1
        if own_run:
            run = s.get(Run, run_id)
            run.status = "done"
            run.finished_at = _as_datetime(None)
            run.stats = {
                "members": summary.members, "calls": summary.calls, "matches": summary.matches,
                "embedded": summary.embedded.computed, "cached": summary.embedded.cached,
                "hidden": summary.hidden,
            }
            run.errors = [{"stage": "match", "error": w} for w in warnings]
    return summary


# --- reading stored matches -------------------------------------------------------------------


def latest_match_run(db: Database, member_id: str | None = None) -> int | None:
    with db.session() as s:
        query = select(func.max(Match.run_id))
        if member_id:
            query = query.where(Match.member_id == member_id)
        return s.scalar(query)


def list_matches(db: Database, *, member_id: str | None = None, run_id: int | None = None) -> list[dict[str, Any]]:
    """Matches of one run (default: the latest run that has any), best first per member."""
    if member_id:
        with db.session() as s:
            if s.get(Member, member_id) is None:
                raise NotFoundError(f"no member with id {member_id}; see `horizon-match members list`")
    run_id = run_id or latest_match_run(db, member_id)
    if run_id is None:
        return []
    with db.session() as s:
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
            exp = m.explanation or {}
            reason = "; ".join(
                x for x in (
                    f"shared terms: {', '.join(exp.get('shared_terms') or [])}" if exp.get("shared_terms") else "",
                    f"your \"{exp.get('member_passage', '')[:80]}\"" if exp.get("member_passage") else "",
                ) if x
            )
            rows.append({
                "run": m.run_id, "member": m.member_id, "call": c.identifier, "title": c.title,
                "score": round(m.score, 4), "rank": m.rank,
                "deadline": c.next_deadline.date().isoformat() if c.next_deadline else "",
                "explanation": reason, "flags": list(m.flags or []),
                "details": exp,
            })
        return rows


EXPORT_COLUMNS = ["member", "call", "title", "score", "rank", "deadline", "explanation"]


def export_matches(db: Database, out: TextIO, fmt: str, *, member_id: str | None = None, run_id: int | None = None) -> int:
    rows = list_matches(db, member_id=member_id, run_id=run_id)
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps({k: r[k] for k in [*EXPORT_COLUMNS, "details"]}, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        raise InputError(f"unknown export format {fmt!r}; use jsonl or csv")
    return len(rows)
