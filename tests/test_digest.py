"""The pure message builders: records in, EmailMessage out (no database, no network)."""

from __future__ import annotations

from datetime import date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

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
    build_consortium_message,
    build_digest,
    build_ics,
    event_uid,
    plain,
    portal_link,
    reason_from_explanation,
)
from horizon_match.errors import InputError
from horizon_match.tokens import make_unsubscribe_token, read_unsubscribe_token
from horizon_match.translations import choose_language, format_money

AS_OF = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 6, 30)


def _call(n: int, title: str = "Smart grids", deadlines: tuple[Deadline, ...] | None = None,
          budget: float | None = 4_500_000.0) -> CallSummary:
    return CallSummary(
        call_id=n,
        identifier=f"HORIZON-CL5-2026-D3-01-{n:02d}",
        title=title,
        programme="HORIZON",
        type_of_action="HORIZON-RIA",
        budget=budget,
        deadlines=deadlines if deadlines is not None else (Deadline(datetime(2026, 4, 15, 15)),),
    )


def _envelope(public_url: str | None = "https://calls.club.example.org") -> Envelope:
    return Envelope(
        sender="Club calls <calls@club.example.org>",
        reply_to="staff@club.example.org",
        message_id="<hm.test.1@club.example.org>",
        unsubscribe_token=make_unsubscribe_token("s3cret", "acme"),
        public_url=public_url,
        now=NOW,
    )


TEAM = Team(
    rank=1,
    partners=(
        Partner("ACME Robotics", "coordinator", "IT", "company", "acme", ("control software",)),
        Partner("Università di Genova", "partner", "IT", "university", None, ("testing",)),
        Partner("TU Delft", "partner", "NL", "university", reasons=("worked with ACME before",)),
    ),
    eligible=True,
    missing=("a public body as end user",),
    lead_member_id="acme",
)


def _digest(lang: str = "en", **kw: object) -> Digest:
    matches = (
        MatchItem(_call(1, "Grid storage"), 0.81, "batteries, grid balancing", (TEAM,)),
        MatchItem(_call(2, "Hydrogen valleys"), 0.64, "electrolysers"),
    )
    base: dict[str, object] = {
        "recipient": Recipient("acme", "ACME Robotics", ("a@acme.example", "b@acme.example"), lang),
        "as_of": AS_OF,
        "matches": matches,
        "reminders": (_call(9, "Offshore wind", (Deadline(datetime(2026, 3, 10, 16)),)),),
    }
    base.update(kw)
    return Digest(**base)  # type: ignore[arg-type]


