"""The weekly job end to end: outbox and deliveries against a real SMTP server (aiosmtpd on
loopback), the job lock on SQLite and PostgreSQL, crashes and re-runs, the CLI.

Matches and teams are seeded through the ORM where a test is about sending; the tests of
`run_weekly` run the real stages (with the fake embedder).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time as clock
from collections import Counter
from datetime import date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update
from test_mailer import MailServer, Received, start_server

from cli import main
from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.deliveries import send_digests, unsubscribe_member
from horizon_match.errors import ConfigError, InputError, LockedError
from horizon_match.jobs import send_digests_now
from horizon_match.locks import acquire_lock, lock_holder, utcnow
from horizon_match.tokens import make_unsubscribe_token, read_unsubscribe_token
from models.tables import (
    Call,
    ConsortiumPartner,
    ConsortiumSuggestion,
    Delivery,
    JobLock,
    Match,
    Member,
    Organisation,
    OutboxMessage,
    Run,
)

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 3, 2)
SECRET = "test-secret-0123456789"


# --- seeding -----------------------------------------------------------------------------------

MEMBERS = [
    # id, name, emails, language, country, type
    ("acme", "ACME Robotics", ["ceo@acme.example", "grants@acme.example"], "en", "IT", "company"),
    ("unige", "Università di Genova", ["ricerca@unige.example"], "it", "IT", "university"),
    ("rina", "RINA Consulting", ["eu@rina.example"], None, "IT", "company"),
    ("quiet", "Quiet SME", ["info@quiet.example"], "en", "IT", "company"),  # no matches
    ("nomail", "No Mail Srl", [], "en", "IT", "company"),
    ("gone", "Gone Spa", ["x@gone.example"], "en", "IT", "company"),  # unsubscribed
]


def _member(s, mid, name, emails, lang, country, kind, now) -> Member:  # noqa: ANN001
    org = Organisation(name=name, country=country, organisation_type=kind)
    s.add(org)
    s.flush()
    member = Member(
        id=mid, organisation_id=org.id, name=name, emails=emails, description="",
        keywords=[], preferences={"languages": [lang]} if lang else {}, language=lang,
        created_at=now, updated_at=now,
    )
    s.add(member)
    return member


def _call(s, n: int, title: str, deadline: datetime | None, now: datetime) -> Call:  # noqa: ANN001
    call = Call(
        identifier=f"HORIZON-CL4-2026-TEST-{n:02d}", title=title, programme="HORIZON",
        type_of_action="HORIZON-RIA", budget=3_000_000.0 + n, status="open",
        deadlines=[{"at": deadline.isoformat(), "stage": 1}] if deadline else [],
        next_deadline=deadline, content_hash=f"h{n}", first_seen=now, last_seen=now,
        description="", description_html="", conditions="", keywords=[], extra={},
        url=f"https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/HORIZON-CL4-2026-TEST-{n:02d}",
    )
    s.add(call)
    s.flush()
    return call


def seed(db: Database, *, evil_title: bool = False) -> dict[str, int]:
    """Members, five calls, one matching run with matches and one team per call 1 and 2."""
    now = datetime(2026, 3, 1, 8)
    with db.session() as s:
        members = {m[0]: _member(s, *m, now) for m in MEMBERS}
        members["gone"].unsubscribed_at = now
        title1 = ('<script>alert("x")</script>Robots <b>for</b> ports &amp; logistics'
                  if evil_title else "Robots for ports and logistics")
        calls = {
            1: _call(s, 1, title1, datetime(2026, 4, 15, 15), now),
            2: _call(s, 2, "Digital twins of ships", datetime(2026, 3, 12, 16), now),
            3: _call(s, 3, "Hydrogen in harbours", datetime(2026, 9, 1, 15), now),
            4: _call(s, 4, "Forthcoming call without date", None, now),
            5: _call(s, 5, "Closed already", datetime(2026, 2, 1, 15), now),
        }
        run = Run(kind="match", status="done", started_at=now, finished_at=now, options={},
                  stats={}, errors=[])
        s.add(run)
        s.flush()
        plan = {
            "acme": [(1, 0.9), (2, 0.7), (5, 0.95)],  # call 5 is closed: never mailed
            "unige": [(2, 0.8), (3, 0.6), (4, 0.5)],
            "rina": [(3, 0.75)],
            "nomail": [(1, 0.5)],
            "gone": [(1, 0.5)],
        }
        for mid, items in plan.items():
            for rank, (n, score) in enumerate(sorted(items, key=lambda x: -x[1]), 1):
                s.add(Match(run_id=run.id, member_id=mid, call_id=calls[n].id, score=score,
                            rank=rank, explanation={"reason": f"fits {mid} on call {n}"},
                            flags=[]))
        for n, lead, partners in ((1, "acme", ["unige", "rina"]), (2, "unige", ["acme"])):
            sg = ConsortiumSuggestion(run_id=run.id, call_id=calls[n].id, rank=1, score=0.8,
                                      lead_member_id=lead, eligible=False,
                                      missing=["a partner from another country"])
            s.add(sg)
            s.flush()
            for pos, mid in enumerate([lead, *partners]):
                s.add(ConsortiumPartner(
                    suggestion_id=sg.id, organisation_id=members[mid].organisation_id,
                    member_id=mid, position=pos, role="coordinator" if pos == 0 else "partner",
                    aspects=[f"aspect {pos}"], score=0.5,
                ))
        return {f"call{n}": c.id for n, c in calls.items()} | {"run": run.id}


def settings_for(db: Database, server: MailServer | None, **kw: object) -> Settings:
    base = Settings(
        db_url=db.url, smtp_url=server.url() if server else None, secret=SECRET,
        sender="Club calls <calls@club.example.org>", reply_to="staff@club.example.org",
        public_url="https://calls.club.example.org",
    )
    return base.with_(**kw) if kw else base


def digests(server: MailServer) -> list[Received]:
    return [r for r in server.received if "digest" in (r.message["List-Id"] or "")]


def consortium_mails(server: MailServer) -> list[Received]:
    return [r for r in server.received if "consortia" in (r.message["List-Id"] or "")]


def per_member(received: list[Received]) -> Counter[str]:
    return Counter(r.recipients[0] for r in received)


@pytest.fixture
def server() -> MailServer:
    srv = MailServer()
    controller = start_server(srv)
    yield srv
    srv.release.set()
    controller.stop()


# --- sending -------------------------------------------------------------------------------------


def test_every_member_with_matches_gets_exactly_one_complete_message(
    db: Database, server: MailServer
) -> None:
    ids = seed(db)
    settings = settings_for(db, server)
    report = send_digests(db, settings, as_of=AS_OF)
    assert report.ok and report.sent == 5 and report.failed == 0
    assert (report.digests, report.consortium_messages) == (3, 2)
    assert report.members_unsubscribed == 1 and report.members_without_email == 1

    mails = digests(server)
    assert per_member(mails) == {"ceo@acme.example": 1, "ricerca@unige.example": 1,
                                 "eu@rina.example": 1}
    acme = next(r for r in mails if r.recipients[0] == "ceo@acme.example")
    assert acme.recipients == ["ceo@acme.example", "grants@acme.example"]
    assert acme.sender == "calls@club.example.org"
    msg = acme.message
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert text.index("Robots for ports") < text.index("Digital twins")  # best first
    assert "Closed already" not in text
    assert "fits acme on call 1" in text and "Università di Genova" in text
    assert "Robots for ports" in html
    assert [a.get_filename() for a in msg.iter_attachments()] == ["deadlines.ics"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = msg["List-Unsubscribe"].split("token=")[1].split(">")[0]
    assert read_unsubscribe_token(SECRET, token) == "acme"

    unige = next(r for r in mails if r.recipients[0] == "ricerca@unige.example").message
    assert unige["Subject"] == "3 nuovi bandi UE per Università di Genova"
    assert "no deadline published" not in unige.get_body(("plain",)).get_content()

    leads = per_member(consortium_mails(server))
    assert leads == {"ceo@acme.example": 1, "ricerca@unige.example": 1}

    with db.session() as s:
        rows = s.execute(select(Delivery.member_id, Delivery.kind, Delivery.status,
                                Delivery.message_id)).all()
        outbox = {o.message_id: o for o in s.scalars(select(OutboxMessage))}
    assert {(m, k) for m, k, _, _ in rows} >= {("acme", "match"), ("acme", "consortium")}
    assert all(st == "sent" for _, _, st, _ in rows)
    assert {r.message["Message-ID"] for r in server.received} == set(outbox)
    assert all(mid in outbox for *_, mid in rows)
    assert sum(1 for m, k, _, _ in rows if k == "match") == 2 + 3 + 1
    assert ids


def test_a_second_send_sends_nothing_new(db: Database, server: MailServer) -> None:
    seed(db)
    settings = settings_for(db, server)
    send_digests(db, settings, as_of=AS_OF)
    count = len(server.received)
    again = send_digests(db, settings, as_of=AS_OF)
    assert (again.digests, again.consortium_messages, again.sent) == (0, 0, 0)
    assert len(server.received) == count


def test_connection_dropped_mid_batch_then_rerun_delivers_each_exactly_once(
    db: Database, server: MailServer
) -> None:
    seed(db)
    settings = settings_for(db, server)
    server.drop_after = 2  # two go through, then the server goes away
    first = send_digests(db, settings, as_of=AS_OF)
    assert not first.ok and first.sent == 2 and first.left_pending == 3
    assert "mail server is unavailable" in (first.error or "")
    assert len(server.received) == 2
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.status == "pending")) == 3

    server.recover()
    second = send_digests(db, settings, as_of=AS_OF)
    assert second.ok and second.sent == 3 and second.digests == 0  # only the pending ones
    ids = Counter(r.message["Message-ID"] for r in server.received)
    assert len(ids) == 5 and set(ids.values()) == {1}
    assert per_member(digests(server)) == {"ceo@acme.example": 1, "ricerca@unige.example": 1,
                                           "eu@rina.example": 1}
    assert send_digests(db, settings, as_of=AS_OF).sent == 0


def test_rejected_address_is_reported_and_the_others_still_go(
    db: Database, server: MailServer
) -> None:
    seed(db)
    server.reject["eu@rina.example"] = "550 5.1.1 mailbox unknown"
    settings = settings_for(db, server)
    report = send_digests(db, settings, as_of=AS_OF)
    assert report.failed == 1 and report.sent == 4 and report.ok
    assert any("rina" in p and "550 5.1.1" in p for p in report.problems)
    assert "eu@rina.example" not in per_member(server.received)
    with db.session() as s:
        states = set(s.scalars(select(Delivery.status).where(Delivery.member_id == "rina")))
        assert states == {"failed"}
        s.execute(update(Member).where(Member.id == "rina")
                  .values(emails=["horizon@rina.example"]))
    # the address fixed, the failed items are due again and go out once
    again = send_digests(db, settings, as_of=AS_OF)
    assert again.sent == 1 and again.digests == 1
    assert per_member(server.received)["horizon@rina.example"] == 1
    assert send_digests(db, settings, as_of=AS_OF).sent == 0


def test_one_bad_address_among_several_still_delivers(db: Database, server: MailServer) -> None:
    seed(db)
    server.reject["grants@acme.example"] = "550 5.1.1 no such user"
    report = send_digests(db, settings_for(db, server), as_of=AS_OF)
    assert report.sent == 5
    assert any("grants@acme.example" in p for p in report.problems)
    acme = [r for r in server.received if "ceo@acme.example" in r.recipients]
    assert len(acme) == 2 and all(r.recipients == ["ceo@acme.example"] for r in acme)


def test_html_in_call_texts_is_escaped_in_the_email(db: Database, server: MailServer) -> None:
    seed(db, evil_title=True)
    send_digests(db, settings_for(db, server), as_of=AS_OF)
    for received in server.received:
        html = received.message.get_body(preferencelist=("html",)).get_content()
        assert "<script" not in html and "<b>for</b>" not in html
    acme = digests(server)[0].message
    assert "Robots for ports &amp; logistics" in acme.get_body(("html",)).get_content()


def test_reminders_come_once_when_the_deadline_is_near(db: Database, server: MailServer) -> None:
    ids = seed(db)
    settings = settings_for(db, server)
    send_digests(db, settings, as_of=AS_OF)
    server.received.clear()
    # a week later, call 2 (deadline 12 March) is within the 14-day window
    report = send_digests(db, settings, as_of=AS_OF + timedelta(days=7))
    assert report.reminder_items == 2 and report.match_items == 0  # acme and unige had call 2
    mails = digests(server)
    assert per_member(mails) == {"ceo@acme.example": 1, "ricerca@unige.example": 1}
    acme = next(r for r in mails if r.recipients[0] == "ceo@acme.example").message
    assert acme["Subject"] == "EU call deadlines approaching for ACME Robotics"
    assert "Digital twins of ships" in acme.get_body(("plain",)).get_content()
    assert send_digests(db, settings, as_of=AS_OF + timedelta(days=8)).reminder_items == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.kind == "reminder", Delivery.call_id == ids["call2"])) == 2


def test_dry_run_writes_previews_and_records_nothing(
    db: Database, server: MailServer, tmp_path: Path
) -> None:
    seed(db)
    out = tmp_path / "preview"
    report = send_digests(db, settings_for(db, None), as_of=AS_OF, dry_run_dir=out)
    assert report.dry_run and report.sent == 0
    emls = sorted(p.name for p in out.glob("*.eml"))
    assert len(emls) == 5 and len(list(out.glob("*.html"))) == 5
    assert "001-acme-digest.eml" in emls
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert send_digests(db, settings_for(db, server), as_of=AS_OF).sent == 5


def test_unsubscribe_token_stops_mail_and_cancels_pending(
    db: Database, server: MailServer
) -> None:
    seed(db)
    settings = settings_for(db, server)
    server.drop_after = 0  # nothing gets through: all five stay pending
    send_digests(db, settings, as_of=AS_OF)
    result = unsubscribe_member(db, settings, make_unsubscribe_token(SECRET, "acme"))
    assert not result.already and result.cancelled == 2
    assert unsubscribe_member(db, settings, make_unsubscribe_token(SECRET, "acme")).already
    with pytest.raises(InputError):
        unsubscribe_member(db, settings, make_unsubscribe_token("wrong", "acme"))
    server.recover()
    report = send_digests(db, settings, as_of=AS_OF)
    assert report.sent == 3
    assert "ceo@acme.example" not in per_member(server.received)


def test_real_sending_needs_a_server_and_a_secret(db: Database) -> None:
    seed(db)
    with pytest.raises(ConfigError, match="HORIZON_MATCH_SMTP_URL"):
        send_digests(db, settings_for(db, None), as_of=AS_OF)
    no_secret = settings_for(db, None, smtp_url="smtp://127.0.0.1:25", secret="change-me")
    with pytest.raises(ConfigError, match="HORIZON_MATCH_SECRET"):
        send_digests(db, no_secret, as_of=AS_OF)


# --- the lock ----------------------------------------------------------------------------------


def test_lock_is_exclusive_and_released(db: Database) -> None:
    with acquire_lock(db, "weekly") as held:
        with pytest.raises(LockedError, match="another horizon-match weekly run is in progress"):
            acquire_lock(db, "weekly")
        holder = lock_holder(db, "weekly")
        assert holder is not None and holder.pid == os.getpid() and holder.owner == held.owner
        with acquire_lock(db, "other"):  # another name is another lock
            pass
    assert lock_holder(db, "weekly") is None
    acquire_lock(db, "weekly").release()


def test_lock_heartbeat_moves(db: Database) -> None:
    with acquire_lock(db, "weekly", heartbeat_seconds=0.05):
        first = lock_holder(db, "weekly")
        clock.sleep(0.3)
        later = lock_holder(db, "weekly")
    assert first is not None and later is not None and later.heartbeat_at > first.heartbeat_at


def test_stale_lock_rows_are_taken_over(db: Database) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    import socket

    now = utcnow()
    with db.session() as s:  # left behind by a process on this host that no longer exists
        s.add(JobLock(name="weekly", owner=f"{socket.gethostname()}:{dead_pid}:dead",
                      pid=dead_pid, acquired_at=now, heartbeat_at=now))
    with acquire_lock(db, "weekly") as held:
        assert held.took_over is not None and held.took_over.pid == dead_pid
    with db.session() as s:  # another host's owner, silent for too long
        s.add(JobLock(name="weekly", owner="elsewhere:1:x", pid=1,
                      acquired_at=now - timedelta(hours=2),
                      heartbeat_at=now - timedelta(hours=1)))
    if db.dialect == "postgresql":
        # the advisory lock proves the owner is gone, whatever its heartbeat says
        with acquire_lock(db, "weekly") as held:
            assert held.took_over is not None
    else:
        with acquire_lock(db, "weekly", stale_after=timedelta(minutes=15)) as held:
            assert held.took_over is not None and held.took_over.host == "elsewhere"
        with db.session() as s:  # a live owner elsewhere keeps it
            s.add(JobLock(name="weekly", owner="elsewhere:1:y", pid=1, acquired_at=now,
                          heartbeat_at=now))
        with pytest.raises(LockedError, match="pid 1 on elsewhere"):
            acquire_lock(db, "weekly")


def _holder_script(db_url: str) -> str:
    return textwrap.dedent(f"""
        import sys, time
        from horizon_match.db import Database
        from horizon_match.locks import acquire_lock
        lock = acquire_lock(Database({db_url!r}), "weekly")
        print("locked", flush=True)
        time.sleep(60)
    """)


def test_lock_of_a_killed_process_is_free_again(db: Database, db_url: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", _holder_script(db_url)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"pid {child.pid}"):
            acquire_lock(db, "weekly")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    deadline = clock.monotonic() + 10
    while True:  # PostgreSQL notices the dead connection a moment later
        try:
            held = acquire_lock(db, "weekly")
            break
        except LockedError:
            if clock.monotonic() > deadline:
                raise
            clock.sleep(0.1)
    assert held.took_over is not None and held.took_over.pid == child.pid
    held.release()


def test_a_live_holder_on_this_host_keeps_the_lock_however_late_its_heartbeat(
    db: Database, db_url: str
) -> None:
    """A run stalled past the stale limit (e.g. its heartbeat blocked by a long SQLite write)
    is still alive: taking its lock over would let two runs send the same outbox."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to tell a process's start time (elsewhere: heartbeat only)")
    child = subprocess.Popen([sys.executable, "-c", _holder_script(db_url)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with db.session() as s:
            s.execute(update(JobLock).where(JobLock.name == "weekly").values(
                heartbeat_at=utcnow() - timedelta(hours=3)))
        with pytest.raises(LockedError, match=f"pid {child.pid}"):
            acquire_lock(db, "weekly", stale_after=timedelta(minutes=15))
        holder = lock_holder(db, "weekly")
        assert holder is not None and holder.pid == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)


def test_a_reused_pid_on_this_host_does_not_keep_a_dead_lock(db: Database) -> None:
    """The row names a pid that is alive now, but as another process (it started at another
    time than the owner did): the owner is gone, the lock is free."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to tell a process's start time (elsewhere: heartbeat only)")
    import socket

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        now = utcnow()
        with db.session() as s:
            s.add(JobLock(name="weekly", owner=f"{socket.gethostname()}:{other.pid}:dead@1",
                          pid=other.pid, acquired_at=now, heartbeat_at=now))
        with acquire_lock(db, "weekly") as held:
            assert held.took_over is not None and held.took_over.pid == other.pid
    finally:
        other.kill()
        other.wait(timeout=10)


# --- runs: digest send, crash and resume, the CLI --------------------------------------------


def test_digest_send_is_recorded_as_a_run_and_refuses_while_locked(
    db: Database, server: MailServer
) -> None:
    seed(db)
    settings = settings_for(db, server)
    with acquire_lock(db, "weekly"):
        with pytest.raises(LockedError):
            send_digests_now(db, settings, as_of=AS_OF)
    result = send_digests_now(db, settings, as_of=AS_OF)
    assert result.run_id is not None and result.send.sent == 5
    with db.session() as s:
        run = s.get(Run, result.run_id)
        assert run is not None and run.kind == "digest" and run.status == "done"
        assert run.stats["stages"]["digest"]["counts"]["sent"] == 5


def _cli(db: Database, server: MailServer | None, *args: str) -> tuple[int, str]:
    env = {"HORIZON_MATCH_SECRET": SECRET, "HORIZON_MATCH_SENDER": "calls@club.example.org",
           "HORIZON_MATCH_PUBLIC_URL": "https://calls.club.example.org"}
    if server is not None:
        env["HORIZON_MATCH_SMTP_URL"] = server.url()
    result = CliRunner().invoke(main, ["--db", db.url, *args], env=env)
    return result.exit_code, result.output


def test_cli_digest_send_runs_and_unsubscribe(
    db: Database, server: MailServer, tmp_path: Path
) -> None:
    seed(db)
    code, out = _cli(db, None, "digest", "send", "--dry-run", str(tmp_path / "p"),
                     "--as-of", "2026-03-02")
    assert code == 0, out
    assert "dry run: 10 file(s) written" in out
    previews = tmp_path / "p"
    emls = sorted(previews.glob("*.eml"))
    assert len(emls) == 5 and len(list(previews.glob("*.html"))) == 5
    for eml in emls:
        msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
        html = msg.get_body(("html",)).get_content()
        assert msg.get_body(("plain",)) is not None and msg["List-Unsubscribe"]
        assert eml.with_suffix(".html").read_text(encoding="utf-8") == html.replace("\r\n", "\n")
        assert html.lstrip().startswith("<!DOCTYPE html>")
    acme = message_from_bytes((previews / "001-acme-digest.eml").read_bytes(),
                              policy=policy.default)
    assert acme["Subject"] == "2 new EU calls for ACME Robotics"
    assert "Robots for ports" in (previews / "001-acme-digest.html").read_text(encoding="utf-8")
    code, out = _cli(db, None, "digest", "send", "--as-of", "2026-03-02")
    assert code == 1 and "no mail server is configured" in out
    server.reject["eu@rina.example"] = "550 5.1.1 mailbox unknown"
    code, out = _cli(db, server, "digest", "send", "--as-of", "2026-03-02")
    assert code == 0, out
    assert "emails: 4 sent, 1 refused, 0 left pending" in out
    assert "problem: rina <eu@rina.example>: recipients refused" in out
    run_id = int(out.split("run ", 1)[1].split()[0])

    code, out = _cli(db, None, "runs", "list")
    assert code == 0 and f"{run_id}" in out and "digest" in out and "done" in out
    code, out = _cli(db, None, "runs", "show", str(run_id))
    assert code == 0, out
    assert "stage digest" in out and "sent: 4" in out and "1 failed, 4 sent" in out
    assert "note: rina <eu@rina.example>: recipients refused (eu@rina.example: 550" in out
    code, out = _cli(db, None, "runs", "show", "999")
    assert code == 1 and "there is no run 999" in out

    token = make_unsubscribe_token(SECRET, "unige")
    code, out = _cli(db, None, "members", "unsubscribe", token)
    assert code == 0 and "unige (Università di Genova) is now unsubscribed" in out
    code, out = _cli(db, None, "members", "unsubscribe", token[:-3])
    assert code == 1 and "not a valid unsubscribe token" in out and "Traceback" not in out


def test_send_killed_mid_batch_is_finished_by_the_next_run_without_duplicates(
    db: Database, db_url: str, server: MailServer
) -> None:
    """A real crash: the sending process is SIGKILLed while the server has its 3rd message."""
    seed(db)
    server.hang_after = 2
    env = {**os.environ, "HORIZON_MATCH_SECRET": SECRET,
           "HORIZON_MATCH_SENDER": "calls@club.example.org",
           "HORIZON_MATCH_SMTP_URL": server.url()}
    child = subprocess.Popen(
        [sys.executable, "-m", "cli", "--db", db_url, "digest", "send", "--as-of", "2026-03-02"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert server.hanging.wait(timeout=60), child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        server.hang_after = None
        server.release.set()
    assert len(server.received) == 2
    with db.session() as s:
        run = s.scalars(select(Run).where(Run.kind == "digest")).one()
        assert run.status == "running"  # it never got to say otherwise

    settings = settings_for(db, server)
    result = send_digests_now(db, settings, as_of=AS_OF)  # takes over the dead lock
    assert result.send.sent == 3 and result.send.digests == 0
    ids = Counter(r.message["Message-ID"] for r in server.received)
    assert len(ids) == 5 and set(ids.values()) == {1}
    with db.session() as s:
        assert s.get(Run, run.id).status == "failed"
        assert "interrupted" in s.get(Run, run.id).errors[-1]["error"]



# --- the whole weekly job, with the real stages --------------------------------------------------

WEEKLY_AS_OF = date(2026, 6, 1)
PROFILES = [
    ("bio", "BioCircular Srl", "it",
     "Bio-based innovation: biorefineries, bio-based fertilisers, films and coatings for "
     "circular packaging, safe and sustainable by design bio-based chemicals."),
    ("cyber", "SecureCode SME", "en",
     "Cybersecurity of software and hardware supply chains, security testing tools, "
     "secure software development, foresight on emerging digital technologies."),
    ("energy", "Harbour Energy Lab", "en",
     "Heat pumps and heat upgrade for industry, megawatt charging of heavy-duty electric "
     "vehicles, digital building logbooks and whole life cycle data platforms."),
]


def seed_profiles(db: Database) -> None:
    now = datetime(2026, 5, 1)
    with db.session() as s:
        for mid, name, lang, text in PROFILES:
            member = _member(s, mid, name, [f"eu@{mid}.example"], lang, "IT", "company", now)
            member.description = text


@pytest.fixture
def replay_dir(tmp_path: Path, portal_fixtures: Path) -> Path:
    """A scrape of the real saved portal responses, recorded for offline replay."""
    from portal_server import PortalServer

    from horizon_match.ingest import ScrapeOptions, scrape

    saved = tmp_path / "saved"
    scratch = Database(f"sqlite:///{tmp_path / 'record.db'}")
    with PortalServer.from_fixtures(portal_fixtures) as portal:
        scrape(scratch, Settings(db_url=scratch.url), ScrapeOptions(
            save_dir=saved, base_url=portal.url, delay=0.0,
            now=datetime.combine(WEEKLY_AS_OF, datetime.min.time())))
    scratch.close()
    return saved


def weekly_options(replay: Path | None, **kw: object):  # noqa: ANN201
    from horizon_match.embedding import FakeEmbedder
    from horizon_match.jobs import WeeklyOptions

    return WeeklyOptions(replay_dir=replay, as_of=WEEKLY_AS_OF, embedder=FakeEmbedder(), **kw)


def test_weekly_run_end_to_end_then_again_sends_nothing_new(
    db: Database, server: MailServer, replay_dir: Path
) -> None:
    from horizon_match.jobs import run_weekly

    seed_profiles(db)
    settings = settings_for(db, server)
    report = run_weekly(db, settings, weekly_options(replay_dir))
    assert report.ok, [(s.name, s.error) for s in report.stages]
    assert [s.name for s in report.stages] == ["scrape", "match", "consortia", "digest"]
    assert all(s.status == "done" and s.seconds is not None for s in report.stages)
    assert report.stages[0].counts["new"] == 17
    with db.session() as s:
        matched = set(s.scalars(select(Match.member_id).where(Match.run_id == report.run_id)))
        run = s.get(Run, report.run_id)
        assert run.status == "done" and run.finished_at is not None
        assert set(run.stats["stages"]) == {"scrape", "match", "consortia", "digest"}
    assert matched, "the fake embedder should match these profiles to some calls"
    mails = digests(server)
    assert per_member(mails) == {f"eu@{m}.example": 1 for m in matched}
    for received in mails:
        msg = received.message
        assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None
        assert [a.get_filename() for a in msg.iter_attachments()] == ["deadlines.ics"]
        assert msg["List-Unsubscribe"] and msg["List-Unsubscribe-Post"]
    assert matched == {"bio", "cyber", "energy"}
    bio = next(r for r in mails if r.recipients == ["eu@bio.example"]).message
    assert "nuovi bandi UE per BioCircular Srl" in bio["Subject"]  # Italian profile
    assert "Perché:" in bio.get_body(("plain",)).get_content()
    with db.session() as s:
        leads = set(s.scalars(select(ConsortiumSuggestion.lead_member_id).where(
            ConsortiumSuggestion.run_id == report.run_id)))
    assert leads and per_member(consortium_mails(server)) == {f"eu@{m}.example": 1 for m in leads}

    count = len(server.received)
    again = run_weekly(db, settings, weekly_options(replay_dir))
    assert again.ok and again.run_id != report.run_id and not again.resumed
    assert again.send is not None and again.send.sent == 0
    assert len(server.received) == count


def test_weekly_run_refuses_to_start_twice(db: Database, server: MailServer) -> None:
    from horizon_match.jobs import run_weekly

    with acquire_lock(db, "weekly"):
        with pytest.raises(LockedError, match="in progress"):
            run_weekly(db, settings_for(db, server), weekly_options(None, skip_scrape=True))
        code, out = _cli(db, server, "run", "--skip-scrape")
        assert code == 1
        assert "another horizon-match weekly run is in progress" in out
        assert "Traceback" not in out
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0  # nothing was started


def test_a_failed_stage_is_recorded_and_the_rest_still_runs(
    db: Database, server: MailServer, replay_dir: Path, tmp_path: Path
) -> None:
    from horizon_match.jobs import run_weekly

    seed_profiles(db)
    settings = settings_for(db, server)
    run_weekly(db, settings, weekly_options(replay_dir))  # calls stored, digests sent
    broken = tmp_path / "not-a-replay"
    broken.mkdir()
    report = run_weekly(db, settings, weekly_options(broken))
    assert report.status == "failed"
    status = {s.name: s.status for s in report.stages}
    assert status == {"scrape": "failed", "match": "done", "consortia": "done", "digest": "done"}
    assert "not a folder written by --save" in (report.stages[0].error or "")
    code, out = _cli(db, None, "runs", "show", str(report.run_id))
    assert code == 0 and "error in scrape" in out
    code, out = _cli(db, None, "runs", "list")
    assert "failed" in out and "scrape" in out


def _weekly_child(db_url: str, replay: Path, smtp_url: str) -> str:
    return textwrap.dedent(f"""
        from datetime import date
        from pathlib import Path
        from horizon_match.config import Settings
        from horizon_match.db import Database
        from horizon_match.embedding import FakeEmbedder
        from horizon_match.jobs import WeeklyOptions, run_weekly
        db = Database({db_url!r})
        settings = Settings(db_url={db_url!r}, smtp_url={smtp_url!r}, secret={SECRET!r},
                            sender="calls@club.example.org",
                            public_url="https://calls.club.example.org")
        run_weekly(db, settings, WeeklyOptions(replay_dir=Path({str(replay)!r}),
                   as_of=date({WEEKLY_AS_OF.year}, {WEEKLY_AS_OF.month}, {WEEKLY_AS_OF.day}),
                   embedder=FakeEmbedder()))
    """)


def test_a_killed_weekly_run_is_resumed_and_finishes_without_duplicates(
    db: Database, db_url: str, server: MailServer, replay_dir: Path
) -> None:
    from horizon_match.jobs import run_weekly

    seed_profiles(db)
    server.hang_after = 1  # the second email hangs: kill the job right then
    child = subprocess.Popen(
        [sys.executable, "-c", _weekly_child(db_url, replay_dir, server.url())],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if not server.hanging.wait(timeout=120):
            child.kill()
            pytest.fail(f"the job never reached its second email: {child.communicate()}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        server.hang_after = None
        server.release.set()
    assert len(server.received) == 1
    with db.session() as s:
        crashed = s.scalars(select(Run).where(Run.kind == "weekly")).one()
        assert crashed.status == "running"
        stages_before = dict(crashed.stats["stages"])
    assert {n for n, st in stages_before.items() if st["status"] == "done"} == {
        "scrape", "match", "consortia"}

    report = run_weekly(db, settings_for(db, server), weekly_options(replay_dir))
    assert report.ok and report.resumed and report.run_id == crashed.id
    assert report.took_over_from is not None  # the dead process's lock
    kept = {s.name: s for s in report.stages}
    for name in ("scrape", "match", "consortia"):  # finished stages are not redone
        assert kept[name].started_at.isoformat() == stages_before[name]["started_at"]
    assert report.send is not None and report.send.digests == 0  # composed before the kill
    ids = Counter(r.message["Message-ID"] for r in server.received)
    assert set(ids.values()) == {1}
    with db.session() as s:
        matched = set(s.scalars(select(Match.member_id).where(Match.run_id == crashed.id)))
        leads = set(s.scalars(select(ConsortiumSuggestion.lead_member_id).where(
            ConsortiumSuggestion.run_id == crashed.id)))
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.status != "sent")) == 0
    assert per_member(digests(server)) == {f"eu@{m}.example": 1 for m in matched}
    assert per_member(consortium_mails(server)) == {f"eu@{m}.example": 1 for m in leads if m}


def test_an_old_interrupted_run_is_closed_not_resumed(
    db: Database, server: MailServer, replay_dir: Path
) -> None:
    from horizon_match.jobs import run_weekly

    seed_profiles(db)
    with db.session() as s:
        s.add(Run(kind="weekly", status="running", started_at=utcnow() - timedelta(days=3),
                  options={}, stats={"stages": {}}, errors=[]))
    report = run_weekly(db, settings_for(db, server), weekly_options(replay_dir))
    assert report.ok and not report.resumed and report.abandoned_run is not None
    with db.session() as s:
        old = s.get(Run, report.abandoned_run)
        assert old.status == "failed" and "not resumed" in old.errors[-1]["error"]


def test_a_missing_model_fails_the_match_stage_not_the_job(
    db: Database, server: MailServer
) -> None:
    from horizon_match.jobs import WeeklyOptions, run_weekly

    seed(db)
    settings = settings_for(db, server, model="/nonexistent/model-folder")
    report = run_weekly(db, settings, WeeklyOptions(skip_scrape=True, as_of=AS_OF))
    status = {s.name: s.status for s in report.stages}
    assert status == {"scrape": "skipped", "match": "failed", "consortia": "skipped",
                      "digest": "done"}
    assert "HORIZON_MATCH_MODEL" in (report.stages[1].error or "")
    assert report.status == "failed"
    # the digest stage still sent what the stored matches hold
    assert report.send is not None and report.send.sent == 5


def test_weekly_run_with_the_server_dropping_mid_batch_then_rerun_delivers_each_once(
    db: Database, server: MailServer, replay_dir: Path
) -> None:
    """The issue's test at the level of the job: the server goes away after the first email;
    the run says so and fails its digest stage; the next `run` sends the rest, once each."""
    from horizon_match.jobs import run_weekly

    seed_profiles(db)
    settings = settings_for(db, server)
    server.drop_after = 1
    first = run_weekly(db, settings, weekly_options(replay_dir))
    assert first.status == "failed"
    status = {s.name: s.status for s in first.stages}
    assert (status["scrape"], status["match"], status["digest"]) == ("done", "done", "failed")
    assert first.send is not None and first.send.sent == 1 and first.send.left_pending >= 2
    assert "mail server is unavailable" in (first.stages[-1].error or "")
    assert len(server.received) == 1
    pending = first.send.left_pending
    with db.session() as s:
        assert s.get(Run, first.run_id).status == "failed"  # finished: not resumed, redone
        matched = set(s.scalars(select(Match.member_id).where(Match.run_id == first.run_id)))
        leads = {m for m in s.scalars(select(ConsortiumSuggestion.lead_member_id).where(
            ConsortiumSuggestion.run_id == first.run_id)) if m}
    code, out = _cli(db, None, "runs", "show", str(first.run_id))
    assert code == 0 and "error in digest" in out and f"{pending} pending" in out

    server.recover()
    second = run_weekly(db, settings, weekly_options(replay_dir))
    assert not second.resumed and second.run_id != first.run_id
    assert second.stages[-1].name == "digest" and second.stages[-1].status == "done"
    assert second.send is not None and second.send.ok
    assert second.send.digests == 0 and second.send.consortium_messages == 0  # nothing new
    assert second.send.sent == pending
    ids = Counter(r.message["Message-ID"] for r in server.received)
    assert len(ids) == 1 + pending and set(ids.values()) == {1}
    assert per_member(digests(server)) == {f"eu@{m}.example": 1 for m in matched}
    assert per_member(consortium_mails(server)) == {f"eu@{m}.example": 1 for m in leads}
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)
                        .where(OutboxMessage.status != "sent")) == 0

    third = run_weekly(db, settings, weekly_options(replay_dir))
    assert third.send is not None and third.send.ok and third.send.sent == 0
    assert len(server.received) == 1 + pending


def _ics_events(msg) -> dict[str, dict[str, str]]:  # noqa: ANN001
    """UID -> the event's properties, from a received message's deadlines.ics."""
    (part,) = [a for a in msg.iter_attachments() if a.get_filename() == "deadlines.ics"]
    assert part.get_content_type() == "text/calendar"
    text = part.get_content().replace("\r\n ", "")  # unfold
    events: dict[str, dict[str, str]] = {}
    for block in text.split("BEGIN:VEVENT")[1:]:
        props = dict(line.split(":", 1) for line in block.split("END:VEVENT")[0].split("\r\n")
                     if ":" in line)
        events[props["UID"]] = props
    return events


def test_ics_uids_stay_the_same_from_week_to_week(db: Database, server: MailServer) -> None:
    """Re-importing next week's deadlines.ics must move the event, not add a second one."""
    seed(db)
    settings = settings_for(db, server)
    send_digests(db, settings, as_of=AS_OF, now=datetime(2026, 3, 2, 6, 30))
    acme = next(r for r in digests(server) if r.recipients[0] == "ceo@acme.example").message
    week1 = _ics_events(acme)
    uid1 = "HORIZON-CL4-2026-TEST-01.stage1@horizon-match"
    uid2 = "HORIZON-CL4-2026-TEST-02.stage1@horizon-match"
    assert set(week1) == {uid1, uid2}  # the closed call 5 is not in it
    assert week1[uid2]["DTEND"] == "20260312T160000Z"
    lead = next(r for r in consortium_mails(server) if r.recipients[0] == "ceo@acme.example")
    assert set(_ics_events(lead.message)) == {uid1}  # the same event in the lead's message

    server.received.clear()
    send_digests(db, settings, as_of=AS_OF + timedelta(days=7), now=datetime(2026, 3, 9, 6, 30))
    reminder = next(r for r in digests(server) if r.recipients[0] == "ceo@acme.example").message
    week2 = _ics_events(reminder)
    assert set(week2) == {uid2}
    assert week2[uid2]["DTEND"] == week1[uid2]["DTEND"]
    assert int(week2[uid2]["SEQUENCE"]) > int(week1[uid2]["SEQUENCE"])


# --- scheduling: the README's cron line and systemd units ------------------------------------


def _scheduling_blocks() -> dict[str, list[str]]:
    """The fenced blocks of the README's Scheduling section, by language tag."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "#### Scheduling" in readme, "the README has lost its Scheduling section"
    section = readme.split("#### Scheduling", 1)[1].split("\n## ", 1)[0]
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL):
        blocks.setdefault(lang, []).append(body)
    return blocks


def _cron_field_ok(field: str, low: int, high: int, names: tuple[str, ...] = ()) -> bool:
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step and not step.isdigit():
            return False
        if base == "*":
            continue
        ends = base.split("-")
        if len(ends) > 2:
            return False
        for end in ends:
            value = names.index(end.lower()) if end.lower() in names else (
                int(end) if end.isdigit() else -1)
            if not low <= value <= high:
                return False
    return True


def _parse_cli(args: list[str]) -> str:
    """Parse `horizon-match ARGS` as click would, without running it; the subcommand name."""
    import warnings

    ctx = main.make_context("horizon-match", list(args))
    with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 9 folds it into args
        warnings.simplefilter("ignore", DeprecationWarning)
        remaining = [*ctx.protected_args, *ctx.args]
    name, command, rest = main.resolve_command(ctx, remaining)
    assert command is not None
    command.make_context(name, rest, parent=ctx)  # unknown options or bad values raise
    return str(name)


def test_readme_cron_line_sources_the_settings_and_runs_the_job(tmp_path: Path) -> None:
    import shlex

    from horizon_match.config import load_settings
    from horizon_match.mailer import parse_smtp_url

    blocks = _scheduling_blocks()
    (cron,) = blocks["cron"]
    jobs = [line for line in cron.splitlines()
            if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)]
    assert len(jobs) == 1, jobs
    fields = jobs[0].split(None, 5)
    days = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
    assert _cron_field_ok(fields[0], 0, 59) and _cron_field_ok(fields[1], 0, 23)
    assert _cron_field_ok(fields[2], 1, 31) and _cron_field_ok(fields[3], 1, 12)
    assert _cron_field_ok(fields[4], 0, 7, days)
    command = fields[5]
    assert "%" not in command  # cron turns % into a newline
    steps = [shlex.split(step) for step in command.split("&&")]
    assert steps[0][0] == "cd"
    install = steps[0][1]
    assert steps[-1][0].endswith("bin/horizon-match")
    assert _parse_cli(steps[-1][1:]) == "run"

    # the README's env file, sourced exactly as the cron line does
    (env_text,) = blocks["sh"]
    folder = tmp_path / "install"
    folder.mkdir()
    (folder / "horizon-match.env").write_text(env_text, encoding="utf-8")
    probe = command.replace(install, shlex.quote(str(folder)), 1).rsplit("&&", 1)[0]
    shown = subprocess.run(["sh", "-c", probe + " && env"], capture_output=True, text=True,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert shown.returncode == 0, shown.stderr
    env = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    assert env["HORIZON_MATCH_SENDER"] == "Club calls <calls@club.example.org>"
    settings = load_settings(env)
    assert settings.db_url.startswith("postgresql+psycopg://")
    smtp = parse_smtp_url(settings.smtp_url or "")
    assert (smtp.username, smtp.security, smtp.port) == ("calls@club.example.org", "starttls", 587)
    assert settings.reply_to and settings.public_url and settings.public_url.startswith("https://")


def test_readme_systemd_service_and_timer_are_valid_units(tmp_path: Path) -> None:
    import configparser
    import shlex
    import shutil

    section = (ROOT / "README.md").read_text(encoding="utf-8").split("#### Scheduling", 1)[1]
    names = re.findall(r"`(/etc/systemd/system/[\w.-]+\.(service|timer))`", section)
    units = {kind: path for path, kind in names}
    assert set(units) == {"service", "timer"}
    assert Path(units["service"]).stem == Path(units["timer"]).stem  # the timer starts it
    ini = _scheduling_blocks()["ini"]
    assert len(ini) == 2
    service_text, timer_text = ini

    def parse(text: str) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(text)
        return parser

    service, timer = parse(service_text), parse(timer_text)
    assert service["Service"]["Type"] == "oneshot"
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert exec_start[0].endswith("/bin/horizon-match")
    assert _parse_cli(exec_start[1:]) == "run"
    workdir = service["Service"]["WorkingDirectory"]
    assert service["Service"]["EnvironmentFile"] == f"{workdir}/horizon-match.env"
    assert exec_start[0].startswith(workdir + "/")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return  # the checks above still ran; systemd itself checks the units where it exists
    # systemd's own parser, with the installation folder moved to a scratch one
    folder = tmp_path / "install"
    (folder / ".venv" / "bin").mkdir(parents=True)
    program = folder / Path(exec_start[0]).relative_to(workdir)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    (folder / "horizon-match.env").write_text("")
    stem = Path(units["service"]).stem
    for kind, text in (("service", service_text), ("timer", timer_text)):
        (tmp_path / f"{stem}.{kind}").write_text(text.replace(workdir, str(folder)))
    checked = subprocess.run(
        [analyze, "verify", f"./{stem}.service", f"./{stem}.timer"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Failed" not in checked.stderr and "Unknown" not in checked.stderr, checked.stderr
    when = subprocess.run([analyze, "calendar", timer["Timer"]["OnCalendar"]],
                          capture_output=True, text=True)
    assert when.returncode == 0 and "Next elapse" in when.stdout, when.stderr
