"""The partner pool: every organisation that could join a team, with its track record.

A pool is built from plain rows (organisations, projects, who took part in what), either read
from the database (`load_pool`, the product path) or from a CORDIS folder read whole
(`pool_from_cordis`, the evaluation path); both end in `build_pool`, so the ranking code sees
the same structure either way.

Only beneficiaries count (coordinator and participant rows): associated partners and third
parties carry no grant and are listed with their linked beneficiary's project, so they say
little about who a coordinator chooses. The collaboration history is the organisation x
project incidence matrix `beneficiaries`: two organisations worked together once per project
they share. Leaving projects out (the evaluation leaves the target project out) is done by
masking project columns, never by rebuilding the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import sparse

from sqlalchemy import select

from horizon_match.db import Database
from horizon_match.errors import InputError
from horizon_match.progress import NULL_PROGRESS, Progress
from models.tables import Member, Organisation, Participation, Project

BENEFICIARY_ROLES = ("coordinator", "participant")
# Objectives run to ~2,000 characters; the model reads ~256 tokens, so more text only costs.
PROJECT_TEXT_CHARS = 2000


@dataclass
class PoolOrganisation:
    key: str  # the PIC, or "org:<database id>" for an organisation without one
    name: str
    country: str | None = None
    organisation_type: str | None = None  # company | university | research | public | other
    sme: bool | None = None
    organisation_id: int | None = None  # database id (None in an evaluation pool)
    member_id: str | None = None  # set for club members
    excluded: bool = False  # a member that asked not to be proposed (no capacity)


@dataclass
class PoolProject:
    id: str
    title: str
    text: str  # what is embedded
    topic: str | None = None
    funding_scheme: str | None = None
    year: int | None = None


@dataclass(frozen=True)
class PoolParticipation:
    project_id: str
    org_key: str
    role: str  # coordinator | participant | associatedPartner | thirdParty


def project_text(title: str | None, objective: str | None, keywords: str | None = None) -> str:
    """The text a past project is known by: title, objective, keywords, cut to one passage."""
    parts = [(title or "").strip(), (objective or "").strip()]
    if keywords and keywords.strip():
        parts.append("Keywords: " + keywords.strip())
    text = ". ".join(p for p in parts if p)
    return text[:PROJECT_TEXT_CHARS]


@dataclass
class PartnerPool:
    """Organisations x projects, with everything the ranking needs precomputed.

    `beneficiaries[i, j]` is 1 when organisation i was coordinator or participant of project
    j; `coordinator_of[j]` is the index of project j's coordinator (-1 when none is known).
    `vectors` (one row per project) are attached by `attach_vectors`.
    """

    orgs: list[PoolOrganisation]
    projects: list[PoolProject]
    beneficiaries: sparse.csr_matrix
    coordinator_of: np.ndarray
    by_key: dict[str, int] = field(default_factory=dict)
    project_index: dict[str, int] = field(default_factory=dict)
    vectors: np.ndarray | None = None
    vector_model: str | None = None

    def __post_init__(self) -> None:
        self.by_key = {o.key: i for i, o in enumerate(self.orgs)}
        self.project_index = {p.id: j for j, p in enumerate(self.projects)}
        self.projects_of = self.beneficiaries.tocsr()
        self.members_of = self.beneficiaries.T.tocsr()  # project -> organisations
        self.activity = np.asarray(self.beneficiaries.sum(axis=1)).ravel().astype(np.float32)
        coordinated = np.zeros(len(self.orgs), dtype=np.float32)
        known = self.coordinator_of[self.coordinator_of >= 0]
        np.add.at(coordinated, known, 1.0)
        self.coordinated = coordinated
        self.countries = np.array([o.country or "" for o in self.orgs], dtype=object)
        self.types = np.array([o.organisation_type or "" for o in self.orgs], dtype=object)
        self.is_member = np.array([o.member_id is not None for o in self.orgs], dtype=bool)
        self.is_excluded = np.array([o.excluded for o in self.orgs], dtype=bool)

    def __len__(self) -> int:
        return len(self.orgs)

    def find(self, key: str) -> int | None:
        return self.by_key.get(key)

    def member_index(self, member_id: str) -> int | None:
        for i, org in enumerate(self.orgs):
            if org.member_id == member_id:
                return i
        return None

    def project_rows(self, ids: Iterable[str]) -> np.ndarray:
        """Indices of the given project ids that are in the pool (unknown ids are skipped)."""
        return np.array(
            sorted({self.project_index[p] for p in ids if p in self.project_index}), dtype=np.int64
        )

    def org_projects(self, i: int) -> np.ndarray:
        row = self.projects_of
        return row.indices[row.indptr[i] : row.indptr[i + 1]]

    def project_orgs(self, j: int) -> np.ndarray:
        col = self.members_of
        return col.indices[col.indptr[j] : col.indptr[j + 1]]

    def attach_vectors(self, vectors: np.ndarray, model: str) -> None:
        if vectors.shape[0] != len(self.projects):
            raise ValueError(f"{vectors.shape[0]} vectors for {len(self.projects)} projects")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vector_model = model


def build_pool(
    orgs: Sequence[PoolOrganisation],
    projects: Sequence[PoolProject],
    participations: Iterable[PoolParticipation],
    *,
    keep_orgs_without_projects: bool = True,
) -> PartnerPool:
    """A pool from plain rows. Organisations with no beneficiary row are kept only when they
    are club members (their profile text still makes them candidates) or when asked."""
    project_index = {p.id: j for j, p in enumerate(projects)}
    org_index = {o.key: i for i, o in enumerate(orgs)}
    rows: list[int] = []
    cols: list[int] = []
    coordinator_of = np.full(len(projects), -1, dtype=np.int64)
    seen: set[tuple[int, int]] = set()
    for part in participations:
        if part.role not in BENEFICIARY_ROLES:
            continue
        j = project_index.get(part.project_id)
        i = org_index.get(part.org_key)
        if j is None or i is None or (i, j) in seen:
            continue
        seen.add((i, j))
        rows.append(i)
        cols.append(j)
        if part.role == "coordinator" and coordinator_of[j] < 0:
            coordinator_of[j] = i
    incidence = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(orgs), len(projects))
    )
    if not keep_orgs_without_projects:
        active = np.asarray(incidence.sum(axis=1)).ravel() > 0
        keep = [i for i, o in enumerate(orgs) if active[i] or o.member_id is not None]
        if len(keep) < len(orgs):
            old_to_new = np.full(len(orgs), -1, dtype=np.int64)
            old_to_new[keep] = np.arange(len(keep))
            incidence = incidence[keep]
            coordinator_of = np.where(coordinator_of >= 0, old_to_new[coordinator_of], -1)
            orgs = [orgs[i] for i in keep]
    return PartnerPool(list(orgs), list(projects), incidence.tocsr(), coordinator_of)


def attach_pool_vectors(pool: PartnerPool, cache: VectorCache, progress: Progress = NULL_PROGRESS) -> None:
    """Embed every project text of the pool (through the cache: unchanged texts are read,
    not recomputed) and attach the vectors."""
    vectors = cache.encode([p.text for p in pool.projects], progress)
    pool.attach_vectors(vectors, cache.embedder.name)


class VectorCache(Protocol):
    """horizon_match.embedding.EmbeddingCache (database) or MemoryCache (tests)."""

    embedder: Any

    def encode(self, texts: Sequence[str], progress: Progress = NULL_PROGRESS) -> np.ndarray: ...


# --- the product path: the database -------------------------------------------------------

MEMBER_PROFILE_PREFIX = "profile:"


def load_pool(db: Database, *, excluded_members: Iterable[str] = ()) -> PartnerPool:
    """Every organisation with a beneficiary row in a stored project, plus every club member.

    A member's own description and keywords become one more text of its profile (a project
    id `profile:<member id>` that no one else shares), so a member without any CORDIS history
    is still a candidate. Members whose preferences say `exclude_from_consortia`, and those
    in `excluded_members`, stay in the pool (their history links others) but are never
    proposed.
    """
    skip = set(excluded_members)
    with db.session() as s:
        member_rows = s.execute(
            select(Member.id, Member.organisation_id, Member.description, Member.keywords,
                   Member.preferences, Member.name)
        ).all()
        members = {r.organisation_id: r for r in member_rows}
        part_rows = s.execute(
            select(Participation.project_id, Participation.organisation_id, Participation.role)
            .where(Participation.role.in_(BENEFICIARY_ROLES))
        ).all()
        org_ids = {r.organisation_id for r in part_rows} | set(members)
        org_rows = [
            r for r in s.execute(
                select(Organisation.id, Organisation.pic, Organisation.name,
                       Organisation.country, Organisation.organisation_type, Organisation.sme)
            ).all()
            if r.id in org_ids
        ]
        project_ids = {r.project_id for r in part_rows}
        project_rows = [
            r for r in s.execute(
                select(Project.id, Project.title, Project.objective, Project.keywords,
                       Project.topic, Project.funding_scheme, Project.call_year,
                       Project.start_date)
            ).all()
            if r.id in project_ids
        ]
    orgs: list[PoolOrganisation] = []
    key_of: dict[int, str] = {}
    for r in sorted(org_rows, key=lambda r: r.id):
        member = members.get(r.id)
        key = r.pic or f"org:{r.id}"
        key_of[r.id] = key
        prefs = (member.preferences or {}) if member is not None else {}
        orgs.append(PoolOrganisation(
            key=key,
            name=(member.name if member is not None else None) or r.name,
            country=r.country,
            organisation_type=r.organisation_type,
            sme=r.sme,
            organisation_id=r.id,
            member_id=member.id if member is not None else None,
            excluded=member is not None
            and (bool(prefs.get("exclude_from_consortia")) or member.id in skip),
        ))
    projects = [
        PoolProject(
            id=r.id,
            title=r.title or "",
            text=project_text(r.title, r.objective, r.keywords),
            topic=r.topic,
            funding_scheme=r.funding_scheme,
            year=r.call_year or _year_of(r.start_date),
        )
        for r in sorted(project_rows, key=lambda r: r.id)
    ]
    parts = [
        PoolParticipation(r.project_id, key_of[r.organisation_id], r.role)
        for r in part_rows
        if r.organisation_id in key_of
    ]
    for org_id, member in sorted(members.items(), key=lambda kv: kv[1].id):
        text = " ".join(
            [member.description or "", ", ".join(str(k) for k in member.keywords or [])]
        ).strip()
        if text and org_id in key_of:
            pid = f"{MEMBER_PROFILE_PREFIX}{member.id}"
            projects.append(PoolProject(id=pid, title=member.name, text=text[:PROJECT_TEXT_CHARS]))
            parts.append(PoolParticipation(pid, key_of[org_id], "participant"))
    return build_pool(orgs, projects, parts)


# --- the evaluation path: a CORDIS folder read whole --------------------------------------


def pool_from_cordis(folder: Path, progress: Progress = NULL_PROGRESS) -> PartnerPool:
    """The pool of a CORDIS folder (projects.csv, organizations.csv) without a database.

    Reads through horizon_match.cordis.read_cordis_folder, so the folder is checked exactly
    as `cordis import` checks it.
    """
    from horizon_match.cordis import read_cordis_folder

    data = read_cordis_folder(folder, progress)
    projects = [
        PoolProject(
            id=str(p["id"]),
            title=p.get("title") or "",
            text=project_text(p.get("title"), p.get("objective"), p.get("keywords")),
            topic=p.get("topic"),
            funding_scheme=p.get("funding_scheme"),
            year=p.get("call_year") or _year_of(p.get("start_date")),
        )
        for p in data.projects
    ]
    orgs = [
        PoolOrganisation(
            key=str(pic),
            name=o.get("name") or str(pic),
            country=o.get("country"),
            organisation_type=o.get("organisation_type"),
            sme=o.get("sme"),
        )
        for pic, o in data.organisations.items()
    ]
    parts = [
        PoolParticipation(str(p["project_id"]), str(p["pic"]), str(p["role"]))
        for p in data.participations
    ]
    if not projects:
        raise InputError(f"{folder}: projects.csv has no projects; the partner pool would be empty")
    return build_pool(orgs, projects, parts, keep_orgs_without_projects=False)


def _year_of(value: object) -> int | None:
    year = getattr(value, "year", None)
    return int(year) if year else None