def _reparse(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_digest_has_both_parts_calendar_and_list_headers() -> None:
    msg = _reparse(build_digest(_digest(), _envelope()))
    assert msg["To"].addresses[0].addr_spec == "a@acme.example"
    assert len(msg["To"].addresses) == 2
    assert msg["Message-ID"] == "<hm.test.1@club.example.org>"
    assert msg["Reply-To"] == "staff@club.example.org"
    assert msg["Subject"] == "2 new EU calls for ACME Robotics"
    unsub = msg["List-Unsubscribe"]
    token = make_unsubscribe_token("s3cret", "acme")
    assert f"<https://calls.club.example.org/unsubscribe?token={token}>" in unsub
    assert "mailto:staff@club.example.org?subject=unsubscribe%20" in unsub
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    # best first, with every field the member needs
    assert text.index("Grid storage") < text.index("Hydrogen valleys")
    for needle in ("HORIZON-RIA", "EUR 4,500,000", "15 April 2026", "44 days left",
                   "batteries, grid balancing", "topic-details/HORIZON-CL5-2026-D3-01-01",
                   "TU Delft", "coordinator", "ACME Robotics (you)", "a public body as end user",
                   "Closing soon", "Offshore wind", "8 days left",
                   "TU Delft, partner, NL, university; worked with ACME before",
                   "ACME Robotics (you), coordinator, IT, company; covers: control software"):
        assert needle in text, needle
    assert "Università di Genova" in html and "TU Delft" in html
    assert "44 days left" in html

    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["deadlines.ics"]
    ics = attachments[0].get_content()
    assert ics.count("BEGIN:VEVENT") == 3  # two matches and one reminder
    assert "UID:HORIZON-CL5-2026-D3-01-01.stage1@horizon-match" in ics


def test_without_https_endpoint_there_is_no_one_click_header() -> None:
    msg = build_digest(_digest(), _envelope(public_url=None))
    assert msg["List-Unsubscribe"].startswith("<mailto:staff@club.example.org?subject=")
    assert msg["List-Unsubscribe-Post"] is None
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "reply with the subject: unsubscribe " + make_unsubscribe_token("s3cret", "acme") in text


def test_italian_member_gets_italian_fixed_text() -> None:
    msg = build_digest(_digest("it"), _envelope())
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert msg["Subject"] == "2 nuovi bandi UE per ACME Robotics"
    for needle in ("Buongiorno ACME Robotics", "Scadenza: 15 aprile 2026", "mancano 44 giorni",
                   "4.500.000 EUR", "Tipo di azione", "coordinatore", "In scadenza", "(voi)",
                   "IT, impresa", "IT, università"):
        assert needle in text, needle
    assert "days left" not in text and ", university" not in text


def test_html_in_call_texts_never_reaches_the_html_part_as_markup() -> None:
    evil = _call(3, '<script>alert("x")</script><img src=x onerror=alert(1)>Bold &amp; <b>new</b>')
    partner = Partner('<a href="http://evil">Evil</a> Corp', "partner", "IT")
    team = Team(1, (partner,), missing=("<iframe src=x></iframe>gap",))
    digest = _digest(matches=(MatchItem(evil, 0.9, "<i>reason</i> & more", (team,)),), reminders=())
    msg = _reparse(build_digest(digest, _envelope()))
    html = msg.get_body(preferencelist=("html",)).get_content()
    text = msg.get_body(preferencelist=("plain",)).get_content()
    for bad in ("<script", "<img", "onerror", "<iframe", 'href="http://evil"', "<b>new", "<i>"):
        assert bad not in html, bad
    assert "Bold &amp; new" in html  # the entity decoded once, then escaped for HTML
    assert "reason &amp; more" in html
    assert "Bold & new" in text and "<b>" not in text
    assert "Evil Corp" in text


def test_header_injection_through_names_is_impossible() -> None:
    recipient = Recipient("x", "Evil\r\nBcc: victim@example.org", ("x@example.org",))
    msg = _reparse(build_digest(_digest(recipient=recipient), _envelope()))
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"]


def test_reminders_only_digest_has_its_own_subject() -> None:
    msg = build_digest(_digest(matches=()), _envelope())
    assert msg["Subject"] == "EU call deadlines approaching for ACME Robotics"
    assert "no new calls fit your profile" in msg.get_body(("plain",)).get_content()


def test_multi_stage_deadlines_and_missing_data() -> None:
    two_stage = _call(4, "Two stages", (Deadline(datetime(2026, 3, 1, 16), 1),
                                        Deadline(datetime(2026, 5, 20, 16), 2),
                                        Deadline(datetime(2026, 9, 1, 16), 3)), budget=None)
    undated = _call(5, "Forthcoming", ())
    digest = _digest(matches=(MatchItem(two_stage, 0.5), MatchItem(undated, 0.4)), reminders=())
    text = build_digest(digest, _envelope()).get_body(("plain",)).get_content()
    assert "20 May 2026 (stage 2) (79 days left)" in text  # stage 1 is past on as_of
    assert "1 September 2026 (stage 3)" in text
    assert "no deadline published yet" in text
    assert "Budget: not given" in text


def test_ics_uids_are_stable_and_lines_folded() -> None:
    call = _call(7, "A very long title " * 10)
    first = build_ics([call], as_of=AS_OF, now=NOW)
    later = build_ics([call], as_of=AS_OF, now=datetime(2026, 3, 9, 6, 30))
    uid = event_uid(call.identifier, 1)
    assert f"UID:{uid}" in first and f"UID:{uid}" in later
    seq = [int(line.split(":")[1]) for line in first.split("\r\n") if line.startswith("SEQUENCE")]
    seq_later = [int(x.split(":")[1]) for x in later.split("\r\n") if x.startswith("SEQUENCE")]
    assert seq_later[0] > seq[0]  # a re-import replaces the older copy
    assert all(len(line.encode()) <= 75 for line in first.split("\r\n"))
    assert first.endswith("END:VCALENDAR\r\n")
    assert "DTEND:20260415T150000Z" in first
    # a past deadline is not put in the calendar
    assert "BEGIN:VEVENT" not in build_ics([call], as_of=date(2026, 5, 1), now=NOW)


def test_consortium_message_to_the_lead() -> None:
    notice = ConsortiumNotice(
        Recipient("acme", "ACME Robotics", ("a@acme.example",)), AS_OF,
        (LeadTeams(_call(1, "Grid storage"), (TEAM,)),),
    )
    msg = build_consortium_message(notice, _envelope())
    assert msg["Subject"] == "ACME Robotics: proposed lead of a team for an EU call"
    text = msg.get_body(("plain",)).get_content()
    assert "Università di Genova" in text and "Still missing: a public body" in text
    assert msg["List-Unsubscribe"]


def test_unsubscribe_token_roundtrip_and_forgery() -> None:
    token = make_unsubscribe_token("s3cret", "acme")
    assert read_unsubscribe_token("s3cret", token) == "acme"
    assert read_unsubscribe_token("s3cret", f"  {token}\n") == "acme"
    forged = make_unsubscribe_token("other", "acme")
    for bad in (forged, token[:-2], "garbage", token.split(".")[0] + ".", ""):
        with pytest.raises(InputError, match="not a valid unsubscribe token"):
            read_unsubscribe_token("s3cret", bad)
    # another member's id with this member's mac
    other = make_unsubscribe_token("s3cret", "beta").split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(InputError):
        read_unsubscribe_token("s3cret", other)


def test_match_reason_is_worded_in_the_recipients_language() -> None:
    """The matcher stores its reason in English and its parts beside it; an Italian digest
    words the reason from the parts (the English line in an Italian email read as a bug)."""
    explanation = {
        "reason": "shared terms: hydrogen, ports; your project \u201cH2PORTS\u201d; "
                  "2 past projects in this destination (CL5/D2)",
        "shared_terms": ["hydrogen", "ports", "fuel cells", "<b>bunkering</b>", "ships"],
        "member_source": "project: H2PORTS",
        "member_passage": "Idrogeno verde nei porti",
        "track_detail": {"projects": 2, "in": "destination", "place": "CL5/D2"},
    }
    assert reason_from_explanation(explanation) == plain(explanation["reason"])
    assert reason_from_explanation(explanation, "it") == (
        "termini in comune: hydrogen, ports, fuel cells, bunkering; "
        "il vostro progetto \u201cH2PORTS\u201d; "
        "2 vostri progetti passati in questa destination (CL5/D2)")
    described = {"shared_terms": [], "member_source": "description",
                 "member_passage": "Start-up genovese che progetta veicoli subacquei autonomi " * 3,
                 "track_detail": {"projects": 1, "in": "part", "place": "CL5"}}
    line = reason_from_explanation(described, "it")
    assert line.startswith("la vostra descrizione: \u201cStart-up genovese")
    assert line.endswith("\u2026\u201d; 1 vostro progetto passato in CL5")
    assert reason_from_explanation({"member_source": "keywords", "member_passage": "ROV"}, "it") == (
        "le vostre parole chiave: \u201cROV\u201d")
    # an explanation without parts keeps its stored line; an unknown language is English
    assert reason_from_explanation({"reason": "robotics"}, "it") == "robotics"
    assert reason_from_explanation(explanation, "xx") == plain(explanation["reason"])


def test_team_reasons_are_worded_in_the_recipients_language() -> None:
    from horizon_match.digest import team_reason

    cases = {
        "club member leading the team; 3 EU projects, 2 as coordinator":
            "socio del club alla guida del team; 3 progetti UE, 2 come coordinatore",
        "leads the team": "guida il team",
        "club member": "socio del club",
        "1 EU project": "1 progetto UE",
        "adds a partner from EL": "aggiunge un partner da EL",
        # names are kept as they are, "and" included
        "worked before with SCIENCE and SOCIETY LAB, UNIGE": "ha già lavorato con SCIENCE and SOCIETY LAB, UNIGE",
        "brings a university or research organisation and an SME":
            "porta un'università o un ente di ricerca e una PMI",
        "covers what the team lacks": "copre ciò che manca al team",
        "a reason teams.py does not write": "a reason teams.py does not write",
    }
    for english, italian in cases.items():
        assert team_reason(english, "it") == italian
        assert team_reason(english, "en") == english


def test_small_helpers() -> None:
    assert plain("\ufeff<p>A&nbsp;&amp;\u200b B</p>") == "A & B"
    assert plain("CO2 < 50 g and > 10 g") == "CO2 < 50 g and > 10 g"
    assert portal_link("X-1", "https://ec.europa.eu/x/portal/screen/opportunities/topic-details/X-1"
                       ).endswith("X-1")
    assert "/topic-details/X-1" in portal_link("X-1", "https://ec.europa.eu/data/X-1.json")
    assert reason_from_explanation({"reason": "<b>robotics</b> expertise"}) == "robotics expertise"
    assert reason_from_explanation({"shared_terms": ["grid", "storage"]}) == "grid, storage"
    long = "We build port robots " * 20
    line = reason_from_explanation({"shared_terms": ["robots"], "member_passage": long})
    assert line.startswith("robots \u2014 \u201cWe build port robots") and line.endswith("...\u201d")
    assert len(line) < 140
    assert reason_from_explanation({}) == ""
    assert choose_language("it", {}) == "it"
    assert choose_language(None, {"languages": ["it", "en"]}) == "it"
    assert choose_language("de", {"languages": ["fr"]}) == "en"
    assert format_money(1234567.4, "it") == "1.234.567 EUR"


def test_calendar_note_only_when_a_calendar_is_attached() -> None:
    undated = _digest(matches=(MatchItem(_call(5, "Forthcoming", ()), 0.4),), reminders=())
    past = _digest(matches=(MatchItem(_call(6, "Gone", (Deadline(datetime(2026, 2, 1, 17)),)),
                                      0.4),), reminders=())
    for digest in (undated, past):
        msg = build_digest(digest, _envelope())
        assert list(msg.iter_attachments()) == []
        for part in ("plain", "html"):
            assert "deadlines.ics" not in msg.get_body((part,)).get_content()
    dated = build_digest(_digest(), _envelope())
    assert [a.get_filename() for a in dated.iter_attachments()] == ["deadlines.ics"]
    for part in ("plain", "html"):
        assert "deadlines.ics" in dated.get_body((part,)).get_content()
    notice = ConsortiumNotice(Recipient("acme", "ACME", ("a@acme.example",)), AS_OF,
                              (LeadTeams(_call(5, "Forthcoming", ()), (TEAM,)),))
    lead = build_consortium_message(notice, _envelope())
    assert list(lead.iter_attachments()) == []
    assert "deadlines.ics" not in lead.get_body(("plain",)).get_content()
    it = build_digest(_digest("it"), _envelope())
    assert "deadlines.ics" in it.get_body(("plain",)).get_content()
