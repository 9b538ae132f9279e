"""Who gets which email, at most once: compose into the outbox, then send what is pending.

1. Compose (one transaction): for every subscribed member with an address, the matches of the
   latest matching not yet delivered, the reminders due, and for proposed leads their teams.
   Each message is stored whole in `outbox` together with one `deliveries` row per
   (member, call, kind) it carries; the unique key on those rows is what makes "at most once"
   hold even if the job runs twice.
2. Send: every pending outbox message (this run's and any a previous run could not send), each
   marked sent or failed in its own transaction as soon as the server answers. A mail server
   outage stops the batch and leaves the rest pending for the next run; a message refused for
   good is marked failed and its items become due again (e.g. after the address is fixed).

The one unavoidable gap of SMTP: if the connection dies after the server took a message but
before it said so, the message is sent again on retry, with the same Message-ID, which mail
clients use to drop the duplicate.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.digest import (
    CallSummary,
    ConsortiumNotice,
    Deadline,
    Digest,
    Envelope,
    LeadTeams,
    MatchItem,
    Partner,
    Recipient,
    Team,
    address_of,
    build_consortium_message,
    build_digest,
    domain_of,
    reason_from_explanation,
    recipients_of,
)
from horizon_match.errors import ConfigError, MailError, NotFoundError
from horizon_match.locks import utcnow
from horizon_match.mailer import (
    Mailer,
    PermanentMailError,
    SmtpMailer,
    TemporaryMailError,
    parse_smtp_url,
    write_preview,
)
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.tokens import DEFAULT_SECRET, make_unsubscribe_token, read_unsubscribe_token
from horizon_match.translations import choose_language
from models.tables import (
    Call,
    ConsortiumSuggestion,
    Delivery,
    Match,
    Member,
    Organisation,
    OutboxMessage,
)

PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
CLAIMED = (PENDING, SENT)  # items in these states are never composed again
MATCH, REMINDER, CONSORTIUM = "match", "reminder", "consortium"
REMINDER_DAYS = 14  # a call is "closing soon" this many days before its deadline
REMINDER_AFTER_DAYS = 6  # ... and is recalled only to members who got it at least this long ago
TEAMS_PER_CALL = 3
KEEP_BODIES = timedelta(days=56)
_CHUNK = 500


@dataclass
class Composed:
    member_id: str
    kind: str  # digest | consortium
    message: EmailMessage
    items: list[tuple[int, str]]  # (call id, delivery kind)


@dataclass
class SendReport:
    as_of: date
    dry_run: bool = False
    digests: int = 0  # digest messages composed by this call
    consortium_messages: int = 0
    match_items: int = 0
    reminder_items: int = 0
    sent: int = 0
    failed: int = 0
    left_pending: int = 0
    cancelled: int = 0
    members_unsubscribed: int = 0
    members_without_email: int = 0
    previews: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each, for the staff
    error: str | None = None  # why sending stopped early (the messages stay pending)
    mail_server: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.left_pending == 0


def check_mail_settings(settings: Settings) -> None:
    """Refuse to start sending real email with settings that cannot work or are unsafe."""
    if not settings.smtp_url:
        raise ConfigError(
            "no mail server is configured; set HORIZON_MATCH_SMTP_URL "
            "(e.g. smtp://user:password@mail.example.org:587?starttls=1), "
            "or preview the messages with --dry-run DIR"
        )
    parse_smtp_url(settings.smtp_url)
    if settings.secret == DEFAULT_SECRET:
        raise ConfigError(
            "HORIZON_MATCH_SECRET is not set; unsubscribe links are signed with it, so set it to "
            "a long random string (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            " and keep it: changing it invalidates the links already sent"
        )
    if "@" not in address_of(settings.sender):
        raise ConfigError(
            f"the sender {settings.sender!r} has no email address; set HORIZON_MATCH_SENDER, "
            "e.g. 'Club staff <calls@club.example.org>'"
        )


def _clean_emails(emails: object) -> tuple[str, ...]:
    if not isinstance(emails, list):
        return ()
    seen: dict[str, None] = {}
    for e in emails:
        if isinstance(e, str) and "@" in e.strip():
            seen.setdefault(e.strip(), None)
    return tuple(seen)


def _chunks(values: Sequence[int], size: int = _CHUNK) -> Iterable[Sequence[int]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _call_summary(call: Call) -> CallSummary:
    deadlines = []
    for d in call.deadlines or []:
        try:
            at = datetime.fromisoformat(str(d["at"]))
        except (KeyError, TypeError, ValueError):
            continue
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
        deadlines.append(Deadline(at=at, stage=int(d.get("stage") or 1)))
    if not deadlines and call.next_deadline is not None:
        deadlines.append(Deadline(at=call.next_deadline, stage=1))
    return CallSummary(
        call_id=call.id,
        identifier=call.identifier,
        title=call.title,
        programme=call.programme,
        type_of_action=call.type_of_action,
        budget=call.budget,
        deadlines=tuple(sorted(deadlines, key=lambda d: (d.at, d.stage))),
        url=call.url,
    )


def _is_open(call: Call, summary: CallSummary, as_of: date) -> bool:
    """Worth mailing: still on the portal and not past its last deadline."""
    if call.missing_since is not None or (call.status or "").lower() == "closed":
        return False
    return not summary.deadlines or summary.next_deadline(as_of) is not None


class _World:
    """What composing needs, read once: members, matches, teams, calls, claimed items."""

    def __init__(
        self,
        s: Session,
        *,
        as_of: date,
        reminder_days: int,
        match_run_id: int | None,
        consortia_run_id: int | None,
    ) -> None:
        self.as_of = as_of
        self.members = {m.id: m for m in s.scalars(select(Member).order_by(Member.id))}

        if match_run_id is not None:
            match_rows = s.scalars(select(Match).where(Match.run_id == match_run_id)).all()
        else:
            latest = (
                select(Match.member_id, func.max(Match.run_id).label("run_id"))
                .group_by(Match.member_id)
                .subquery()
            )
            match_rows = s.scalars(
                select(Match).join(
                    latest,
                    and_(Match.member_id == latest.c.member_id, Match.run_id == latest.c.run_id),
                )
            ).all()
        self.matches: dict[str, list[Match]] = defaultdict(list)
        for m in match_rows:
            self.matches[m.member_id].append(m)
        for rows in self.matches.values():
            rows.sort(key=lambda m: (-m.score, m.rank))

        if consortia_run_id is not None:
            sugg_query = select(ConsortiumSuggestion).where(
                ConsortiumSuggestion.run_id == consortia_run_id
            )
        else:
            latest_s = (
                select(
                    ConsortiumSuggestion.call_id,
                    func.max(ConsortiumSuggestion.run_id).label("run_id"),
                )
                .group_by(ConsortiumSuggestion.call_id)
                .subquery()
            )
            sugg_query = select(ConsortiumSuggestion).join(
                latest_s,
                and_(
                    ConsortiumSuggestion.call_id == latest_s.c.call_id,
                    ConsortiumSuggestion.run_id == latest_s.c.run_id,
                ),
            )
        suggestions = s.scalars(
            sugg_query.options(selectinload(ConsortiumSuggestion.partners))
        ).all()
        self.suggestions: dict[int, list[ConsortiumSuggestion]] = defaultdict(list)
        for sg in suggestions:
            self.suggestions[sg.call_id].append(sg)
        self.led: dict[str, dict[int, list[ConsortiumSuggestion]]] = defaultdict(dict)
        for call_id, rows in self.suggestions.items():
            rows.sort(key=lambda sg: sg.rank)
            for sg in rows:
                if sg.lead_member_id:
                    self.led[sg.lead_member_id].setdefault(call_id, []).append(sg)
        org_ids = sorted({p.organisation_id for sg in suggestions for p in sg.partners})
        self.organisations: dict[int, Organisation] = {}
        for chunk in _chunks(org_ids):
            for org in s.scalars(select(Organisation).where(Organisation.id.in_(chunk))):
                self.organisations[org.id] = org

        # reminders: calls sent as matches in an earlier week whose next deadline is near
        start = datetime.combine(as_of, time.min)
        end = datetime.combine(as_of + timedelta(days=reminder_days), time.max)
        sent_before = as_of - timedelta(days=REMINDER_AFTER_DAYS)
        self.reminder_candidates: dict[str, list[int]] = defaultdict(list)
        for member_id, call_id in s.execute(
            select(Delivery.member_id, Delivery.call_id)
            .join(Call, Call.id == Delivery.call_id)
            .where(
                Delivery.kind == MATCH,
                Delivery.status == SENT,
                or_(Delivery.as_of.is_(None), Delivery.as_of <= sent_before),
                Call.next_deadline >= start,
                Call.next_deadline <= end,
            )
            .order_by(Call.next_deadline, Call.id)
        ):
            self.reminder_candidates[member_id].append(call_id)

        call_ids = sorted(
            {m.call_id for m in match_rows}
            | {sg.call_id for sg in suggestions if sg.lead_member_id}
            | {c for cs in self.reminder_candidates.values() for c in cs}
        )
        self.calls: dict[int, Call] = {}
        self.deliveries: dict[tuple[str, int, str], Delivery] = {}
        for chunk in _chunks(call_ids):
            for call in s.scalars(select(Call).where(Call.id.in_(chunk))):
                self.calls[call.id] = call
            for d in s.scalars(select(Delivery).where(Delivery.call_id.in_(chunk))):
                self.deliveries[(d.member_id, d.call_id, d.kind)] = d
        self.summaries = {cid: _call_summary(c) for cid, c in self.calls.items()}

    def claimed(self, member_id: str, call_id: int, kind: str) -> bool:
        d = self.deliveries.get((member_id, call_id, kind))
        return d is not None and d.status in CLAIMED

    def open_call(self, call_id: int) -> CallSummary | None:
        call = self.calls.get(call_id)
        if call is None:
            return None
        summary = self.summaries[call_id]
        return summary if _is_open(call, summary, self.as_of) else None

    def team(self, sg: ConsortiumSuggestion) -> Team:
        partners = []
        for p in sg.partners:
            org = self.organisations.get(p.organisation_id)
            member = self.members.get(p.member_id) if p.member_id else None
            partners.append(
                Partner(
                    name=member.name if member else (org.name if org else "?"),
                    role=p.role,
                    country=org.country if org else None,
                    organisation_type=org.organisation_type if org else None,
                    member_id=p.member_id,
                    aspects=tuple(str(a) for a in (p.aspects or []) if a),
                    reasons=tuple(str(r) for r in (getattr(p, "reasons", None) or []) if r),
                )
            )
        return Team(
            rank=sg.rank,
            partners=tuple(partners),
            eligible=bool(sg.eligible),
            missing=tuple(str(m) for m in (sg.missing or []) if m),
            lead_member_id=sg.lead_member_id,
        )

    def teams_with(self, member_id: str, call_id: int) -> tuple[Team, ...]:
        found = [
            self.team(sg)
            for sg in self.suggestions.get(call_id, [])
            if any(p.member_id == member_id for p in sg.partners)
        ]
        return tuple(found[:TEAMS_PER_CALL])

    def teams_led_by(self, member_id: str) -> list[tuple[int, tuple[Team, ...]]]:
        return [
            (call_id, tuple(self.team(sg) for sg in rows[:TEAMS_PER_CALL]))
            for call_id, rows in sorted(self.led.get(member_id, {}).items())
        ]


def _deadline_key(call: CallSummary, as_of: date) -> datetime:
    nxt = call.next_deadline(as_of)
    return nxt.at if nxt else datetime.max


def _message_id(kind: str, member_id: str, now: datetime, domain: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9]", "", member_id)[:30] or "member"
    return f"<hm.{now:%Y%m%d}.{kind}.{safe}.{uuid.uuid4().hex[:16]}@{domain}>"


def compose(
    world: _World,
    settings: Settings,
    report: SendReport,
    *,
    now: datetime,
) -> list[Composed]:
    """Build every due message from what `world` read; pure apart from reading templates."""
    as_of = world.as_of
    domain = domain_of(settings.sender)
    composed: list[Composed] = []
    for member in world.members.values():
        if member.unsubscribed_at is not None:
            report.members_unsubscribed += 1
            continue
        emails = _clean_emails(member.emails)
        if not emails:
            report.members_without_email += 1
            continue
        recipient = Recipient(
            member_id=member.id,
            name=member.name,
            emails=emails,
            language=choose_language(member.language, member.preferences),
        )

        def envelope(kind: str, member_id: str = member.id) -> Envelope:
            return Envelope(
                sender=settings.sender,
                reply_to=settings.reply_to,
                message_id=_message_id(kind, member_id, now, domain),
                unsubscribe_token=make_unsubscribe_token(settings.secret, member_id),
                public_url=settings.public_url,
                now=now,
            )

        items: list[MatchItem] = []
        for m in world.matches.get(member.id, []):
            summary = world.open_call(m.call_id)
            if summary is None or world.claimed(member.id, m.call_id, MATCH):
                continue
            items.append(
                MatchItem(
                    call=summary,
                    score=m.score,
                    reason=reason_from_explanation(m.explanation, recipient.language),
                    teams=world.teams_with(member.id, m.call_id),
                )
            )
        reminders = []
        for call_id in world.reminder_candidates.get(member.id, []):
            summary = world.open_call(call_id)
            if summary is not None and not world.claimed(member.id, call_id, REMINDER):
                reminders.append(summary)
        if items or reminders:
            digest = Digest(recipient, as_of, tuple(items), tuple(reminders))
            composed.append(
                Composed(
                    member.id,
                    "digest",
                    build_digest(digest, envelope("digest")),
                    [(i.call.call_id, MATCH) for i in items]
                    + [(c.call_id, REMINDER) for c in reminders],
                )
            )
            report.digests += 1
            report.match_items += len(items)
            report.reminder_items += len(reminders)

        led = []
        for call_id, teams in world.teams_led_by(member.id):
            summary = world.open_call(call_id)
            if summary is not None and not world.claimed(member.id, call_id, CONSORTIUM):
                led.append(LeadTeams(summary, teams))
        if led:
            led.sort(key=lambda lt: _deadline_key(lt.call, as_of))
            notice = ConsortiumNotice(recipient, as_of, tuple(led))
            composed.append(
                Composed(
                    member.id,
                    "consortium",
                    build_consortium_message(notice, envelope("consortium")),
                    [(lt.call.call_id, CONSORTIUM) for lt in led],
                )
            )
            report.consortium_messages += 1
    return composed


def _raw(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=policy.SMTP)


def _persist(
    s: Session, world: _World, composed: list[Composed], run_id: int | None, now: datetime
) -> None:
    for c in composed:
        message_id = str(c.message["Message-ID"])
        s.add(
            OutboxMessage(
                message_id=message_id,
                member_id=c.member_id,
                kind=c.kind,
                run_id=run_id,
                recipients=recipients_of(c.message),
                subject=str(c.message["Subject"]),
                body=_raw(c.message),
                status=PENDING,
                attempts=0,
                created_at=now,
            )
        )
        for call_id, kind in c.items:
            row = world.deliveries.get((c.member_id, call_id, kind))
            if row is None:
                s.add(
                    Delivery(
                        member_id=c.member_id, call_id=call_id, kind=kind, run_id=run_id,
                        as_of=world.as_of, status=PENDING, message_id=message_id, attempts=0,
                    )
                )
            else:  # failed or cancelled before: due again, in this new message
                row.status, row.message_id, row.run_id = PENDING, message_id, run_id
                row.as_of = world.as_of
                row.error, row.sent_at = None, None


def _preview_name(index: int, kind: str, member_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", member_id)[:60]
    return f"{index:03d}-{safe}-{kind}"


def send_digests(
    db: Database,
    settings: Settings,
    *,
    as_of: date | None = None,
    run_id: int | None = None,
    match_run_id: int | None = None,
    consortia_run_id: int | None = None,
    dry_run_dir: Path | None = None,
    mailer: Mailer | None = None,
    now: datetime | None = None,
    reminder_days: int = REMINDER_DAYS,
    progress: Progress = NULL_PROGRESS,
) -> SendReport:
    """Compose what is due and send every pending message (or, with `dry_run_dir`, write
    each as .eml and .html there and record nothing).

    `match_run_id` / `consortia_run_id` restrict to one run's matches / teams (the weekly job
    passes its own); by default each member's latest matches and each call's latest teams.
    Raises ConfigError before doing anything when real sending is not configured.
    """
    now = now or utcnow()
    as_of = as_of or now.date()
    report = SendReport(as_of=as_of, dry_run=dry_run_dir is not None)
    if dry_run_dir is None and mailer is None:
        check_mail_settings(settings)
    with db.session() as s:
        world = _World(
            s, as_of=as_of, reminder_days=reminder_days, match_run_id=match_run_id,
            consortia_run_id=consortia_run_id,
        )
        composed = compose(world, settings, report, now=now)
        if dry_run_dir is not None:
            pending = s.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == PENDING)
                .order_by(OutboxMessage.id)
            ).all()
            index = 0
            for row in pending:
                index += 1
                report.previews += write_preview(
                    dry_run_dir, _preview_name(index, row.kind, row.member_id), row.body or b""
                )
            for c in composed:
                index += 1
                report.previews += write_preview(
                    dry_run_dir, _preview_name(index, c.kind, c.member_id), _raw(c.message)
                )
            s.rollback()
            return report
        _persist(s, world, composed, run_id, now)

    if mailer is None:
        config = parse_smtp_url(settings.smtp_url or "")
        report.mail_server = config.describe()
        with SmtpMailer(config) as smtp:
            _deliver(db, settings, smtp, report, progress)
    else:
        _deliver(db, settings, mailer, report, progress)
    _prune_bodies(db, utcnow())
    return report


def _mark(
    db: Database,
    outbox_id: int,
    status: str,
    *,
    error: str | None = None,
    count_attempt: bool = True,
) -> None:
    when = utcnow()
    with db.session() as s:
        row = s.get(OutboxMessage, outbox_id)
        if row is None:
            return
        row.status = status
        row.error = error
        if count_attempt:
            row.attempts += 1
        if status == SENT:
            row.sent_at = when
        values: dict[str, object] = {"status": status, "error": error}
        if count_attempt:
            values["attempts"] = Delivery.attempts + 1
        if status == SENT:
            values["sent_at"] = when
        s.execute(update(Delivery).where(Delivery.message_id == row.message_id).values(**values))


def _deliver(
    db: Database, settings: Settings, mailer: Mailer, report: SendReport, progress: Progress
) -> None:
    with db.session() as s:
        pending = s.execute(
            select(OutboxMessage.id, OutboxMessage.member_id, OutboxMessage.recipients)
            .where(OutboxMessage.status == PENDING)
            .order_by(OutboxMessage.id)
        ).all()
    envelope_from = address_of(settings.sender)
    progress.start("sending emails", len(pending))
    try:
        for i, (outbox_id, member_id, recipients) in enumerate(pending):
            with db.session() as s:
                member = s.get(Member, member_id)
                body = s.scalar(select(OutboxMessage.body).where(OutboxMessage.id == outbox_id))
                gone = member is None or member.unsubscribed_at is not None
            who = f"{member_id} <{', '.join(recipients)}>"
            if gone or not body:
                _mark(db, outbox_id, CANCELLED, error="member unsubscribed", count_attempt=False)
                report.cancelled += 1
                progress.advance()
                continue
            try:
                refused = mailer.send(body, envelope_from=envelope_from, recipients=recipients)
            except PermanentMailError as exc:
                _mark(db, outbox_id, FAILED, error=str(exc))
                report.failed += 1
                report.problems.append(f"{who}: {exc}")
            except TemporaryMailError as exc:
                _mark(db, outbox_id, PENDING, error=str(exc))
                if exc.server_wide:
                    report.left_pending += len(pending) - i
                    report.error = (
                        f"the mail server is unavailable ({exc}); {len(pending) - i} message(s) "
                        "stay in the outbox and go out with the next `horizon-match run` or "
                        "`horizon-match digest send`"
                    )
                    return
                report.left_pending += 1
                report.problems.append(f"{who}: deferred, will be retried: {exc}")
            except MailError as exc:
                report.left_pending += len(pending) - i
                report.error = (
                    f"{exc}; {len(pending) - i} message(s) stay in the outbox until it is fixed"
                )
                return
            else:
                _mark(db, outbox_id, SENT)
                report.sent += 1
                for addr, reason in refused.items():
                    report.problems.append(f"{member_id} <{addr}>: refused ({reason})")
            progress.advance()
    finally:
        progress.finish()


def _prune_bodies(db: Database, now: datetime) -> None:
    """Sent messages keep their bytes for some weeks (to check what went out), then drop them."""
    with db.session() as s:
        s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == SENT,
                OutboxMessage.sent_at < now - KEEP_BODIES,
                OutboxMessage.body.is_not(None),
            )
            .values(body=None)
        )


@dataclass
class Unsubscribed:
    member_id: str
    name: str
    already: bool  # was unsubscribed before
    cancelled: int  # pending messages that will now not be sent


def unsubscribe_member(
    db: Database, settings: Settings, token: str, *, now: datetime | None = None
) -> Unsubscribed:
    """Stop all email to the member a signed token names (`members unsubscribe TOKEN`)."""
    member_id = read_unsubscribe_token(settings.secret, token)
    with db.session() as s:
        member = s.get(Member, member_id)
        if member is None:
            raise NotFoundError(
                f"the token is valid but member {member_id!r} is no longer in the database; "
                "nothing to do"
            )
        already = member.unsubscribed_at is not None
        if not already:
            member.unsubscribed_at = now or utcnow()
        pending = s.scalars(
            select(OutboxMessage).where(
                OutboxMessage.member_id == member_id, OutboxMessage.status == PENDING
            )
        ).all()
        for row in pending:
            row.status, row.error = CANCELLED, "member unsubscribed"
            s.execute(
                update(Delivery)
                .where(Delivery.message_id == row.message_id)
                .values(status=CANCELLED, error="member unsubscribed")
            )
        return Unsubscribed(member_id, member.name, already, len(pending))
