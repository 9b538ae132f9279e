"""Ranking partner organisations for a call and a lead: the one function both the product
(`consortia suggest`) and the evaluation (`evaluate cordis --task b`) call.

Each candidate organisation gets a vector of features, computed for all organisations at once
with sparse products over the pool's organisation x project matrix:

- text fit (the call alone): how many of the projects most similar to the call the
  organisation took part in (`text_vote`, `text_vote_narrow`), how similar its whole profile is
  to the call (`profile_call`), how often it won in the same programme part and destination
  (`same_part`, `same_destination`, from the year-free topic identifier);
- collaboration (the lead alone): projects shared with the lead (`shared_with_lead`),
  partners of the lead's partners (`two_hop`), the lead's country and the countries the lead's
  country usually teams up with (`same_country`, `country_affinity`);
- who led: projects shared with the lead that the lead coordinated
  (`shared_lead_coordinated`), and the lead's projects the candidate coordinated
  (`coordinated_with_lead`);
- both together: the lead's past projects weighted by their similarity to the call
  (`lead_projects_on_call`, `lead_best_project`), the projects most similar to the lead's
  closest past projects (`lead_expanded_vote`), profile similarity to the lead
  (`profile_lead`);
- priors: activity, share of coordinations, share of projects in consortia of three or more,
  organisation type, SME flag, type of action. These are the organisation's constants, so they
  are coarsened (see call_context): exact values would let the model recognise individual
  organisations and learn who was a partner in the training data rather than why.

Counts are measured in units of the pool's mean activity (`pool_unit`), so a pool of two
years of projects does not look like twice the evidence to a model trained on one year.

A gradient-boosted tree model (horizon_match.tree_model; a LightGBM LambdaRank ranker trained
by benchmarks/consortia_train_ranker.py, stored as plain trees) turns the features into one
score. The feature sets "text" and "collaboration" (each with the priors) exist for the
ablation.

Leaving out: `exclude` lists project rows that must not count for anything (the evaluation's
target project, or every project of the target topic); they are masked in every feature,
including the collaboration graph and the activity counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from horizon_match.eligibility import rule_for
from horizon_match.errors import ModelUnavailableError
from horizon_match.features import parse_identifier
from horizon_match.partner_pool import PartnerPool
from horizon_match.tree_model import CrossFitted, shipped_models

TEXT_FEATURES = (
    "text_vote", "text_vote_narrow", "text_vote_consortia", "profile_call", "same_part",
    "same_destination",
)
COLLAB_FEATURES = ("shared_with_lead", "two_hop", "same_country", "country_affinity")
# who led the shared projects: the lead's own coordinations (a coordinator re-invites the
# partners of the projects it ran) and the lead's projects the candidate coordinated (it
# brought the lead in before)
ROLE_FEATURES = ("shared_lead_coordinated", "coordinated_with_lead")
JOINT_FEATURES = ("lead_projects_on_call", "lead_best_project", "lead_expanded_vote", "profile_lead")
PRIOR_FEATURES = (
    "activity", "consortium_activity", "coordinated_share", "consortium_share", "is_university",
    "is_company",
    "is_research", "is_public", "is_sme", "action_kind",
)
ALL_FEATURES = TEXT_FEATURES + COLLAB_FEATURES + JOINT_FEATURES + PRIOR_FEATURES + ROLE_FEATURES
VARIANTS: dict[str, tuple[str, ...]] = {
    "combined": ALL_FEATURES,
    "text": TEXT_FEATURES + PRIOR_FEATURES,
    "collaboration": COLLAB_FEATURES + PRIOR_FEATURES + ROLE_FEATURES,
}
_ACTION_CODES = {"RIA": 1.0, "IA": 2.0, "CSA": 3.0}

# The version of the feature definitions below. A model is only valid for the definitions it
# was trained on (a tree threshold on `activity` means nothing once `activity` is measured
# differently), so benchmarks/consortia_train_ranker.py records this number in the model file
# and rank_partners refuses a model trained on other definitions. Bump it whenever a
# feature's name, order or computation changes, and retrain.
FEATURES_VERSION = 3

# how many of the most similar projects vote (wide and narrow), and how sharply
VOTE_WIDE, VOTE_NARROW, VOTE_POWER = 200, 30, 3
# the lead's closest past projects that describe what the team will do
LEAD_EXPANSION = 3
EXPANDED_VOTE = 100


@dataclass
class CallQuery:
    """What the ranking knows about a call: its text vector and its place in the programme."""

    vector: np.ndarray  # L2-normalised embedding of the call's head text
    identifier: str | None = None  # topic identifier (its year-free parts are compared)
    type_of_action: str | None = None
    text: str = ""


def call_head_text(title: str | None, destination: str | None = None,
                   call_title: str | None = None) -> str:
    """The text a call is ranked on: its title, destination and call title. Deliberately the
    same for live calls (which also have a long description) and for past topics (which have
    only these), so the ranking model sees what it was trained on."""
    parts = []
    for value in (title, destination, call_title):
        text = " ".join((value or "").split())
        if text and text not in parts:
            parts.append(text)
    return ". ".join(parts)


@dataclass
class RankedPartners:
    order: np.ndarray  # organisation indices, best first (only valid candidates)
    scores: np.ndarray  # score per organisation index (-inf for invalid ones)
    features: np.ndarray  # (n_orgs, n_features) of the variant
    feature_names: tuple[str, ...]

    def top(self, k: int) -> np.ndarray:
        return self.order[:k]


@dataclass
class PoolIndex:
    """Per-pool arrays the ranking reuses for every call (built once per pool)."""

    pool: PartnerPool
    profile_sums: np.ndarray  # organisation x dim: sum of its project vectors
    part_of: np.ndarray  # per project: code of its programme part (-1 unknown)
    destination_of: np.ndarray
    country_code: np.ndarray  # per organisation: index into `countries`
    countries: list[str]
    country_pairs: np.ndarray  # countries x countries co-participation counts
    project_countries: sparse.csr_matrix  # project x countries counts
    codes: dict[str, dict[str, int]] = field(default_factory=dict)
    profile_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    type_flags: dict[str, np.ndarray] = field(default_factory=dict)
    team_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self.profile_norms = np.linalg.norm(self.profile_sums, axis=1)
        # beneficiaries per project (consortium size)
        self.team_sizes = np.asarray(self.pool.beneficiaries.sum(axis=0)).ravel()
        types = self.pool.types
        self.type_flags = {
            t: (types == t).astype(np.float32) for t in ("university", "company", "research", "public")
        }
        self.type_flags["sme"] = np.array([bool(o.sme) for o in self.pool.orgs], dtype=np.float32)

    @classmethod
    def build(cls, pool: PartnerPool) -> PoolIndex:
        if pool.vectors is None:
            raise ValueError("the pool has no project vectors; call attach_vectors first")
        profile_sums = np.asarray(pool.beneficiaries @ pool.vectors, dtype=np.float32)
        parts: dict[str, int] = {}
        dests: dict[str, int] = {}
        part_of = np.full(len(pool.projects), -1, dtype=np.int64)
        destination_of = np.full(len(pool.projects), -1, dtype=np.int64)
        for j, p in enumerate(pool.projects):
            place = parse_identifier(p.topic)
            if place.part:
                part_of[j] = parts.setdefault(place.part, len(parts))
            if place.destination and place.destination != f"{place.part}/":
                destination_of[j] = dests.setdefault(place.destination, len(dests))
        countries = sorted({c for c in pool.countries if c} | {""})
        index = {c: i for i, c in enumerate(countries)}
        country_code = np.array([index[c or ""] for c in pool.countries], dtype=np.int64)
        org_country = sparse.csr_matrix(
            (np.ones(len(pool.orgs), dtype=np.float32), (np.arange(len(pool.orgs)), country_code)),
            shape=(len(pool.orgs), len(countries)),
        )
        project_countries = (pool.members_of @ org_country).tocsr()
        pairs = (project_countries.T @ project_countries).toarray()
        return cls(pool, profile_sums, part_of, destination_of, country_code, countries,
                   pairs, project_countries, {"part": parts, "destination": dests})

    def place_codes(self, identifier: str | None) -> tuple[int, int]:
        place = parse_identifier(identifier)
        part = self.codes["part"].get(place.part, -2) if place.part else -2
        dest = self.codes["destination"].get(place.destination, -2) if place.destination else -2
        return part, dest


def _top_weights(sim: np.ndarray, k: int, power: int) -> np.ndarray:
    w = np.zeros_like(sim)
    k = min(k, sim.shape[0])
    if k <= 0:
        return w
    top = np.argpartition(-sim, k - 1)[:k] if k < sim.shape[0] else np.arange(sim.shape[0])
    w[top] = np.maximum(sim[top], 0.0) ** power
    return w


def pool_unit(activity: np.ndarray) -> float:
    """Mean number of projects per active organisation, to one decimal: the unit counts are
    measured in. Rounded so that it is the same for every query of a pool (a unit varying in
    the fourth decimal would turn each count into many slightly different values, which the
    tree model can only bin coarsely); one left-out project cannot move it."""
    active = activity[activity > 0]
    return max(0.1, round(float(active.mean()), 1)) if active.size else 1.0


def _coarse(v: np.ndarray, steps: float) -> np.ndarray:
    """Rounded to 1/steps."""
    return (np.round(np.asarray(v, dtype=np.float64) * steps) / steps).astype(np.float32)


def _scaled(v: np.ndarray) -> np.ndarray:
    peak = float(v.max()) if v.size else 0.0
    return v / peak if peak > 0 else v


@dataclass
class CallContext:
    """What the features of one call share across leads (computed once per call)."""

    call: CallQuery
    excluded: np.ndarray
    active: np.ndarray  # per project: 1, or 0 when left out
    touched: np.ndarray  # organisations of left-out projects
    sim: np.ndarray  # per project: similarity to the call (-1 when left out)
    activity: np.ndarray  # per organisation, left-out projects not counted
    norms: np.ndarray  # per organisation: norm of its profile sum
    fixed: np.ndarray | None  # profile sums of `touched` without the left-out projects
    base: dict[str, np.ndarray]  # the lead-independent features
    unit: float  # see pool_unit


def call_context(index: PoolIndex, call: CallQuery,
                 exclude: Sequence[int] | np.ndarray = ()) -> CallContext:
    pool = index.pool
    B = pool.beneficiaries
    P = pool.vectors
    assert P is not None
    n_orgs, n_proj = B.shape
    excluded = np.asarray(exclude, dtype=np.int64)
    active = np.ones(n_proj, dtype=np.float32)
    active[excluded] = 0.0
    touched = (np.unique(pool.members_of[excluded].indices) if excluded.size
               else np.zeros(0, dtype=np.int64))
    activity = pool.activity.copy()
    coordinated = pool.coordinated.copy()
    if excluded.size:
        activity -= np.asarray(B[:, excluded].sum(axis=1)).ravel()
        for j in excluded:
            c = pool.coordinator_of[j]
            if c >= 0:
                coordinated[c] -= 1.0

    F: dict[str, np.ndarray] = {}
    sim = P @ call.vector
    sim[excluded] = -1.0
    F["text_vote"] = _scaled(B @ _top_weights(sim, VOTE_WIDE, VOTE_POWER))
    F["text_vote_narrow"] = _scaled(B @ _top_weights(sim, VOTE_NARROW, VOTE_POWER))
    # the same among consortium projects only (single-beneficiary grants say who hosts
    # fellows, not who joins teams)
    in_consortium = index.team_sizes >= 3
    F["text_vote_consortia"] = _scaled(
        B @ _top_weights(np.where(in_consortium, sim, -1.0), VOTE_WIDE, VOTE_POWER))

    # profile = sum of an organisation's project vectors without the left-out ones
    sums = index.profile_sums
    dots = sums @ call.vector
    norms = index.profile_norms.copy()
    fixed = None
    if touched.size:
        fixed = sums[touched] - np.asarray(B[touched][:, excluded] @ P[excluded])
        dots[touched] = fixed @ call.vector
        norms[touched] = np.linalg.norm(fixed, axis=1)
    F["profile_call"] = np.maximum(np.where(norms > 0, dots / np.maximum(norms, 1e-9), 0.0), 0.0)

    part, dest = index.place_codes(call.identifier)
    # counts relative to the pool's mean activity: a pool of two years has about twice the
    # counts of a pool of one, and the model must not read that as twice the evidence
    unit = pool_unit(activity)
    F["same_part"] = np.log1p((B @ ((index.part_of == part) * active)) / unit)
    F["same_destination"] = np.log1p((B @ ((index.destination_of == dest) * active)) / unit)

    # The organisation's own constants are coarsened: exact values (47 projects, 12.8 %
    # coordinated) would identify it, and the model would learn who was a partner in the
    # training years instead of why.
    F["activity"] = _coarse(np.log2(1.0 + np.maximum(activity, 0.0) / unit), 2.0)
    held = np.maximum(activity, 1.0)
    F["coordinated_share"] = _coarse(np.where(activity > 0, coordinated / held, 0.0), 10.0)
    consortia = B @ (in_consortium * active)
    F["consortium_share"] = _coarse(np.where(activity > 0, consortia / held, 0.0), 10.0)
    F["consortium_activity"] = _coarse(np.log2(1.0 + consortia / unit), 2.0)
    F["is_university"] = index.type_flags["university"]
    F["is_company"] = index.type_flags["company"]
    F["is_research"] = index.type_flags["research"]
    F["is_public"] = index.type_flags["public"]
    F["is_sme"] = index.type_flags["sme"]
    kind = rule_for(call.type_of_action, call.identifier).kind
    F["action_kind"] = np.full(n_orgs, _ACTION_CODES.get(kind, 0.0), dtype=np.float32)
    return CallContext(call, excluded, active, touched, sim, activity, norms, fixed, F, unit)


def lead_features(index: PoolIndex, ctx: CallContext, lead: int | None) -> dict[str, np.ndarray]:
    """The features that depend on the lead (all zero without a lead history)."""
    pool = index.pool
    B = pool.beneficiaries
    P = pool.vectors
    assert P is not None
    n_orgs = B.shape[0]
    F: dict[str, np.ndarray] = {}
    zeros = np.zeros(n_orgs, dtype=np.float32)
    lead_projects = np.zeros(0, dtype=np.int64)
    if lead is not None:
        lead_projects = np.setdiff1d(pool.org_projects(lead), ctx.excluded)
    sim = ctx.sim
    if lead_projects.size:
        Bl = B[:, lead_projects]
        shared = np.asarray(Bl.sum(axis=1)).ravel()
        F["shared_with_lead"] = np.log1p(shared / ctx.unit)
        through = ctx.active * np.asarray(pool.members_of @ shared).ravel()
        F["two_hop"] = np.log1p(np.maximum(B @ through - ctx.activity * shared, 0.0) / ctx.unit**2)
        lead_sims = sim[lead_projects]
        F["lead_projects_on_call"] = (Bl @ np.maximum(lead_sims, 0.0)) / ctx.unit
        best = lead_projects[int(np.argmax(lead_sims))]
        best_row = np.zeros(n_orgs, dtype=np.float32)
        best_row[pool.project_orgs(best)] = max(float(sim[best]), 0.0)
        F["lead_best_project"] = best_row
        closest = lead_projects[np.argsort(-lead_sims, kind="stable")[:LEAD_EXPANSION]]
        centre = P[closest].mean(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-9)
        sim2 = P @ centre
        sim2[ctx.excluded] = -1.0
        F["lead_expanded_vote"] = _scaled(B @ _top_weights(sim2, EXPANDED_VOTE, VOTE_POWER))
        lead_profile = P[lead_projects].sum(axis=0)
        lead_profile /= max(float(np.linalg.norm(lead_profile)), 1e-9)
        lead_dots = index.profile_sums @ lead_profile
        if ctx.fixed is not None:
            lead_dots[ctx.touched] = ctx.fixed @ lead_profile
        norms = ctx.norms
        F["profile_lead"] = np.maximum(
            np.where(norms > 0, lead_dots / np.maximum(norms, 1e-9), 0.0), 0.0
        )
        coordinators = pool.coordinator_of[lead_projects]
        led = lead_projects[coordinators == lead]
        F["shared_lead_coordinated"] = (
            np.log1p(np.asarray(B[:, led].sum(axis=1)).ravel() / ctx.unit) if led.size else zeros)
        others = coordinators[(coordinators >= 0) & (coordinators != lead)]
        F["coordinated_with_lead"] = (
            np.log1p(np.bincount(others, minlength=n_orgs) / ctx.unit) if others.size else zeros)
    else:
        for name in ("shared_with_lead", "two_hop", "lead_projects_on_call", "lead_best_project",
                     "lead_expanded_vote", "profile_lead", *ROLE_FEATURES):
            F[name] = zeros
    if lead is not None and pool.countries[lead]:
        lead_country = index.country_code[lead]
        F["same_country"] = (index.country_code == lead_country).astype(np.float32)
        row = index.country_pairs[lead_country].astype(np.float64)
        if ctx.excluded.size:
            counts = index.project_countries[ctx.excluded].toarray()
            row -= (counts * counts[:, [lead_country]]).sum(axis=0)
        total = row.sum()
        share = row / total if total > 0 else np.zeros_like(row)
        # log share, shifted so that "never seen together" (1e-4) is 0
        F["country_affinity"] = (np.log(share + 1e-4) - np.log(1e-4))[index.country_code]
    else:
        F["same_country"] = zeros
        F["country_affinity"] = zeros
    return F


def partner_features(
    index: PoolIndex,
    call: CallQuery,
    lead: int | None,
    exclude: Sequence[int] | np.ndarray = (),
    context: CallContext | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features of every organisation in ALL_FEATURES order, activity without `exclude`)."""
    ctx = context or call_context(index, call, exclude)
    F = {**ctx.base, **lead_features(index, ctx, lead)}
    matrix = np.column_stack([np.asarray(F[name], dtype=np.float32).ravel() for name in ALL_FEATURES])
    return matrix, ctx.activity


