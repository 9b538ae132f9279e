"""SQLAlchemy 2.0 tables.

Every schema change here needs a migration in horizon_match/migrations/versions/ (generate it
with `alembic revision --autogenerate`, see CONTRIBUTING in the README); the test suite checks
that the migrations produce exactly these tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ORGANISATION_TYPES = ("company", "university", "research", "public", "other")
SIZE_CLASSES = ("large", "sme", "micro", "startup")


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Organisation(Base):
    """A legal entity: a club member's organisation or one known from CORDIS."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # PIC is the EU Participant Identification Code; members without one have None.
    pic: Mapped[str | None] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    short_name: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    city: Mapped[str | None] = mapped_column(String(200))
    organisation_type: Mapped[str | None] = mapped_column(String(20))
    sme: Mapped[bool | None] = mapped_column(Boolean)
    size: Mapped[str | None] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(String(500))

    member: Mapped[Member | None] = relationship(back_populates="organisation", uselist=False)
    participations: Mapped[list[Participation]] = relationship(back_populates="organisation")


class Member(Base):
    """An organisation in the club, with the profile it is matched on."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str] = mapped_column(String(500))
    emails: Mapped[list] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    # programmes, types_of_action, budget_min, budget_max, languages, exclude_from_consortia ...
    preferences: Mapped[dict] = mapped_column(JSON, default=dict)
    language: Mapped[str | None] = mapped_column(String(8))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    organisation: Mapped[Organisation] = relationship(back_populates="member")


class Project(Base):
    """A past project: from CORDIS (id = grant agreement number) or a member's own file."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), default="cordis")  # cordis | member
    acronym: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    objective: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(20))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    total_cost: Mapped[float | None] = mapped_column(Float)
    ec_max_contribution: Mapped[float | None] = mapped_column(Float)
    funding_scheme: Mapped[str | None] = mapped_column(String(100))
    master_call: Mapped[str | None] = mapped_column(String(120))
    topic: Mapped[str | None] = mapped_column(String(120), index=True)
    topic_title: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(String(300))
    call_year: Mapped[int | None] = mapped_column(Integer)

    participations: Mapped[list[Participation]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )
    fields: Mapped[list[ProjectField]] = relationship(cascade="all, delete-orphan")


class Participation(Base):
    """Who took part in a project, in which role."""

    __tablename__ = "participations"
    __table_args__ = (UniqueConstraint("project_id", "organisation_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    # coordinator | participant | associatedPartner | thirdParty
    role: Mapped[str] = mapped_column(String(30))
    position: Mapped[int | None] = mapped_column(Integer)
    ec_contribution: Mapped[float | None] = mapped_column(Float)
    contribution: Mapped[str | None] = mapped_column(Text)  # what the partner did, free text

    project: Mapped[Project] = relationship(back_populates="participations")
    organisation: Mapped[Organisation] = relationship(back_populates="participations")


class ProjectField(Base):
    """A EuroSciVoc label of a project."""

    __tablename__ = "project_fields"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))


class Call(Base):
    """A call topic from the Funding & Tenders portal (or the demo set)."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(150), unique=True)
    call_identifier: Mapped[str | None] = mapped_column(String(150))
    call_title: Mapped[str | None] = mapped_column(Text)
    programme: Mapped[str | None] = mapped_column(String(50), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    description_html: Mapped[str] = mapped_column(Text, default="")
    conditions: Mapped[str] = mapped_column(Text, default="")
    destination: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(20), index=True)
    opening_date: Mapped[datetime | None] = mapped_column(DateTime)
    # [{"at": ISO datetime, "stage": n}, ...], several for multi-stage topics
    deadlines: Mapped[list] = mapped_column(JSON, default=list)
    next_deadline: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    type_of_action: Mapped[str | None] = mapped_column(String(200))
    budget: Mapped[float | None] = mapped_column(Float)
    keywords: Mapped[list] = mapped_column(JSON, default=list)
    url: Mapped[str | None] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(30), default="portal")
    content_hash: Mapped[str] = mapped_column(String(64))
    # hash of the search-listing entry: when it is unchanged, topic details are not re-fetched
    listing_hash: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    # set when a complete fetch no longer returned the call; never deleted
    missing_since: Mapped[datetime | None] = mapped_column(DateTime)
    details_fetched_at: Mapped[datetime | None] = mapped_column(DateTime)
    extra: Mapped[dict] = mapped_column(JSON, default=dict)

    changes: Mapped[list[CallChange]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallChange.id"
    )


class CallChange(Base):
    """A recorded change of a stored call (deadline moved, budget changed, ...)."""

    __tablename__ = "call_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    field: Mapped[str] = mapped_column(String(50))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)

    call: Mapped[Call] = relationship(back_populates="changes")


class Embedding(Base):
    """A cached vector, keyed by model and the hash of the exact text embedded."""

    __tablename__ = "embeddings"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class Run(Base):
    """One execution of a job (match, consortia, weekly run, scrape)."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))  # running | done | failed
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    as_of: Mapped[datetime | None] = mapped_column(DateTime)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    errors: Mapped[list] = mapped_column(JSON, default=list)


class Match(Base):
    """A member x call match of one run, with its score, rank and explanation."""

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("run_id", "member_id", "call_id"),
        Index("ix_matches_member_run", "member_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[dict] = mapped_column(JSON, default=dict)
    flags: Mapped[list] = mapped_column(JSON, default=list)


class ConsortiumSuggestion(Base):
    """A proposed team for a call, from one run."""

    __tablename__ = "consortium_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    lead_member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL")
    )
    eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    missing: Mapped[list] = mapped_column(JSON, default=list)  # plain sentences
    # the call's aspects with weight and coverage, the rule checked, notes for people
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    partners: Mapped[list[ConsortiumPartner]] = relationship(
        cascade="all, delete-orphan", order_by="ConsortiumPartner.position"
    )


class ConsortiumPartner(Base):
    __tablename__ = "consortium_partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    suggestion_id: Mapped[int] = mapped_column(
        ForeignKey("consortium_suggestions.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(30))  # coordinator | partner
    aspects: Mapped[list] = mapped_column(JSON, default=list)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # why it is in the team


class Delivery(Base):
    """An email about (member, call) sent at most once per kind."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("member_id", "call_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # match | reminder | consortium
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # the as-of day of the digest that carried it (reminders wait a week after a match)
    as_of: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed | cancelled
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)  # -> outbox
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class OutboxMessage(Base):
    """A composed email, stored before it is sent so a crash or a mail outage loses nothing.

    Its Delivery rows carry the same message_id; a retry sends these exact bytes again.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(300), unique=True)
    member_id: Mapped[str] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # digest | consortium
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    # the exact bytes handed to the mail server; cleared some weeks after sending
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending|sent|failed|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class Feedback(Base):
    """A member's reaction to a match (later: buttons on the web page and in the email)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    value: Mapped[int] = mapped_column(Integer)  # +1 relevant, -1 not relevant
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class JobLock(Base):
    """A named lock row; PostgreSQL additionally uses an advisory lock (see horizon_match.jobs)."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
