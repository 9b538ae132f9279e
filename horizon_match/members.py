"""Member profiles in the database: import (upsert by id, one transaction), export, list,
show, remove, and the texts the matcher reads.

A file is read and checked whole by `horizon_match.member_files`; storing happens only when
it is clean, in one transaction, and problems that need the database (a PIC that already
belongs to another member) roll everything back.

A member lives in two tables: `Organisation` (the legal entity, keyed by PIC, shared with
CORDIS) holds country, city, type, size and SME flag; `Member` holds the profile. A member's
own past projects are `Project` rows with source "member" and id `member:<id>:<n>`.

Re-import updates by id. A field that is absent from a record (a missing key, a missing CSV
column) leaves the stored value alone; a field that is present but empty clears it. CSV has
no place for past projects, so a CSV import never touches them.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from horizon_match.call_store import utc_naive
from horizon_match.db import Database
from horizon_match.errors import InputError, NotFoundError, Problem, ValidationError
from horizon_match.member_files import (
    FIELDS,
    FORMATS,
    PREFERENCE_KEYS,
    MemberRecord,
    format_of,
    ordered_preferences,
    parse_members_file,
    write_profiles,
)
from models.tables import (
    ConsortiumPartner,
    Member,
    Organisation,
    Participation,
    Project,
)

__all__ = [
    "FIELDS",
    "FORMATS",
    "PREFERENCE_KEYS",
    "ImportSummary",
    "MemberRecord",
    "MemberView",
    "RemoveSummary",
    "export_members",
    "import_members",
    "list_members",
    "member_profile_texts",
    "members_profile_texts",
    "member_profiles",
    "parse_members_file",
    "remove_member",
    "show_member",
    "store_members",
    "write_members_file",
]

PROJECT_PREFIX = "member:"
_ORGANISATION_FIELDS = ("country", "city", "organisation_type", "size", "sme")


# ----------------------------------------------------------------------------------------
# summaries


@dataclass
class ImportSummary:
    file: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    created_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class RemoveSummary:
    member_id: str
    name: str
    projects_removed: int
    organisation_kept: bool
    cordis_projects: int

    def __str__(self) -> str:
        text = f"removed member {self.member_id} ({self.name})"
        if self.projects_removed:
            text += f" and its {self.projects_removed} own past project(s)"
        if self.organisation_kept and self.cordis_projects:
            text += f"; its organisation stays, with its {self.cordis_projects} CORDIS project(s)"
        return text


# ----------------------------------------------------------------------------------------
# storing


def _project_number(project_id: str) -> int:
    """n of `member:<id>:<n>`; 0 for any other id."""
    tail = project_id.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _own_projects(
    session: Session, member_ids: Iterable[str] | None = None
) -> dict[str, list[Project]]:
    """Members' own past projects, in file order, by member id."""
    query = (
        select(Project)
        .where(Project.source == "member")
        .options(selectinload(Project.participations))
    )
    wanted = None if member_ids is None else set(member_ids)
    if wanted is not None and len(wanted) == 1:
        only = next(iter(wanted))
        query = query.where(Project.id.startswith(f"{PROJECT_PREFIX}{only}:", autoescape=True))
    result: dict[str, list[Project]] = defaultdict(list)
    for project in session.scalars(query):
        parts = project.id.split(":")
        if len(parts) != 3 or parts[0] + ":" != PROJECT_PREFIX or not parts[2].isdigit():
            continue  # not a row this module wrote
        member_id = parts[1]
        if wanted is None or member_id in wanted:
            result[member_id].append(project)
    for projects in result.values():
        projects.sort(key=lambda p: _project_number(p.id))
    return result


def _profile(member: Member, own: list[Project]) -> dict[str, Any]:
    """The canonical exported form of a member (what round-trips)."""
    org = member.organisation
    return {
        "id": member.id,
        "name": member.name,
        "emails": list(member.emails or []),
        "country": org.country,
        "city": org.city,
        "organisation_type": org.organisation_type,
        "size": org.size,
        "sme": org.sme,
        "pic": org.pic,
        "description": member.description or "",
        "keywords": list(member.keywords or []),
        "past_projects": [{"title": p.title, "summary": p.objective or ""} for p in own],
        "preferences": ordered_preferences(dict(member.preferences or {})),
    }


