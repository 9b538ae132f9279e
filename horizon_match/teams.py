"""Building a team for a call: greedy search over a shortlist of candidates.

Pure functions over plain dataclasses (no database, no model). The caller gives the lead,
the candidates (each with its fit per aspect of the call, its rank from the partner ranking,
country, type, SME flag, club membership), the shared-project counts between them, the
call's aspects and its eligibility rule. The search adds one partner at a time, choosing the
best of:

- coverage: how much it raises the team's best fit on each aspect (weighted by the aspect's
  share of the call) — a partner that only repeats what the team already covers gains
  nothing, so five near-copies never win;
- rank: its place in the partner ranking for the call and the lead;
- shared history with the team members already chosen;
- a type the action needs and the team lacks (industry for an IA, research for a RIA, ...);
- a country the eligibility rule still needs; once the free places are only enough for the
  missing countries, only partners from new eligible countries are considered.

Club first: while some club member still adds competence the team lacks (a real coverage
gain), the best such member is chosen before any external organisation; external partners
come in for countries and competences the club does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from horizon_match.countries import EU_MEMBER_STATES, normalise_country
from horizon_match.eligibility import (
    EligibilityRule,
    TeamEntity,
    check_team,
    eligible_country,
)

# weights of the greedy choice (coverage gains are differences of cosine similarities,
# typically 0-0.15, so they get the largest factor)
W_COVERAGE = 6.0
W_RANK = 1.0
W_HISTORY = 0.6
W_TYPE = 0.4
W_COUNTRY = 1.5
W_MEMBER = 0.3
# a club member "adds competence" when it raises weighted coverage by at least this much
MIN_MEMBER_GAIN = 0.01
# an aspect counts as covered by a member whose fit is within this margin of the best
COVER_MARGIN = 0.02

# organisation kinds each type of action is usually built from
WANTED_KINDS: dict[str, tuple[str, ...]] = {
    "RIA": ("academic", "industry"),
    "IA": ("industry", "sme", "academic"),
    "CSA": ("academic", "public"),
    "PCP": ("public", "industry"),
    "COFUND": ("public",),
    "MSCA-DN": ("academic", "industry"),
    "MSCA-SE": ("academic", "industry"),
    "EIC-PATHFINDER": ("academic", "sme"),
    "OTHER": ("academic", "industry"),
}
KIND_WORDS = {
    "academic": "a university or research organisation",
    "industry": "an industrial partner (company)",
    "sme": "an SME",
    "public": "a public body (end user or public buyer)",
}
KIND_WHY = {
    "RIA": "research and innovation actions are usually led by research with industry",
    "IA": "innovation actions expect industry, often SMEs, to take up the results",
    "CSA": "support actions usually involve research organisations and public bodies",
    "PCP": "procurement actions are carried by public buyers with suppliers",
}


@dataclass
class Candidate:
    index: int  # position in the partner pool
    key: str
    name: str
    country: str | None
    organisation_type: str | None
    sme: bool | None
    fit: np.ndarray  # per aspect
    rank_score: float = 0.0  # 0..1, 1 = top of the partner ranking
    member_id: str | None = None
    coordinated: int = 0
    projects: int = 0

    @property
    def kinds(self) -> set[str]:
        out = set()
        if self.organisation_type in ("university", "research"):
            out.add("academic")
        if self.organisation_type == "company":
            out.add("industry")
        if self.sme:
            out.add("sme")
        if self.organisation_type == "public":
            out.add("public")
        return out

    def entity(self) -> TeamEntity:
        return TeamEntity(self.key, self.country, self.organisation_type)


@dataclass
class TeamMember:
    candidate: Candidate
    role: str  # coordinator | partner
    aspects: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


@dataclass
class Team:
    members: list[TeamMember]
    score: float
    coverage: dict[str, float]  # aspect label -> best fit in the team
    eligible: bool
    missing: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def lead(self) -> TeamMember:
        return self.members[0]

    def keys(self) -> tuple[str, ...]:
        return tuple(m.candidate.key for m in self.members)


@dataclass(frozen=True)
class TeamRequest:
    labels: tuple[str, ...]
    weights: np.ndarray  # per aspect, sums to 1
    rule: EligibilityRule
    size: int


def _country(c: Candidate) -> str | None:
    return normalise_country(c.country) if c.country else None


def _needs(rule: EligibilityRule, team: Sequence[Candidate]) -> tuple[int, int, int]:
    """(entities, countries, member-state entities) still missing for the rule."""
    counted = [c for c in team if eligible_country(c.country)]
    countries = {_country(c) for c in counted}
    in_ms = sum(1 for c in counted if _country(c) in EU_MEMBER_STATES)
    if rule.single_beneficiary or rule.no_team:
        return (0 if counted else 1, 0, 0)
    return (
        max(0, rule.min_entities - len(counted)),
        max(0, rule.min_countries - len(countries)),
        max(0, rule.min_member_state - in_ms),
    )


def build_team(
    lead: Candidate,
    candidates: Sequence[Candidate],
    shared: np.ndarray,
    request: TeamRequest,
    *,
    position: dict[int, int] | None = None,
) -> Team:
    """One team around `lead`. `shared[i, j]` is the number of projects candidates i and j
    (positions in `[lead, *candidates]`) had together."""
    everyone = [lead, *candidates]
    weights = request.weights
    coverage = lead.fit.astype(np.float64).copy()
    chosen = [0]
    left = set(range(1, len(everyone)))
    wanted = WANTED_KINDS.get(request.rule.kind, ())
    size = max(1, request.size)
    picked_reason: dict[int, list[str]] = {0: [_lead_reason(lead)]}
    while len(chosen) < size and left:
        team = [everyone[i] for i in chosen]
        _, countries_missing, ms_missing = _needs(request.rule, team)
        team_countries = {_country(c) for c in team if eligible_country(c.country)}
        kinds_have = set().union(*(c.kinds for c in team))
        slots = size - len(chosen)
        options = sorted(left)
        if countries_missing and slots <= countries_missing:
            options = [i for i in options if eligible_country(everyone[i].country)
                       and _country(everyone[i]) not in team_countries]
        if ms_missing and slots <= ms_missing:
            options = [i for i in options if _country(everyone[i]) in EU_MEMBER_STATES]
        if not options:
            break
        best: tuple[float, int] | None = None
        best_member: tuple[float, int] | None = None
        for i in options:
            c = everyone[i]
            gain = float(weights @ np.maximum(c.fit - coverage, 0.0))
            history = float(np.count_nonzero(shared[i, chosen])) / len(chosen)
            new_kind = 1.0 if any(k in c.kinds and k not in kinds_have for k in wanted) else 0.0
            new_country = (
                1.0 if countries_missing and eligible_country(c.country)
                and _country(c) not in team_countries else 0.0
            )
            not_funded = 0.0 if eligible_country(c.country) else 1.0
            score = (W_COVERAGE * gain + W_RANK * c.rank_score + W_HISTORY * history
                     + W_TYPE * new_kind + W_COUNTRY * new_country
                     + (W_MEMBER if c.member_id and gain >= MIN_MEMBER_GAIN else 0.0)
                     - 2.0 * not_funded)
            if best is None or score > best[0]:
                best = (score, i)
            if c.member_id and gain >= MIN_MEMBER_GAIN and (best_member is None or score > best_member[0]):
                best_member = (score, i)
        pick = best_member[1] if best_member is not None else best[1]  # type: ignore[index]
        c = everyone[pick]
        reasons = []
        gain = float(weights @ np.maximum(c.fit - coverage, 0.0))
        if c.member_id:
            reasons.append("club member")
        elif c.projects:
            reasons.append(_track_record(c))
        if eligible_country(c.country) and _country(c) not in team_countries and countries_missing:
            reasons.append(f"adds a partner from {_country(c)}")
        partners_known = [everyone[j].name for j in chosen if shared[pick, j] > 0]
        if partners_known:
            reasons.append("worked before with " + ", ".join(partners_known[:3]))
        new_kinds = [k for k in wanted if k in c.kinds and k not in kinds_have]
        if new_kinds:
            reasons.append("brings " + " and ".join(KIND_WORDS[k] for k in new_kinds))
        if gain > 0 and not reasons:
            reasons.append("covers what the team lacks")
        picked_reason[pick] = reasons
        coverage = np.maximum(coverage, c.fit)
        chosen.append(pick)
        left.discard(pick)
    return _finish(everyone, chosen, shared, request, picked_reason, position or {})


def _track_record(c: Candidate) -> str:
    text = f"{c.projects} EU project{'s' if c.projects != 1 else ''}"
    if c.coordinated:
        text += f", {c.coordinated} as coordinator"
    return text


def _lead_reason(c: Candidate) -> str:
    who = "club member leading the team" if c.member_id else "leads the team"
    return f"{who}; {_track_record(c)}" if c.coordinated else who


def _finish(everyone: list[Candidate], chosen: list[int], shared: np.ndarray,
            request: TeamRequest, reasons: dict[int, list[str]],
            position: dict[int, int]) -> Team:
    team = [everyone[i] for i in chosen]
    fits = np.vstack([c.fit for c in team]) if team else np.zeros((0, len(request.labels)))
    best = fits.max(axis=0) if len(team) else np.zeros(len(request.labels))
    aspects_of: dict[int, list[str]] = {i: [] for i in range(len(team))}
    for a, label in enumerate(request.labels):
        for t in range(len(team)):
            if fits[t, a] >= best[a] - COVER_MARGIN and fits[t, a] > 0:
                aspects_of[t].append(label)
    members = [
        TeamMember(
            candidate=c,
            role="coordinator" if t == 0 else "partner",
            aspects=aspects_of[t],
            reasons=reasons.get(chosen[t], []),
            score=round(float(c.rank_score), 4),
        )
        for t, c in enumerate(team)
    ]
    check = check_team(request.rule, [c.entity() for c in team])
    missing = list(check.missing)
    if len(team) < request.size and not request.rule.single_beneficiary:
        missing.append(
            f"only {len(team)} suitable organisation(s) found for a team of {request.size}"
        )
    wanted = WANTED_KINDS.get(request.rule.kind, ())
    kinds = set().union(*(c.kinds for c in team)) if team else set()
    if not request.rule.single_beneficiary:
        for k in wanted:
            if k not in kinds and k != "sme":
                why = KIND_WHY.get(request.rule.kind)
                # KIND_WORDS carry an article ("brings an SME"): "no SME in the team"
                bare = KIND_WORDS[k].split(" ", 1)[1]
                missing.append(f"no {bare} in the team" + (f": {why}" if why else ""))
    notes = []
    if team and team[0].coordinated == 0 and not request.rule.single_beneficiary:
        notes.append(f"{team[0].name} has not coordinated a project in the partner pool yet")
    pairs = [(i, j) for i in range(len(chosen)) for j in range(i + 1, len(chosen))]
    cohesion = (
        sum(1 for i, j in pairs if shared[chosen[i], chosen[j]] > 0) / len(pairs) if pairs else 0.0
    )
    coverage_score = float(request.weights @ best) if len(team) else 0.0
    rank_mean = float(np.mean([c.rank_score for c in team[1:]])) if len(team) > 1 else 0.0
    score = coverage_score + 0.3 * rank_mean + 0.2 * cohesion + (1.0 if check.eligible else 0.0)
    return Team(
        members=members,
        score=round(score, 4),
        coverage={label: round(float(best[a]), 4) for a, label in enumerate(request.labels)},
        eligible=check.eligible,
        missing=missing,
        notes=notes,
    )