def candidate_mask(pool: PartnerPool, activity: np.ndarray, lead: int | None) -> np.ndarray:
    """Who may be proposed: organisations with a beneficiary row left after excluding (club
    members also without), never the lead itself nor members that opted out."""
    ok = (activity > 0) | pool.is_member
    ok &= ~pool.is_excluded
    if lead is not None:
        ok[lead] = False
    return ok


# features that show an organisation has anything to do with the call or the lead; only
# organisations with one of them (and club members) are scored by the model, the others
# follow in order of activity (they would never make a shortlist)
SIGNAL_FEATURES = ("text_vote", "same_destination", "shared_with_lead", "lead_expanded_vote",
                   "lead_projects_on_call")


def scored_mask(
    matrix: np.ndarray, ok: np.ndarray, is_member: np.ndarray, features: Sequence[str]
) -> np.ndarray:
    """The candidates a model reading `features` scores: allowed (`ok`) and with a signal it
    reads, or a club member. Training draws its lists from the same rows."""
    signal = np.zeros(len(ok), dtype=bool)
    for name in SIGNAL_FEATURES:
        if name in features:
            signal |= matrix[:, ALL_FEATURES.index(name)] > 0
    return ok & (signal | is_member)


def check_model(model: CrossFitted) -> None:
    """Raise ModelUnavailableError unless `model` was trained on the features this code
    computes (same version of the definitions, every feature known)."""
    trained = model.meta.get("features_version")
    unknown = [f for f in model.features if f not in ALL_FEATURES]
    if trained != FEATURES_VERSION or unknown:
        what = (f"features version {trained}" if trained is not None
                else "features of an unversioned earlier definition")
        raise ModelUnavailableError(
            f"the partner ranking model ({model.name}) was trained on {what}, but this version "
            f"of horizon-match computes features version {FEATURES_VERSION}"
            + (f" (unknown features: {', '.join(unknown)})" if unknown else "")
            + "; retrain it with `python benchmarks/consortia_train_ranker.py`"
        )