def _org_is_unused(session: Session, org: Organisation) -> bool:
    if session.scalar(
        select(func.count()).select_from(Member).where(Member.organisation_id == org.id)
    ):
        return False
    if session.scalar(
        select(func.count())
        .select_from(Participation)
        .where(Participation.organisation_id == org.id)
    ):
        return False
    # Past consortium suggestions keep pointing at the organisation they named.
    return not session.scalar(
        select(func.count())
        .select_from(ConsortiumPartner)
        .where(ConsortiumPartner.organisation_id == org.id)
    )


def _organisations_by_pic(session: Session, pics: set[str]) -> dict[str, Organisation]:
    found: dict[str, Organisation] = {}
    ordered = sorted(pics)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        for org in session.scalars(select(Organisation).where(Organisation.pic.in_(chunk))):
            found[org.pic or ""] = org
    return found


def store_members(
    db: Database, records: Sequence[MemberRecord], *, file: str, now: datetime | None = None
) -> ImportSummary:
    """Write checked records in one transaction (upsert by id). Nothing is written if a
    record conflicts with the database (ValidationError)."""
    with db.session() as session:
        return _store(session, records, file, utc_naive(now))


def _store(
    session: Session, records: Sequence[MemberRecord], file: str, now: datetime
) -> ImportSummary:
    members = {
        m.id: m for m in session.scalars(select(Member).options(joinedload(Member.organisation)))
    }
    # The PIC every member will have afterwards; one PIC may not end up with two members.
    final_pic: dict[str, str | None] = {mid: m.organisation.pic for mid, m in members.items()}
    for record in records:
        if "pic" in record.values:
            final_pic[record.id] = record.values["pic"]
        else:
            final_pic.setdefault(record.id, None)
    holders: dict[str, list[str]] = defaultdict(list)
    for mid, pic in final_pic.items():
        if pic:
            holders[pic].append(mid)
    problems = []
    for record in records:
        pic = final_pic[record.id]
        others = [mid for mid in holders.get(pic or "", []) if mid != record.id]
        if pic and others:
            problems.append(
                Problem(
                    file,
                    record.line_of("pic"),
                    "pic",
                    f"PIC {pic} already belongs to member {others[0]!r}; correct the PIC or "
                    "change that member first",
                )
            )
    if problems:
        raise ValidationError(problems)

    own = _own_projects(session)
    before = {r.id: _profile(members[r.id], own.get(r.id, [])) for r in records if r.id in members}
    by_pic = _organisations_by_pic(session, {p for p in final_pic.values() if p})

    # The organisation fields each member has now: a member that changes organisation (a new
    # PIC) takes along the ones its record does not give, as "absent keeps the stored value"
    # promises. Taken before anything moves, since members may trade organisations.
    own_fields = {
        r.id: {k: getattr(members[r.id].organisation, k) for k in _ORGANISATION_FIELDS}
        for r in records
        if r.id in members
    }

    # Decide every member's organisation first, then move, so that two members may trade
    # organisations within one file without tripping the one-member-per-organisation rule.
    targets: dict[str, Organisation] = {}
    vacated: list[Organisation] = []
    for record in records:
        member = members.get(record.id)
        current = member.organisation if member else None
        pic = final_pic[record.id]
        if current is not None and current.pic == pic:
            targets[record.id] = current
        elif pic and pic in by_pic:
            targets[record.id] = by_pic[pic]
        elif current is not None and current.pic is None:
            current.pic = pic  # the member's own organisation just learnt its PIC
            targets[record.id] = current
        else:
            org = Organisation(pic=pic, name=record.values.get("name") or "")
            session.add(org)
            if pic:
                by_pic[pic] = org
            targets[record.id] = org
        if current is not None and targets[record.id] is not current:
            vacated.append(current)
    original = {mid: members[mid].organisation for mid in own_fields}
    moving = [
        members[mid]
        for mid in targets
        if mid in members and members[mid].organisation is not targets[mid]
    ]
    placeholders = []
    if moving:
        for member in moving:
            placeholder = Organisation(name=f"(moving {member.id})")
            placeholders.append(placeholder)
            member.organisation = placeholder
        session.flush()

    summary = ImportSummary(file=file)
    for record in records:
        member = members.get(record.id)
        org = targets[record.id]
        if member is None:
            member = Member(
                id=record.id,
                name=record.values["name"],
                emails=[],
                description="",
                keywords=[],
                preferences={},
                created_at=now,
                updated_at=now,
            )
            members[record.id] = member
        if record.id in own_fields and org is not original[record.id]:
            # its own values win over those of the organisation it joins: one from CORDIS
            # only fills what the member left empty; one another member left in this file
            # (a trade of PICs) keeps nothing of that member's
            traded = any(org is o for o in original.values())
            for key, value in own_fields[record.id].items():
                if key not in record.values and (value is not None or traded):
                    setattr(org, key, value)
        member.organisation = org
        session.add(member)
        _apply(member, org, record.values)
    session.flush()
    for placeholder in placeholders:
        session.delete(placeholder)

    # Past projects given in the file replace the stored ones when they differ. The new rows
    # reuse the old ids, so every old row is deleted (one flush) before any is added.
    replaced = [
        r
        for r in records
        if "past_projects" in r.values
        and [{"title": p.title, "summary": p.objective or ""} for p in own.get(r.id, [])]
        != r.values["past_projects"]
    ]
    for record in replaced:
        for project in own.pop(record.id, []):
            session.delete(project)
    if replaced:
        session.flush()
    for record in replaced:
        member = members[record.id]
        for n, item in enumerate(record.values["past_projects"], 1):
            project = Project(
                id=f"{PROJECT_PREFIX}{member.id}:{n}",
                source="member",
                title=item["title"],
                objective=item["summary"],
            )
            project.participations.append(
                Participation(organisation=member.organisation, role="participant")
            )
            session.add(project)
            own.setdefault(record.id, []).append(project)
    # A member that moved to another organisation takes its own projects along.
    for record in records:
        member = members[record.id]
        for project in own.get(record.id, []):
            for participation in project.participations:
                participation.organisation = member.organisation
    session.flush()

    for org in vacated:
        if _org_is_unused(session, org):
            session.delete(org)

    for record in records:
        member = members[record.id]
        after = _profile(member, own.get(record.id, []))
        if record.id not in before:
            summary.created += 1
            summary.created_ids.append(record.id)
        elif after != before[record.id]:
            member.updated_at = now
            summary.updated += 1
            summary.updated_ids.append(record.id)
        else:
            summary.unchanged += 1
    session.flush()
    return summary


