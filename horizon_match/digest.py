"""Building the emails: plain records in, `EmailMessage` out. Pure: no database, no clock, no I/O
beyond reading the templates.

A digest has a plain-text and an HTML part (Jinja2 templates in horizon_match/templates/,
HTML auto-escaped), the deadlines as an .ics attachment with stable UIDs, and the headers a
list mail needs (List-Unsubscribe with a signed token, List-Unsubscribe-Post when there is an
HTTPS endpoint for it).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from functools import cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from horizon_match.translations import (
    STRINGS,
    TEAM_MISSING,
    TEAM_REASON_WORDS,
    TEAM_REASONS,
    format_date,
    format_money,
    reason_line,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
PORTAL_TOPIC_PAGE = (
    "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/"
    "topic-details/{identifier}"
)
ICS_DOMAIN = "horizon-match"
_TAG = re.compile(r"</?[A-Za-z!][^>]*>")
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\x00"), None)


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    member_id: str
    name: str
    emails: tuple[str, ...]
    language: str = "en"  # "en" or "it"


@dataclass(frozen=True)
class Deadline:
    at: datetime  # naive datetimes are UTC
    stage: int = 1


@dataclass(frozen=True)
class CallSummary:
    call_id: int
    identifier: str
    title: str
    programme: str | None = None
    type_of_action: str | None = None
    budget: float | None = None
    deadlines: tuple[Deadline, ...] = ()
    url: str | None = None

    def upcoming(self, as_of: date) -> list[Deadline]:
        return sorted((d for d in self.deadlines if d.at.date() >= as_of), key=lambda d: d.at)

    def next_deadline(self, as_of: date) -> Deadline | None:
        upcoming = self.upcoming(as_of)
        return upcoming[0] if upcoming else None

    @property
    def link(self) -> str:
        return portal_link(self.identifier, self.url)


@dataclass(frozen=True)
class Partner:
    name: str
    role: str  # coordinator | partner
    country: str | None = None
    organisation_type: str | None = None
    member_id: str | None = None
    aspects: tuple[str, ...] = ()  # the parts of the call it covers
    reasons: tuple[str, ...] = ()  # why it is in the team


@dataclass(frozen=True)
class Team:
    rank: int
    partners: tuple[Partner, ...]
    eligible: bool = False
    missing: tuple[str, ...] = ()
    lead_member_id: str | None = None


@dataclass(frozen=True)
class MatchItem:
    call: CallSummary
    score: float
    reason: str = ""
    teams: tuple[Team, ...] = ()  # only teams the recipient is part of


@dataclass(frozen=True)
class Digest:
    recipient: Recipient
    as_of: date
    matches: tuple[MatchItem, ...] = ()  # best first
    reminders: tuple[CallSummary, ...] = ()


@dataclass(frozen=True)
class LeadTeams:
    call: CallSummary
    teams: tuple[Team, ...]


@dataclass(frozen=True)
class ConsortiumNotice:
    """The teams a member is proposed to lead (one message per lead and run)."""

    recipient: Recipient
    as_of: date
    calls: tuple[LeadTeams, ...]


@dataclass(frozen=True)
class Envelope:
    """What a message needs besides its content; `now` is the Date header and ICS DTSTAMP."""

    sender: str
    message_id: str
    unsubscribe_token: str
    now: datetime
    reply_to: str | None = None
    public_url: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)


# --- text helpers --------------------------------------------------------------------------


def plain(value: object) -> str:
    """Text from a portal field that may hold HTML, entities or invisible characters."""
    text = "" if value is None else str(value)
    text = _TAG.sub(" ", _SCRIPT.sub(" ", text))
    text = html.unescape(text).translate(_INVISIBLE)
    return _SPACE.sub(" ", text).strip()


def portal_link(identifier: str, url: str | None) -> str:
    """The human topic page; API or JSON URLs some records carry are no use in an email."""
    if url and url.startswith("https://") and "/portal/screen/" in url:
        return url
    return PORTAL_TOPIC_PAGE.format(identifier=quote(identifier, safe=""))


def reason_from_explanation(explanation: Mapping[str, object] | None, lang: str = "en") -> str:
    """One line from a stored match explanation: the terms member and call share and the
    passage of the member's profile that fits best (or an explicit `reason`). In another
    language than English the line is worded from the explanation's parts."""
    if not explanation:
        return ""
    if lang != "en" and lang in STRINGS:
        local = plain(reason_line(_plain_parts(explanation), STRINGS[lang], _clip))
        if local:
            return local
    for key in ("reason", "summary", "one_line"):
        value = explanation.get(key)
        if isinstance(value, str) and value.strip():
            return plain(value)
    terms = explanation.get("shared_terms")
    words = [plain(t) for t in terms[:6] if isinstance(t, str)] if isinstance(terms, list) else []
    line = ", ".join(w for w in words if w)
    passage = explanation.get("member_passage")
    if isinstance(passage, str) and plain(passage):
        text = plain(passage)
        quoted = text if len(text) <= 110 else text[:107].rsplit(" ", 1)[0] + "..."
        line = f"{line} \u2014 \u201c{quoted}\u201d" if line else f"\u201c{quoted}\u201d"
    return line


