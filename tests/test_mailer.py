"""The SMTP side against a real aiosmtpd server on 127.0.0.1 (random port).

`MailServer` records every message it accepts and can be told to refuse an address, to defer
one, to drop the connection in the middle of DATA (once, or until told otherwise) or to hang
in RCPT; tests/test_jobs.py uses it too.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from horizon_match.errors import ConfigError, MailError
from horizon_match.mailer import (
    PermanentMailError,
    SmtpMailer,
    TemporaryMailError,
    html_part,
    parse_smtp_url,
    write_preview,
)


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class MailServer:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)  # address -> "550 ..." reply
    defer: dict[str, str] = field(default_factory=dict)  # address -> "450 ..." reply
    drop_after: int | None = None  # accept this many messages, then drop the connection in DATA
    stay_down: bool = True  # after the drop, keep dropping until `recover()`
    down: bool = False
    hang_after: int | None = None  # accept this many, then block the next RCPT until released
    hanging: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"backoff": 0.01, **options}.items())
        return f"smtp://{self.host}:{self.port}?{query}"

    def recover(self) -> None:
        self.down = False
        self.drop_after = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.s = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        s = self.s
        if s.hang_after is not None and len(s.received) >= s.hang_after:
            s.hanging.set()
            # blocks the server's loop thread on purpose: the client sees no answer
            s.release.wait(timeout=30)
            return "451 4.3.0 try later"
        if address in s.reject:
            return s.reject[address]
        if address in s.defer:
            return s.defer[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        s = self.s
        with s.lock:
            if s.down or (s.drop_after is not None and len(s.received) >= s.drop_after):
                s.down = s.stay_down
                if not s.stay_down:
                    s.drop_after = None
                s.dropped += 1
                server.transport.close()  # no reply: the message was not accepted
                return "421 4.3.2 going down"
            s.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                       bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 queued"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(server: MailServer, **controller_kw: object) -> Controller:
    for _ in range(5):
        server.port = _free_port()
        controller = Controller(_Handler(server), hostname=server.host, port=server.port,
                                **controller_kw)
        try:
            controller.start()
            return controller
        except (OSError, RuntimeError):
            continue
    raise RuntimeError("could not start the test SMTP server")


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = MailServer()
    controller = start_server(server)
    try:
        yield server
    finally:
        server.release.set()
        controller.stop()


def _message(to: str = "a@example.org", subject: str = "hello") -> bytes:
    msg = EmailMessage()
    msg["From"] = "club@example.org"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject}@example.org>"
    msg.set_content("plain body")
    msg.add_alternative("<p>html body</p>", subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


# --- the URL ---------------------------------------------------------------------------------


def test_smtp_url_forms() -> None:
    c = parse_smtp_url("smtp://user%40club:p%40ss:w@mail.example.org:587?starttls=1")
    assert (c.host, c.port, c.security, c.username, c.password) == (
        "mail.example.org", 587, "starttls", "user@club", "p@ss:w")
    assert "p@ss" not in c.describe()
    assert parse_smtp_url("smtps://u:p@mail.example.org").port == 465
    assert parse_smtp_url("smtps://u:p@mail.example.org").security == "ssl"
    assert parse_smtp_url("smtp://mail.example.org").security == "plain"
    assert parse_smtp_url("smtp://mail.example.org").port == 25
    assert parse_smtp_url("smtp://mail.example.org:587").security == "starttls"
    assert parse_smtp_url("smtp://mail.example.org:587?starttls=0").security == "plain"
    c = parse_smtp_url("smtp://h:25?timeout=5&retries=1&backoff=0.5&helo=me.example.org")
    assert (c.timeout, c.retries, c.backoff, c.helo) == (5.0, 1, 0.5, "me.example.org")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.org", "not smtp or smtps"),
        ("smtp://", "no host"),
        ("smtp://h:25?starttls=maybe", "must be 1 or 0"),
        ("smtp://h:25?tls=1", "unknown SMTP URL option"),
        ("smtps://h?starttls=1", "already TLS"),
        ("smtp://h:99999", "malformed"),
        ("smtp://h:25?retries=x", "not a number"),
    ],
)
def test_bad_smtp_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_smtp_url(url)


# --- sending ---------------------------------------------------------------------------------


def test_sends_the_exact_bytes_over_one_connection(mail_server: MailServer) -> None:
    raws = [_message(subject=f"m{n}") for n in range(3)]
    with SmtpMailer(parse_smtp_url(mail_server.url())) as mailer:
        for raw in raws:
            refused = mailer.send(raw, envelope_from="club@example.org",
                                  recipients=["a@example.org", "b@example.org"])
            assert refused == {}
    assert [r.message["Subject"] for r in mail_server.received] == ["m0", "m1", "m2"]
    assert mail_server.received[0].recipients == ["a@example.org", "b@example.org"]
    assert mail_server.received[0].sender == "club@example.org"
    assert [r.raw for r in mail_server.received] == raws


def test_refused_address_is_permanent_and_the_connection_stays_usable(
    mail_server: MailServer,
) -> None:
    mail_server.reject["gone@example.org"] = "550 5.1.1 no such mailbox"
    with SmtpMailer(parse_smtp_url(mail_server.url())) as mailer:
        with pytest.raises(PermanentMailError, match="550 5.1.1 no such mailbox"):
            mailer.send(_message("gone@example.org"), envelope_from="club@example.org",
                        recipients=["gone@example.org"])
        # one bad address among good ones: delivered to the others, the bad one reported
        refused = mailer.send(_message(subject="x"), envelope_from="club@example.org",
                              recipients=["gone@example.org", "ok@example.org"])
        assert list(refused) == ["gone@example.org"] and "550" in refused["gone@example.org"]
        mailer.send(_message(subject="y"), envelope_from="club@example.org",
                    recipients=["ok@example.org"])
    assert [r.recipients for r in mail_server.received] == [["ok@example.org"]] * 2


def test_deferred_address_is_temporary_for_that_message_only(mail_server: MailServer) -> None:
    mail_server.defer["busy@example.org"] = "450 4.2.1 mailbox busy"
    sleeps: list[float] = []
    with SmtpMailer(parse_smtp_url(mail_server.url(retries=2)), sleep=sleeps.append) as mailer:
        with pytest.raises(TemporaryMailError, match="450 4.2.1") as info:
            mailer.send(_message(), envelope_from="club@example.org",
                        recipients=["busy@example.org"])
    assert info.value.server_wide is False
    assert sleeps == [0.01, 0.02]


def test_one_dropped_connection_is_retried_once_and_delivered_once(
    mail_server: MailServer,
) -> None:
    mail_server.drop_after, mail_server.stay_down = 1, False
    sleeps: list[float] = []
    with SmtpMailer(parse_smtp_url(mail_server.url()), sleep=sleeps.append) as mailer:
        for n in range(3):
            mailer.send(_message(subject=f"m{n}"), envelope_from="club@example.org",
                        recipients=["a@example.org"])
    assert mail_server.dropped == 1
    assert sleeps == [0.01]
    assert [r.message["Subject"] for r in mail_server.received] == ["m0", "m1", "m2"]


def test_server_that_stays_down_gives_a_server_wide_temporary_error(
    mail_server: MailServer,
) -> None:
    mail_server.drop_after = 0
    sleeps: list[float] = []
    with SmtpMailer(parse_smtp_url(mail_server.url(retries=3, backoff=1)),
                    sleep=sleeps.append) as mailer:
        with pytest.raises(TemporaryMailError, match="lost the connection") as info:
            mailer.send(_message(), envelope_from="club@example.org", recipients=["a@x.org"])
    assert info.value.server_wide is True
    assert sleeps == [1, 2, 4]  # exponential backoff
    assert mail_server.dropped == 4 and mail_server.received == []


def test_nobody_listening_is_temporary() -> None:
    url = f"smtp://127.0.0.1:{_free_port()}?retries=1&backoff=0&timeout=2"
    with SmtpMailer(parse_smtp_url(url), sleep=lambda s: None) as mailer:
        with pytest.raises(TemporaryMailError) as info:
            mailer.send(_message(), envelope_from="club@example.org", recipients=["a@x.org"])
    assert info.value.server_wide


def test_wrong_password_stops_everything_with_a_clear_message() -> None:
    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"right"
        return AuthResult(success=ok, handled=False)

    server = MailServer()
    controller = start_server(server, authenticator=authenticator, auth_require_tls=False)
    try:
        good = parse_smtp_url(f"smtp://club:right@127.0.0.1:{server.port}?starttls=0")
        with SmtpMailer(good) as mailer:
            mailer.send(_message(), envelope_from="club@example.org", recipients=["a@x.org"])
        bad = parse_smtp_url(f"smtp://club:wrong@127.0.0.1:{server.port}?starttls=0")
        with SmtpMailer(bad) as mailer:
            with pytest.raises(MailError, match="refused the login") as info:
                mailer.send(_message(), envelope_from="club@example.org", recipients=["a@x.org"])
        assert not isinstance(info.value, TemporaryMailError | PermanentMailError)
        assert "wrong" not in str(info.value)
        # asking for STARTTLS where the server offers none is a configuration problem too
        tls = parse_smtp_url(f"smtp://127.0.0.1:{server.port}?starttls=1")
        with SmtpMailer(tls) as mailer, pytest.raises(MailError, match="does not support"):
            mailer.send(_message(), envelope_from="club@example.org", recipients=["a@x.org"])
    finally:
        controller.stop()
    assert len(server.received) == 1


def test_preview_writes_eml_and_html(tmp_path: Path) -> None:
    raw = _message(subject="preview")
    files = write_preview(tmp_path / "out", "001-acme-digest", raw)
    assert [f.name for f in files] == ["001-acme-digest.eml", "001-acme-digest.html"]
    assert files[0].read_bytes() == raw
    assert files[1].read_text() == html_part(raw) == "<p>html body</p>\n"


def test_server_helper_hangs_and_releases(mail_server: MailServer) -> None:
    # the crash test in test_jobs relies on this: a client stuck in RCPT
    mail_server.hang_after = 0
    errors: list[Exception] = []

    def client() -> None:
        try:
            with SmtpMailer(parse_smtp_url(mail_server.url(retries=0))) as mailer:
                mailer.send(_message(), envelope_from="c@x.org", recipients=["a@x.org"])
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert mail_server.hanging.wait(timeout=10)
    time.sleep(0.05)
    mail_server.release.set()
    thread.join(timeout=10)
    assert len(errors) == 1 and isinstance(errors[0], TemporaryMailError)
    assert mail_server.received == []