def _apply(member: Member, org: Organisation, values: dict[str, Any]) -> None:
    if "name" in values:
        member.name = values["name"]
    if "description" in values and values["description"] != member.description:
        member.description = values["description"]
        member.language = None  # detected from the description; stale now
    for key in ("emails", "keywords"):
        if key in values:
            setattr(member, key, list(values[key]))
    preferences = dict(member.preferences or {})
    if "preferences" in values:
        preferences = dict(values["preferences"])
    for key, value in values.items():
        if key.startswith("preferences."):
            sub = key.split(".", 1)[1]
            if value is None:
                preferences.pop(sub, None)
            else:
                preferences[sub] = value
    member.preferences = ordered_preferences(preferences)
    for key in _ORGANISATION_FIELDS:
        if key in values:
            setattr(org, key, values[key])
    # The club's name for the organisation is the one shown everywhere, also in consortia.
    org.name = member.name


def import_members(db: Database, path: Path, *, now: datetime | None = None) -> ImportSummary:
    """Check a member file whole, then store it in one transaction (nothing on any problem)."""
    records = parse_members_file(path)
    return store_members(db, records, file=str(path), now=now)


# ----------------------------------------------------------------------------------------
# exporting


def member_profiles(session: Session) -> list[dict[str, Any]]:
    """Every member in canonical exported form, ordered by id."""
    own = _own_projects(session)
    members = session.scalars(
        select(Member).options(joinedload(Member.organisation)).order_by(Member.id)
    )
    return [_profile(m, own.get(m.id, [])) for m in members]