def team_reason(reason: str, lang: str) -> str:
    """A partner's reason (worded in English by horizon_match.teams) in `lang`; unchanged
    when it is English or not one of teams.py's sentences. Partner names and countries are
    kept as they are."""
    return _reword(reason, TEAM_REASONS.get(lang, ()), lang)


def team_missing(line: str, lang: str) -> str:
    """What a proposed team still lacks (horizon_match.eligibility / teams, in English) in
    `lang`; unchanged when it is English or not one of their sentences."""
    return _reword(line, TEAM_MISSING.get(lang, ()), lang)


def _reword(text: str, patterns: Iterable[tuple[str, str]], lang: str) -> str:
    words = TEAM_REASON_WORDS.get(lang, {})
    for pattern, wording in patterns:
        found = re.fullmatch(pattern, text)
        if found is None:
            continue
        parts = {k: v or "" for k, v in found.groupdict().items()}
        if parts.get("rest", "").startswith("; "):  # a lead's reason, then its track record
            parts["rest"] = "; " + team_reason(parts["rest"][2:], lang)
        # phrases of the rules and kinds inside the sentence, longest first so that a whole
        # sentence is replaced before a word in it ("SME" in "often SMEs")
        for key in ("rest", "kinds", "note"):
            for english in sorted(words, key=len, reverse=True):
                parts[key] = parts.get(key, "").replace(english, words[english])
        return wording.format(**parts)
    return text


def _plain_parts(explanation: Mapping[str, object]) -> dict[str, object]:
    """The texts of a stored explanation as plain text, each on its own (as every text of a
    message is): markup in one must not run into its neighbours."""
    clean = dict(explanation)
    terms = explanation.get("shared_terms")
    if isinstance(terms, list):
        clean["shared_terms"] = [plain(t) for t in terms if isinstance(t, str)]
    for key in ("member_source", "member_passage"):
        value = explanation.get(key)
        if isinstance(value, str):
            clean[key] = plain(value)
    return clean


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _days_left(deadline: Deadline | None, as_of: date, words: Mapping[str, str]) -> str:
    if deadline is None:
        return words["no_deadline"]
    days = (deadline.at.date() - as_of).days
    if days <= 0:
        return words["today"]
    return words["days_left_one"] if days == 1 else words["days_left_many"].format(n=days)


def _safe_header(text: str) -> str:
    # Header values must be one line; names come from member files.
    return plain(text)[:200]


def _format_address(value: str) -> str:
    name, addr = parseaddr(value)
    if not addr:
        raise ValueError(f"{value!r} is not an email address")
    return str(Address(display_name=_safe_header(name), addr_spec=addr))


def address_of(value: str) -> str:
    """The bare address of 'Name <a@b>' (envelope sender, mailto links)."""
    return parseaddr(value)[1]


def domain_of(value: str) -> str:
    addr = address_of(value)
    return addr.rsplit("@", 1)[1] if "@" in addr else "localhost"


# --- templates -----------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plain"] = plain
    return env


def _render(name: str, context: Mapping[str, object]) -> str:
    return _environment().get_template(name).render(**context)


def _deadline_view(call: CallSummary, as_of: date, lang: str) -> dict[str, object]:
    words = STRINGS[lang]
    nxt = call.next_deadline(as_of)
    upcoming = call.upcoming(as_of)
    label = format_date(nxt.at.date(), lang) if nxt else words["no_deadline"]
    if nxt is not None and len(call.deadlines) > 1:
        label += f" ({words['stage'].format(n=nxt.stage)})"
    return {
        "label": label,
        "days_left": _days_left(nxt, as_of, words) if nxt else "",
        "later": [
            f"{format_date(d.at.date(), lang)} ({words['stage'].format(n=d.stage)})"
            for d in upcoming[1:]
        ],
    }


def _call_view(call: CallSummary, as_of: date, lang: str) -> dict[str, object]:
    words = STRINGS[lang]
    return {
        "identifier": plain(call.identifier),
        "title": plain(call.title),
        "programme": plain(call.programme) or words["not_given"],
        "type_of_action": plain(call.type_of_action) or words["not_given"],
        "budget": format_money(call.budget, lang) if call.budget else words["not_given"],
        "deadline": _deadline_view(call, as_of, lang),
        "link": call.link,
    }