def rank_partners(
    call: CallQuery,
    lead: int | None,
    index: PoolIndex,
    *,
    exclude: Sequence[int] | np.ndarray = (),
    variant: str = "combined",
    models: dict[str, CrossFitted] | None = None,
    context: CallContext | None = None,
) -> RankedPartners:
    """Every candidate organisation of the pool ranked for `call` with `lead` (an organisation
    index, or None when the lead is unknown), best first. Pass `context` (from
    `call_context`) to reuse the call's features across several leads."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")
    model = (models or shipped_models())[variant]
    check_model(model)
    matrix, activity = partner_features(index, call, lead, exclude, context)
    columns = [ALL_FEATURES.index(f) for f in model.features]
    ok = candidate_mask(index.pool, activity, lead)
    scored = np.flatnonzero(scored_mask(matrix, ok, index.pool.is_member, model.features))
    scores = np.full(len(ok), -np.inf)
    if scored.size:
        scores[scored] = model.predict(matrix[scored][:, columns], call.identifier)
    rest = np.flatnonzero(ok & ~np.isin(np.arange(len(ok)), scored))
    # everyone without a signal comes after the scored ones, by activity
    floor = (scores[scored].min() if scored.size else 0.0) - 1.0
    scores[rest] = floor - 1.0 / (1.0 + np.maximum(activity[rest], 0.0))
    order = np.lexsort((np.arange(len(scores)), -scores))
    order = order[np.isfinite(scores[order])]
    return RankedPartners(order, scores, matrix[:, columns], model.features)


def baseline_most_active(index: PoolIndex, lead: int | None,
                         exclude: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """Baseline: the organisations with the most projects (left-out projects not counted)."""
    pool = index.pool
    excluded = np.asarray(exclude, dtype=np.int64)
    activity = pool.activity.copy()
    if excluded.size:
        activity -= np.asarray(pool.beneficiaries[:, excluded].sum(axis=1)).ravel()
    ok = candidate_mask(pool, activity, lead)
    score = np.where(ok, activity, -np.inf)
    order = np.lexsort((np.arange(len(score)), -score))
    return order[np.isfinite(score[order])]


def baseline_lead_partners(index: PoolIndex, lead: int | None,
                           exclude: Sequence[int] | np.ndarray = ()) -> np.ndarray:
    """Baseline: the organisations that worked most often with the lead; ties (and everyone
    after them) by activity."""
    pool = index.pool
    excluded = np.asarray(exclude, dtype=np.int64)
    activity = pool.activity.copy()
    if excluded.size:
        activity -= np.asarray(pool.beneficiaries[:, excluded].sum(axis=1)).ravel()
    shared = np.zeros(len(pool), dtype=np.float64)
    if lead is not None:
        projects = np.setdiff1d(pool.org_projects(lead), excluded)
        if projects.size:
            shared = np.asarray(pool.beneficiaries[:, projects].sum(axis=1)).ravel()
    ok = candidate_mask(pool, activity, lead)
    score = np.where(ok, shared * 1e6 + activity, -np.inf)
    order = np.lexsort((np.arange(len(score)), -score))
    return order[np.isfinite(score[order])]