def export_members(db: Database, out: TextIO, fmt: str) -> int:
    """Write every member to `out` in csv, jsonl or yaml; returns how many. Importing the
    output gives back the same members (CSV carries no past projects)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    with db.session() as session:
        profiles = member_profiles(session)
    write_profiles(profiles, out, fmt)
    return len(profiles)


def write_members_file(db: Database, path: Path, fmt: str | None = None) -> int:
    """Export to a file (format from `fmt` or the file name; .gz compresses). The file is
    replaced only once it is complete."""
    fmt = fmt or format_of(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    with db.session() as session:
        profiles = member_profiles(session)
    directory = path.resolve().parent
    if not directory.is_dir():
        raise InputError(
            f"{path}: the folder {directory} does not exist; create it or write elsewhere"
        )
    try:
        fd, tmp = tempfile.mkstemp(prefix=".members-", dir=directory)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot write in {directory} ({exc.strerror}); write elsewhere"
        ) from exc
    compress = path.name.lower().endswith(".gz")
    try:
        with os.fdopen(fd, "wb") as raw:
            binary = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
            with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
                write_profiles(profiles, text, fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(profiles)


# ----------------------------------------------------------------------------------------
# list, show, remove


def _cordis_counts(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Participation.organisation_id, func.count(func.distinct(Participation.project_id)))
        .join(Project, Project.id == Participation.project_id)
        .where(Project.source != "member")
        .group_by(Participation.organisation_id)
    )
    return {org_id: count for org_id, count in rows}


def list_members(db: Database) -> list[dict[str, Any]]:
    """One row per member: id, name, country, type, size, pic, number of emails, own and
    CORDIS project counts."""
    with db.session() as session:
        own = _own_projects(session)
        cordis = _cordis_counts(session)
        members = session.scalars(
            select(Member).options(joinedload(Member.organisation)).order_by(Member.id)
        )
        return [
            {
                "id": m.id,
                "name": m.name,
                "country": m.organisation.country,
                "type": m.organisation.organisation_type,
                "size": m.organisation.size,
                "pic": m.organisation.pic,
                "emails": len(m.emails or []),
                "own_projects": len(own.get(m.id, [])),
                "cordis_projects": cordis.get(m.organisation_id, 0),
            }
            for m in members
        ]


@dataclass
class MemberView:
    """A member's profile and track record, for `members show`."""

    profile: dict[str, Any]
    organisation_name: str
    language: str | None
    created_at: datetime
    updated_at: datetime
    cordis_projects: list[dict[str, Any]]

    @property
    def coordinated(self) -> int:
        return sum(1 for p in self.cordis_projects if p["role"] == "coordinator")

    def as_text(self) -> str:
        p = self.profile
        yes_no = {True: "yes", False: "no", None: "-"}
        def shown(value: Any) -> str:
            if isinstance(value, list):
                return ", ".join(value)
            return yes_no[value] if isinstance(value, bool) else str(value)

        prefs = [f"{k}: {shown(v)}" for k, v in p["preferences"].items()]
        place = " ".join(x for x in (p["country"], f"({p['city']})" if p["city"] else None) if x)
        lines = [
            f"{p['id']}: {p['name']}",
            f"  organisation  {self.organisation_name}"
            + (f", PIC {p['pic']}" if p["pic"] else ", no PIC"),
            f"  country       {place or '-'}",
            f"  type          {p['organisation_type'] or '-'}, size {p['size'] or '-'}, "
            f"SME {yes_no[p['sme']]}",
            f"  emails        {'; '.join(p['emails']) or '-'}",
            f"  keywords      {'; '.join(p['keywords']) or '-'}",
            f"  preferences   {prefs[0] if prefs else '-'}",
            *(f"                {line}" for line in prefs[1:]),
            f"  language      {self.language or '-'}",
            f"  updated       {self.updated_at:%Y-%m-%d %H:%M} "
            f"(created {self.created_at:%Y-%m-%d})",
            "  description",
        ]
        lines += [f"    {line}" for line in (p["description"] or "-").split("\n")]
        own = p["past_projects"]
        lines.append(
            f"Track record: {len(own)} own past project(s), {len(self.cordis_projects)} CORDIS "
            f"project(s) ({self.coordinated} as coordinator)"
        )
        for item in own:
            lines.append(f"  own     {item['title']}")
        for item in self.cordis_projects:
            label = " ".join(x for x in (item["acronym"], f"[{item['id']}]") if x)
            year = item["call_year"] or ""
            lines.append(f"  CORDIS  {year} {label} {item['role']}: {item['title']}")
        return "\n".join(lines)