def _team_view(team: Team, recipient: Recipient, lang: str) -> dict[str, object]:
    words = STRINGS[lang]
    partners = []
    for p in team.partners:
        role = words["coordinator"] if p.role == "coordinator" else words["partner"]
        partners.append(
            {
                "name": plain(p.name),
                "role": role,
                "country": plain(p.country),
                "kind": words.get(f"kind_{p.organisation_type}", plain(p.organisation_type)),
                "you": p.member_id is not None and p.member_id == recipient.member_id,
                "aspects": [plain(a) for a in p.aspects if plain(a)],
                "reasons": [team_reason(plain(r), lang) for r in p.reasons if plain(r)],
            }
        )
    return {
        "title": words["team"].format(rank=team.rank),
        "partners": partners,
        "eligible": team.eligible,
        "missing": [team_missing(plain(m), lang) for m in team.missing if plain(m)],
    }


def _unsubscribe(envelope: Envelope) -> tuple[str | None, str]:
    """(HTTPS one-click URL or None, mailto URL)."""
    token = envelope.unsubscribe_token
    target = address_of(envelope.reply_to or envelope.sender)
    mailto = f"mailto:{target}?subject={quote('unsubscribe ' + token)}"
    https = None
    if envelope.public_url and envelope.public_url.startswith("https://"):
        https = f"{envelope.public_url.rstrip('/')}/unsubscribe?token={quote(token)}"
    return https, mailto


def _common_context(recipient: Recipient, envelope: Envelope, lang: str) -> dict[str, object]:
    https, mailto = _unsubscribe(envelope)
    words = STRINGS[lang]
    return {
        "w": words,
        "lang": lang,
        "name": plain(recipient.name),
        "greeting": words["greeting"].format(name=plain(recipient.name)),
        "footer": words["footer"].format(name=plain(recipient.name)),
        "unsubscribe_url": https or mailto,
        "unsubscribe_text": words["unsubscribe_mail"].format(token=envelope.unsubscribe_token),
        "has_https_unsubscribe": https is not None,
    }


# --- messages ------------------------------------------------------------------------------


