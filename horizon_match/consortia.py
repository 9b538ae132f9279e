"""Consortium suggestions: for each call that fits the club, teams that could win it.

For every call some member was matched to (the latest matching run), or for the calls named:

1. the call is split into aspects (horizon_match.aspects) and gets a head-text vector;
2. the leads are the club members matched to it (best match first, coordination experience
   breaking near-ties), or the one member asked for;
3. for each lead the partner pool (club members plus CORDIS organisations) is ranked for the
   call and the lead (horizon_match.partner_ranking.rank_partners, the function the
   evaluation measures), the best ranked and the club's matched members form a shortlist,
   and a team is built from it (horizon_match.teams.build_team): complementary coverage of
   the aspects, shared history, the types of organisation the action needs, the countries
   eligibility needs, club members first;
4. teams are ranked per call and stored under a Run(kind="consortia") (or the weekly run
   given), each partner with its role, the aspects it covers and why it is there.

Bad input gets a clear answer: an unknown call or lead is a NotFoundError, a size below one
an InputError; a call without text, a prize, or a pool from one country only are noted in
the summary (and the teams say what is missing) rather than failing the run.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from horizon_match.aspects import Aspect, split_aspects
from horizon_match.call_records import deadlines_from_json
from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.eligibility import EligibilityRule, rule_for
from horizon_match.errors import InputError, NotFoundError
from horizon_match.partner_pool import PartnerPool, VectorCache, attach_pool_vectors, load_pool
from horizon_match.partner_ranking import (
    CallQuery,
    PoolIndex,
    call_context,
    call_head_text,
    rank_partners,
)
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.runs import DONE, FAILED, finish_run, start_run
from horizon_match.teams import Candidate, Team, TeamRequest, build_team
from models.tables import (
    Call,
    ConsortiumPartner,
    ConsortiumSuggestion,
    Match,
    Member,
    Organisation,
    Run,
)
from scrapers.ft_portal.dates import derive_status

LEADS_PER_CALL = 3
SHORTLIST = 80
# fit of a member to a call (weighted aspect fit) above which it is a lead or a club
# candidate when no matching run says so
MEMBER_FIT_FLOOR = 0.25
# per aspect: best project of the organisation vs its whole profile
FIT_BEST_PROJECT, FIT_PROFILE = 0.6, 0.4
RUN_KIND = "consortia"


# --- results ---------------------------------------------------------------------------------


@dataclass
class PartnerView:
    position: int
    name: str
    role: str
    country: str | None
    organisation_type: str | None
    sme: bool | None
    member_id: str | None
    pic: str | None
    aspects: list[str]
    reasons: list[str]
    score: float


@dataclass
class SuggestionView:
    call: str  # identifier
    call_title: str
    rank: int
    score: float
    lead_member_id: str | None
    eligible: bool
    missing: list[str]
    partners: list[PartnerView]
    details: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "call": self.call,
            "call_title": self.call_title,
            "rank": self.rank,
            "score": self.score,
            "lead": self.lead_member_id,
            "eligible": self.eligible,
            "missing": self.missing,
            "aspects": self.details.get("aspects", []),
            "notes": self.details.get("notes", []),
            "partners": [vars(p) for p in self.partners],
        }

    def as_text(self) -> str:
        state = "eligible" if self.eligible else "not eligible yet"
        lines = [f"{self.call} — team {self.rank} (score {self.score:.2f}, {state})"]
        for p in self.partners:
            who = p.name + (f" [member {p.member_id}]" if p.member_id else "")
            kind = ", ".join(x for x in (p.country, p.organisation_type, "SME" if p.sme else None) if x)
            lines.append(f"  {p.position}. {who} — {p.role} ({kind})")
            if p.aspects:
                lines.append(f"       covers: {'; '.join(p.aspects)}")
            if p.reasons:
                lines.append(f"       why: {'; '.join(p.reasons)}")
        for m in self.missing:
            lines.append(f"  missing: {m}")
        for n in self.details.get("notes", []):
            lines.append(f"  note: {n}")
        return "\n".join(lines)


@dataclass
class ConsortiaSummary:
    run_id: int
    calls: int = 0
    suggestions: int = 0
    eligible: int = 0
    pool_organisations: int = 0
    pool_countries: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # calls skipped, warnings
    teams: list[SuggestionView] = field(default_factory=list)


# --- the calls and their leads ----------------------------------------------------------------


@dataclass
class CallPlan:
    call: Call
    leads: list[tuple[str, float]]  # (member id, match score), best first; may be empty
    asked: bool = False  # named by the user: lead it even when no member fits well


def _latest_match_run(session: Any, run_id: int | None) -> int | None:
    if run_id is not None:
        has = session.scalar(select(func.count()).select_from(Match).where(Match.run_id == run_id))
        if has:
            return run_id
    return session.scalar(select(func.max(Match.run_id)))


def _is_current(call: Call, now: datetime) -> bool:
    if call.missing_since is not None:
        return False
    status = derive_status(call.opening_date, deadlines_from_json(call.deadlines), now) or call.status
    return (status or "open") in ("open", "forthcoming")


def plan_calls(db: Database, *, call_ids: Sequence[str] | None, now: datetime,
               run_id: int | None) -> tuple[list[CallPlan], list[str]]:
    """The calls to build teams for, each with its matched members (best first)."""
    notes: list[str] = []
    with db.session() as s:
        match_run = _latest_match_run(s, run_id)
        matches: dict[int, list[tuple[str, float]]] = {}
        if match_run is not None:
            for m in s.scalars(select(Match).where(Match.run_id == match_run)):
                matches.setdefault(m.call_id, []).append((m.member_id, float(m.score)))
        if call_ids:
            calls = []
            for ident in call_ids:
                call = s.scalar(select(Call).where(Call.identifier == ident))
                if call is None:
                    raise NotFoundError(
                        f"no call {ident!r} is stored; check the identifier with "
                        "`horizon-match calls list`"
                    )
                calls.append(call)
        elif matches:
            calls = [c for c in s.scalars(select(Call).where(Call.id.in_(list(matches))))
                     if _is_current(c, now)]
        else:
            calls = [c for c in s.scalars(select(Call).order_by(Call.identifier))
                     if _is_current(c, now)]
            if calls:
                notes.append("no matching run is stored: leads were chosen by their profile's "
                             "fit to each call (run `horizon-match match` for better leads)")
        for c in calls:
            s.expunge(c)
    plans = []
    for call in sorted(calls, key=lambda c: c.identifier):
        leads = sorted(matches.get(call.id, []), key=lambda x: (-x[1], x[0]))
        plans.append(CallPlan(call, leads, asked=bool(call_ids)))
    return plans, notes


# --- fit per aspect ---------------------------------------------------------------------------


def aspect_fit(pool: PartnerPool, index: PoolIndex, orgs: Sequence[int],
               project_sims: np.ndarray, aspect_vectors: np.ndarray) -> np.ndarray:
    """(len(orgs), n_aspects): the organisation's best project and whole profile against
    each aspect. `project_sims` is pool.vectors @ aspect_vectors.T."""
    out = np.zeros((len(orgs), aspect_vectors.shape[0]), dtype=np.float32)
    for r, i in enumerate(orgs):
        projects = pool.org_projects(i)
        if projects.size == 0:
            continue
        best = project_sims[projects].max(axis=0)
        norm = index.profile_norms[i]
        profile = (index.profile_sums[i] @ aspect_vectors.T) / norm if norm > 0 else 0.0
        out[r] = np.maximum(FIT_BEST_PROJECT * best + FIT_PROFILE * profile, 0.0)
    return out


# --- the main entry point ---------------------------------------------------------------------


def suggest_consortia(
    db: Database,
    settings: Settings,
    *,
    embedder: Any = None,
    call_ids: Sequence[str] | None = None,
    lead: str | None = None,
    size: int | None = None,
    as_of: date | datetime | None = None,
    progress: Progress = NULL_PROGRESS,
    run_id: int | None = None,
    exclude_members: Iterable[str] = (),
    leads_per_call: int = LEADS_PER_CALL,
) -> ConsortiaSummary:
    """Build, rank and store teams; see the module docstring. Returns what was stored."""
    if size is not None and size < 1:
        raise InputError(f"--size {size}: a team has at least one organisation; give 1 or more")
    if leads_per_call < 1:
        raise InputError("leads per call must be at least 1")
    t0 = time.perf_counter()
    now = _as_datetime(as_of)
    excluded = set(exclude_members)
    with db.session() as s:
        known_members = {m.id: m.preferences or {} for m in s.scalars(select(Member))}
    unknown = sorted(excluded - set(known_members))
    if unknown:
        raise NotFoundError(f"--exclude: no member {', '.join(map(repr, unknown))}; "
                            "see `horizon-match members list`")
    if lead is not None:
        if lead not in known_members:
            raise NotFoundError(f"--lead {lead!r}: no such member; see `horizon-match members list`")
        if lead in excluded or known_members[lead].get("exclude_from_consortia"):
            raise InputError(f"--lead {lead!r}: this member is excluded from consortium "
                             "suggestions (exclude_from_consortia); pick another lead or change "
                             "its preferences")
    plans, notes = plan_calls(db, call_ids=call_ids, now=now, run_id=run_id)

    own_run = run_id is None
    if own_run:
        run_id = start_run(db, RUN_KIND, as_of=now, options={
            "calls": list(call_ids or []), "lead": lead, "size": size,
            "exclude": sorted(excluded), "leads_per_call": leads_per_call,
        })
    assert run_id is not None
    summary = ConsortiaSummary(run_id=run_id, notes=notes)
    try:
        if plans:
            _suggest(db, settings, embedder, plans, lead, size, excluded, leads_per_call,
                     summary, progress)
        else:
            summary.notes.append("no open or forthcoming call to build teams for")
        summary.seconds = round(time.perf_counter() - t0, 2)
        _record(db, run_id, summary, own_run)
    except BaseException:
        if own_run:
            finish_run(db, run_id, FAILED, note="consortium suggestions failed")
        raise
    return summary


def _as_datetime(value: date | datetime | None) -> datetime:
    if value is None:
        return datetime.utcnow().replace(microsecond=0)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def _record(db: Database, run_id: int, summary: ConsortiaSummary, own_run: bool) -> None:
    with db.session() as s:
        run = s.get(Run, run_id)
        if run is not None:
            stats = dict(run.stats or {})
            stats["consortia"] = {
                "calls": summary.calls, "suggestions": summary.suggestions,
                "eligible": summary.eligible, "pool_organisations": summary.pool_organisations,
                "seconds": summary.seconds, "notes": summary.notes[:50],
            }
            run.stats = stats
    if own_run:
        finish_run(db, run_id, DONE)


def _embedding_cache(db: Database, settings: Settings, embedder: Any) -> VectorCache:
    from horizon_match.embedding import EmbedderSet, EmbeddingCache, load_embedder

    if embedder is None:
        embedder = load_embedder(settings)
    if isinstance(embedder, EmbedderSet):
        embedder = embedder.default
    return EmbeddingCache(db, embedder)


def _suggest(db: Database, settings: Settings, embedder: Any, plans: list[CallPlan],
             lead: str | None, size: int | None, excluded: set[str], leads_per_call: int,
             summary: ConsortiaSummary, progress: Progress) -> None:
    pool = load_pool(db, excluded_members=excluded)
    summary.pool_organisations = len(pool)
    countries = {c for c in pool.countries if c}
    summary.pool_countries = len(countries)
    if len(pool) == 0:
        summary.notes.append("the partner pool is empty: import members (`horizon-match members "
                             "import`) and CORDIS data (`horizon-match cordis import`) first")
        return
    if len(countries) <= 1:
        summary.notes.append(
            f"the partner pool has organisations from {next(iter(countries), 'no country')} only: "
            "teams cannot reach the countries most calls require; import CORDIS data "
            "(`horizon-match cordis import`) to find partners abroad"
        )
    cache = _embedding_cache(db, settings, embedder)
    attach_pool_vectors(pool, cache, progress)
    index = PoolIndex.build(pool)
    members = {o.member_id: i for i, o in enumerate(pool.orgs) if o.member_id}
    progress.start(f"building teams for {len(plans)} calls", len(plans))
    rows: list[tuple[Call, list[Team], list[Aspect], EligibilityRule, list[str]]] = []
    for plan in plans:
        summary.calls += 1
        result = _teams_for_call(pool, index, cache, plan, lead, size, leads_per_call, members)
        if isinstance(result, str):
            summary.notes.append(f"{plan.call.identifier}: {result}")
        else:
            teams, aspects, rule, call_notes = result
            rows.append((plan.call, teams, aspects, rule, call_notes))
        progress.advance()
    progress.finish()
    _store(db, summary, pool, rows)


def _teams_for_call(
    pool: PartnerPool, index: PoolIndex, cache: VectorCache, plan: CallPlan, lead: str | None,
    size: int | None, leads_per_call: int, members: dict[str, int],
) -> tuple[list[Team], list[Aspect], EligibilityRule, list[str]] | str:
    call = plan.call
    rule = rule_for(call.type_of_action, call.identifier)
    if rule.no_team:
        return f"a {rule.label}: {rule.note}"
    head = call_head_text(call.title, call.destination, call.call_title)
    description = call.description or ""
    if not head.strip() and not description.strip():
        return "the call has no title and no description, so there is nothing to match partners on"
    aspects = split_aspects(call.title or "", description, lambda t: cache.encode(list(t)))
    vector = cache.encode([head or description[:1000]])[0]
    query = CallQuery(vector=vector, identifier=call.identifier,
                      type_of_action=call.type_of_action, text=head)
    vectors = np.vstack([a.vector for a in aspects]).astype(np.float32)
    weights = np.array([a.weight for a in aspects], dtype=np.float64)
    weights = weights / weights.sum()
    project_sims = pool.vectors @ vectors.T  # type: ignore[operator]

    usable = {m: i for m, i in members.items() if not pool.orgs[i].excluded}
    member_ids = sorted(usable)
    member_fit = aspect_fit(pool, index, [usable[m] for m in member_ids], project_sims, vectors)
    fit_of = {m: float(weights @ member_fit[r]) for r, m in enumerate(member_ids)}
    matched = [(m, score) for m, score in plan.leads if m in usable]
    if lead is not None:
        leads = [lead]
    else:
        if matched:
            ordered = [m for m, _ in sorted(
                matched,
                key=lambda x: (-(x[1] + 0.05 * math.log1p(pool.coordinated[usable[x[0]]])), x[0]),
            )]
        else:
            ordered = [m for m in sorted(member_ids, key=lambda m: (-fit_of[m], m))
                       if fit_of[m] >= MEMBER_FIT_FLOOR or plan.asked]
        leads = ordered[:leads_per_call]
    if not leads:
        return "no club member fits this call well enough to lead a team"
    club = {m for m, _ in matched} | {m for m in member_ids if fit_of[m] >= MEMBER_FIT_FLOOR}

    n = size or rule.default_size
    call_notes: list[str] = []
    if rule.single_beneficiary:
        n = 1
        call_notes.append(f"a {rule.label} has {rule.note}: no partners are needed")
    elif n < rule.min_entities:
        call_notes.append(
            f"a team of {n} is below the minimum for a {rule.label} ({rule.note}); "
            f"ask for {rule.min_entities} or more"
        )
    request = TeamRequest(tuple(a.label for a in aspects), weights, rule, n)
    ctx = call_context(index, query)
    teams: list[Team] = []
    seen: set[frozenset[str]] = set()
    for member_id in leads:
        lead_index = usable[member_id]
        ranked = rank_partners(query, lead_index, index, context=ctx)
        short = [int(i) for i in ranked.order[:SHORTLIST]]
        position = {i: p for p, i in enumerate(ranked.order[: max(SHORTLIST * 4, 400)])}
        for m in sorted(club - {member_id}):
            i = usable[m]
            if i not in short:
                short.append(i)
        everyone = [lead_index, *short]
        fits = aspect_fit(pool, index, everyone, project_sims, vectors)
        cands = []
        for r, i in enumerate(everyone):
            org = pool.orgs[i]
            pos = position.get(i)
            cands.append(Candidate(
                index=i, key=org.key, name=org.name, country=org.country,
                organisation_type=org.organisation_type, sme=org.sme, fit=fits[r],
                rank_score=1.0 if r == 0 else (max(0.0, 1.0 - pos / SHORTLIST) if pos is not None else 0.0),
                member_id=org.member_id, coordinated=int(pool.coordinated[i]),
                projects=int(pool.activity[i]),
            ))
        B = pool.beneficiaries[everyone]
        shared = (B @ B.T).toarray()
        team = build_team(cands[0], cands[1:], shared, request)
        key = frozenset(team.keys())
        if key not in seen:
            seen.add(key)
            teams.append(team)
    teams.sort(key=lambda t: -t.score)
    return teams, aspects, rule, call_notes


def _store(db: Database, summary: ConsortiaSummary, pool: PartnerPool,
           rows: list[tuple[Call, list[Team], list[Aspect], EligibilityRule, list[str]]]) -> None:
    with db.session() as s:
        for call, teams, aspects, rule, call_notes in rows:
            for rank, team in enumerate(teams, 1):
                details = {
                    "aspects": [
                        {"label": a.label, "weight": round(a.weight, 3),
                         "coverage": team.coverage.get(a.label, 0.0)}
                        for a in aspects
                    ],
                    "rule": {"kind": rule.kind, "label": rule.label, "note": rule.note},
                    "notes": [*call_notes, *team.notes],
                }
                sugg = ConsortiumSuggestion(
                    run_id=summary.run_id, call_id=call.id, rank=rank, score=team.score,
                    lead_member_id=team.lead.candidate.member_id, eligible=team.eligible,
                    missing=list(team.missing), details=details,
                )
                for pos, m in enumerate(team.members, 1):
                    org = pool.orgs[m.candidate.index]
                    sugg.partners.append(ConsortiumPartner(
                        organisation_id=org.organisation_id, member_id=org.member_id,
                        position=pos, role=m.role, aspects=list(m.aspects),
                        score=m.score, reasons=list(m.reasons),
                    ))
                s.add(sugg)
                summary.suggestions += 1
                summary.eligible += int(team.eligible)
                summary.teams.append(_view_of_team(call, rank, team, details, pool, summary.run_id))


def _view_of_team(call: Call, rank: int, team: Team, details: dict[str, Any],
                  pool: PartnerPool, run_id: int) -> SuggestionView:
    partners = []
    for pos, m in enumerate(team.members, 1):
        org = pool.orgs[m.candidate.index]
        partners.append(PartnerView(
            position=pos, name=org.name, role=m.role, country=org.country,
            organisation_type=org.organisation_type, sme=org.sme, member_id=org.member_id,
            pic=None if org.key.startswith("org:") else org.key, aspects=list(m.aspects),
            reasons=list(m.reasons), score=m.score,
        ))
    return SuggestionView(
        call=call.identifier, call_title=call.title, rank=rank, score=team.score,
        lead_member_id=team.lead.candidate.member_id, eligible=team.eligible,
        missing=list(team.missing), partners=partners, details=details, run_id=run_id,
    )


# --- reading stored suggestions ---------------------------------------------------------------


def _views(session: Any, suggestions: Iterable[ConsortiumSuggestion]) -> list[SuggestionView]:
    suggestions = list(suggestions)
    org_ids = {p.organisation_id for sg in suggestions for p in sg.partners}
    call_ids = {sg.call_id for sg in suggestions}
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(org_ids)))} if org_ids else {}
    calls = {c.id: c for c in session.scalars(select(Call).where(Call.id.in_(call_ids)))} if call_ids else {}
    names = {m.id: m.name for m in session.scalars(select(Member))}
    out = []
    for sg in suggestions:
        call = calls.get(sg.call_id)
        partners = []
        for p in sg.partners:
            org = orgs.get(p.organisation_id)
            partners.append(PartnerView(
                position=p.position,
                name=(names.get(p.member_id) if p.member_id else None) or (org.name if org else "?"),
                role=p.role, country=org.country if org else None,
                organisation_type=org.organisation_type if org else None,
                sme=org.sme if org else None, member_id=p.member_id,
                pic=org.pic if org else None, aspects=list(p.aspects or []),
                reasons=list(p.reasons or []), score=float(p.score or 0.0),
            ))
        out.append(SuggestionView(
            call=call.identifier if call else str(sg.call_id), call_title=call.title if call else "",
            rank=sg.rank, score=float(sg.score), lead_member_id=sg.lead_member_id,
            eligible=bool(sg.eligible), missing=list(sg.missing or []), partners=partners,
            details=dict(sg.details or {}), run_id=sg.run_id,
        ))
    out.sort(key=lambda v: (v.call, v.rank))
    return out


def list_suggestions(db: Database, call: str, *, run_id: int | None = None) -> list[SuggestionView]:
    """The teams stored for one call: from `run_id`, else from the latest run that has any."""
    with db.session() as s:
        call_row = s.scalar(select(Call).where(Call.identifier == call))
        if call_row is None:
            raise NotFoundError(f"no call {call!r} is stored; check the identifier with "
                                "`horizon-match calls list`")
        query = select(ConsortiumSuggestion).where(ConsortiumSuggestion.call_id == call_row.id)
        if run_id is None:
            run_id = s.scalar(select(func.max(ConsortiumSuggestion.run_id))
                              .where(ConsortiumSuggestion.call_id == call_row.id))
            if run_id is None:
                return []
        query = query.where(ConsortiumSuggestion.run_id == run_id).options(
            selectinload(ConsortiumSuggestion.partners))
        return _views(s, s.scalars(query))


EXPORT_FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("run_id", "call", "team_rank", "team_score", "eligible", "lead", "position",
               "role", "organisation", "pic", "member_id", "country", "organisation_type", "sme",
               "aspects", "reasons", "missing")


def export_suggestions(db: Database, out: TextIO, fmt: str, *, run_id: int | None = None,
                       call: str | None = None) -> int:
    """Write the suggestions of `run_id` (default: the latest consortia run with any) as JSONL
    (one team per line) or CSV (one partner per line). Returns the number of teams."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown format {fmt!r}; use {' or '.join(EXPORT_FORMATS)}")
    with db.session() as s:
        if run_id is None:
            run_id = s.scalar(select(func.max(ConsortiumSuggestion.run_id)))
            if run_id is None:
                raise NotFoundError("no consortium suggestions are stored yet; run "
                                    "`horizon-match consortia suggest` first")
        elif s.get(Run, run_id) is None:
            raise NotFoundError(f"run {run_id} does not exist; see `horizon-match runs list`")
        query = select(ConsortiumSuggestion).where(ConsortiumSuggestion.run_id == run_id)
        if call is not None:
            call_row = s.scalar(select(Call).where(Call.identifier == call))
            if call_row is None:
                raise NotFoundError(f"no call {call!r} is stored")
            query = query.where(ConsortiumSuggestion.call_id == call_row.id)
        views = _views(s, s.scalars(query.options(selectinload(ConsortiumSuggestion.partners))))
    if fmt == "jsonl":
        for v in views:
            out.write(json.dumps(v.as_dict(), ensure_ascii=False) + "\n")
        return len(views)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for v in views:
        for p in v.partners:
            writer.writerow([
                v.run_id, v.call, v.rank, v.score, str(v.eligible).lower(), v.lead_member_id or "",
                p.position, p.role, p.name, p.pic or "", p.member_id or "", p.country or "",
                p.organisation_type or "", "" if p.sme is None else str(p.sme).lower(),
                "; ".join(p.aspects), "; ".join(p.reasons), "; ".join(v.missing),
            ])
    return len(views)