def _get_member(session: Session, member_id: str) -> Member:
    member = session.scalar(
        select(Member).options(joinedload(Member.organisation)).where(Member.id == member_id)
    )
    if member is None:
        raise NotFoundError(f"no member with id {member_id}; see `horizon-match members list`")
    return member


def show_member(db: Database, member_id: str) -> MemberView:
    """A member's profile with its own past projects and its CORDIS projects (through its PIC)."""
    with db.session() as session:
        member = _get_member(session, member_id)
        own = _own_projects(session, [member.id]).get(member.id, [])
        rows = session.execute(
            select(Project, Participation.role)
            .join(Participation, Participation.project_id == Project.id)
            .where(Participation.organisation_id == member.organisation_id)
            .where(Project.source != "member")
            .order_by(Project.call_year.desc(), Project.id)
        )
        cordis: dict[str, dict[str, Any]] = {}
        for project, role in rows:
            entry = cordis.setdefault(
                project.id,
                {
                    "id": project.id,
                    "acronym": project.acronym,
                    "title": project.title,
                    "role": role,
                    "call_year": project.call_year,
                    "topic": project.topic,
                },
            )
            if role == "coordinator":
                entry["role"] = role
        return MemberView(
            profile=_profile(member, own),
            organisation_name=member.organisation.name,
            language=member.language,
            created_at=member.created_at,
            updated_at=member.updated_at,
            cordis_projects=list(cordis.values()),
        )


def remove_member(db: Database, member_id: str) -> RemoveSummary:
    """Remove a member and its own past projects. Its organisation stays when CORDIS (or a
    past consortium suggestion) still refers to it."""
    with db.session() as session:
        member = _get_member(session, member_id)
        org = member.organisation
        own = _own_projects(session, [member.id]).get(member.id, [])
        for project in own:
            session.delete(project)
        session.delete(member)
        session.flush()
        cordis = _cordis_counts(session).get(org.id, 0)
        kept = not _org_is_unused(session, org)
        if not kept:
            session.delete(org)
        return RemoveSummary(member_id, member.name, len(own), kept, cordis)


# ----------------------------------------------------------------------------------------
# for the matcher


def member_profile_texts(session: Session, member: Member) -> dict[str, Any]:
    """The texts a member is matched on: its description, keywords, and every project of its
    organisation (its own past projects and CORDIS projects through its PIC).

    Each project: title, summary, source ("member" or "cordis"), fields (EuroSciVoc titles),
    funding_scheme, topic, legal_basis, plus id and role.
    """
    return members_profile_texts(session, [member])[member.id]


# organisations per query when loading many members' projects: 500 bound parameters stay
# under every database's limit (999 on SQLite before 3.32), as SQLAlchemy's selectinload does
_ORGANISATIONS_PER_QUERY = 500


def members_profile_texts(session: Session, members: Sequence[Member]) -> dict[str, dict[str, Any]]:
    """`member_profile_texts` of many members, by member id, in a few queries: one query per
    member made loading 30,000 members take longer than matching them."""
    per_org: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    org_ids = sorted({m.organisation_id for m in members})
    for start in range(0, len(org_ids), _ORGANISATIONS_PER_QUERY):
        rows = session.execute(
            select(Project, Participation.role, Participation.organisation_id)
            .join(Participation, Participation.project_id == Project.id)
            .where(Participation.organisation_id.in_(org_ids[start : start + _ORGANISATIONS_PER_QUERY]))
            .options(selectinload(Project.fields))
        )
        for project, role, org_id in rows:
            projects = per_org[org_id]
            if project.id in projects:
                if role == "coordinator":
                    projects[project.id]["role"] = role
                continue
            projects[project.id] = {
                "id": project.id,
                "title": project.title,
                "summary": project.objective or "",
                "source": project.source,
                "fields": sorted(f.title for f in project.fields),
                "funding_scheme": project.funding_scheme,
                "topic": project.topic,
                "legal_basis": project.legal_basis,
                "role": role,
            }

    def order(item: dict[str, Any]) -> tuple[int, int, str]:
        if item["source"] == "member":
            return (0, _project_number(item["id"]), item["id"])
        return (1, 0, item["id"])

    return {
        m.id: {
            "description": m.description or "",
            "keywords": list(m.keywords or []),
            "projects": sorted(per_org[m.organisation_id].values(), key=order),
        }
        for m in members
    }