def _new_message(
    recipient: Recipient, envelope: Envelope, subject: str, list_id: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _format_address(envelope.sender)
    msg["To"] = ", ".join(
        str(Address(display_name=_safe_header(recipient.name), addr_spec=a))
        for a in recipient.emails
    )
    if envelope.reply_to:
        msg["Reply-To"] = _format_address(envelope.reply_to)
    msg["Subject"] = _safe_header(subject)
    now = envelope.now if envelope.now.tzinfo else envelope.now.replace(tzinfo=UTC)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = envelope.message_id
    msg["List-Id"] = f"<{list_id}.{domain_of(envelope.sender)}>"
    https, mailto = _unsubscribe(envelope)
    msg["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in (https, mailto) if u)
    if https:
        # RFC 8058 one-click needs an HTTPS URI in List-Unsubscribe; without one, no header.
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    for key, value in envelope.extra_headers.items():
        msg[key] = _safe_header(value)
    return msg


def _digest_subject(digest: Digest, lang: str) -> str:
    words = STRINGS[lang]
    name = plain(digest.recipient.name)
    n = len(digest.matches)
    if n == 0:
        return words["subject_reminders"].format(name=name)
    return (words["subject_one"] if n == 1 else words["subject_many"]).format(n=n, name=name)


def build_digest(digest: Digest, envelope: Envelope) -> EmailMessage:
    """The weekly email of one member: new matches best first, their teams, reminders, .ics."""
    lang = digest.recipient.language if digest.recipient.language in STRINGS else "en"
    words = STRINGS[lang]
    context = _common_context(digest.recipient, envelope, lang)
    context["intro"] = (
        words["intro"].format(date=format_date(digest.as_of, lang))
        if digest.matches
        else words["intro_none"]
    )
    context["matches"] = [
        {
            **_call_view(m.call, digest.as_of, lang),
            "reason": plain(m.reason),
            "teams": [_team_view(t, digest.recipient, lang) for t in m.teams],
        }
        for m in digest.matches
    ]
    context["reminders"] = [_call_view(c, digest.as_of, lang) for c in digest.reminders]
    calls = [m.call for m in digest.matches] + list(digest.reminders)
    context["has_calendar"] = _has_calendar(calls, digest.as_of)
    msg = _new_message(digest.recipient, envelope, _digest_subject(digest, lang), "digest")
    msg.set_content(_render("digest.txt.j2", context))
    msg.add_alternative(_render("digest.html.j2", context), subtype="html")
    _attach_calendar(msg, calls, digest.as_of, envelope.now, lang)
    return msg


def build_consortium_message(notice: ConsortiumNotice, envelope: Envelope) -> EmailMessage:
    """To the proposed lead: every team it is proposed to lead, with partners and gaps."""
    lang = notice.recipient.language if notice.recipient.language in STRINGS else "en"
    words = STRINGS[lang]
    name = plain(notice.recipient.name)
    context = _common_context(notice.recipient, envelope, lang)
    context["intro"] = words["consortium_intro"].format(name=name)
    context["calls"] = [
        {
            **_call_view(item.call, notice.as_of, lang),
            "teams": [_team_view(t, notice.recipient, lang) for t in item.teams],
        }
        for item in notice.calls
    ]
    context["has_calendar"] = _has_calendar([c.call for c in notice.calls], notice.as_of)
    n = len(notice.calls)
    subject = (
        words["subject_consortium_one"] if n == 1 else words["subject_consortium_many"]
    ).format(n=n, name=name)
    msg = _new_message(notice.recipient, envelope, subject, "consortia")
    msg.set_content(_render("consortium.txt.j2", context))
    msg.add_alternative(_render("consortium.html.j2", context), subtype="html")
    _attach_calendar(msg, [c.call for c in notice.calls], notice.as_of, envelope.now, lang)
    return msg


# --- calendar ------------------------------------------------------------------------------


def _ics_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def _ics_fold(line: str) -> Iterable[str]:
    """Lines of at most 75 octets, continuation lines starting with a space (RFC 5545 3.1)."""
    data = line.encode()
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            cut -= 1
        yield data[:cut].decode()
        data = b" " + data[cut:]
        limit = 75
    yield data.decode()


def _ics_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y%m%dT%H%M%SZ")


def event_uid(identifier: str, stage: int) -> str:
    """Stable per topic and stage, so importing a newer file moves the event, never duplicates."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", identifier)
    return f"{safe}.stage{stage}@{ICS_DOMAIN}"


def build_ics(calls: Sequence[CallSummary], *, as_of: date, now: datetime, lang: str = "en") -> str:
    """A VCALENDAR with one event per upcoming deadline (the hour before it)."""
    words = STRINGS[lang if lang in STRINGS else "en"]
    stamp = _ics_time(now)
    # Calendars keep the copy with the higher SEQUENCE; minutes since 2020 only ever grow.
    base = datetime(2020, 1, 1, tzinfo=UTC)
    aware_now = now if now.tzinfo else now.replace(tzinfo=UTC)
    sequence = max(0, int((aware_now - base).total_seconds() // 60))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//horizon-match//call deadlines//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ics_escape(words['calendar_name'])}",
    ]
    seen: set[str] = set()
    for call in calls:
        for deadline in call.upcoming(as_of):
            uid = event_uid(call.identifier, deadline.stage)
            if uid in seen:
                continue
            seen.add(uid)
            title = plain(call.title)
            ident = plain(call.identifier)
            lines += [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                f"DTSTAMP:{stamp}",
                f"SEQUENCE:{sequence}",
                f"DTSTART:{_ics_time(deadline.at - timedelta(hours=1))}",
                f"DTEND:{_ics_time(deadline.at)}",
                "SUMMARY:"
                + _ics_escape(words["event_summary"].format(title=title, identifier=ident)),
                f"DESCRIPTION:{_ics_escape(call.link)}",
                f"URL:{call.link}",
                "TRANSP:TRANSPARENT",
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "TRIGGER:-P7D",
                f"DESCRIPTION:{_ics_escape(words['alarm'].format(identifier=ident))}",
                "END:VALARM",
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return "".join(folded + "\r\n" for line in lines for folded in _ics_fold(line))


def _has_calendar(calls: Sequence[CallSummary], as_of: date) -> bool:
    """Whether the message gets a deadlines.ics (only when some deadline is still ahead)."""
    return any(c.upcoming(as_of) for c in calls)


def _attach_calendar(
    msg: EmailMessage, calls: Sequence[CallSummary], as_of: date, now: datetime, lang: str
) -> None:
    if not _has_calendar(calls, as_of):
        return
    ics = build_ics(calls, as_of=as_of, now=now, lang=lang)
    msg.add_attachment(
        ics.encode(),
        maintype="text",
        subtype="calendar",
        filename="deadlines.ics",
        params={"method": "PUBLISH", "charset": "utf-8"},
    )


def recipients_of(msg: EmailMessage) -> list[str]:
    """The bare To addresses of a built message (the SMTP envelope)."""
    return [addr for _, addr in getaddresses(msg.get_all("To", [])) if addr]
