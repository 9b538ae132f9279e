"""Sending mail: the SMTP URL, one connection per batch, retries, and the dry-run writer.

Thin on purpose: it knows nothing of members or calls, only bytes, an envelope and how to
tell a temporary failure (connection lost, 4xx: try again later) from a permanent one (5xx for
this message: retrying will not help) from a configuration problem (login refused, TLS not
offered: nothing will get through, stop the batch).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from horizon_match.errors import ConfigError, MailError

SCHEMES = {"smtp": 25, "smtps": 465}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class TemporaryMailError(MailError):
    """Worth retrying later. `server_wide`: the server itself is unreachable, stop the batch."""

    def __init__(self, message: str, *, server_wide: bool) -> None:
        super().__init__(message)
        self.server_wide = server_wide


class PermanentMailError(MailError):
    """The server refused this message for good (5xx); the others may still go through."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # plain | starttls | ssl
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    retries: int = 3  # further attempts after a temporary failure
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    helo: str | None = None

    def describe(self) -> str:
        """The server as staff may see it in logs (never the password)."""
        user = f"{self.username}@" if self.username else ""
        scheme = "smtps" if self.security == "ssl" else "smtp"
        tls = "?starttls=1" if self.security == "starttls" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{tls}"


def _flag(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"SMTP URL option {name}={value!r} must be 1 or 0")


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp://user:pass@host:587?starttls=1`, `smtps://user:pass@host:465`, `smtp://host:25`.

    Options: starttls (default on for port 587), timeout (s), retries, backoff (s), helo.
    User and password are percent-decoded, so a password may contain `@` written as `%40`.
    """
    hint = (
        "; write it like smtp://user:password@mail.example.org:587?starttls=1 "
        "or smtps://user:password@mail.example.org:465 (HORIZON_MATCH_SMTP_URL)"
    )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"the SMTP URL is malformed ({exc}){hint}") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(f"the SMTP URL scheme {parts.scheme!r} is not smtp or smtps{hint}")
    if not parts.hostname:
        raise ConfigError(f"the SMTP URL has no host name{hint}")
    port = port or SCHEMES[parts.scheme]
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - {"starttls", "timeout", "retries", "backoff", "helo"}
    if unknown:
        raise ConfigError(
            f"unknown SMTP URL option(s) {', '.join(sorted(unknown))}; "
            "known: starttls, timeout, retries, backoff, helo"
        )
    if parts.scheme == "smtps":
        if "starttls" in options and _flag("starttls", options["starttls"]):
            raise ConfigError("smtps:// is already TLS; drop starttls=1 or use smtp://")
        security = "ssl"
    elif "starttls" in options:
        security = "starttls" if _flag("starttls", options["starttls"]) else "plain"
    else:
        # 587 is the submission port, where STARTTLS is expected; elsewhere say so explicitly.
        security = "starttls" if port == 587 else "plain"
    try:
        timeout = float(options.get("timeout", 30))
        retries = int(options.get("retries", 3))
        backoff = float(options.get("backoff", 2))
    except ValueError as exc:
        raise ConfigError(f"SMTP URL option is not a number ({exc})") from None
    if timeout <= 0 or retries < 0 or backoff < 0:
        raise ConfigError("SMTP URL options timeout > 0, retries >= 0, backoff >= 0 are required")
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        helo=options.get("helo") or None,
    )


class Mailer(Protocol):
    def send(self, raw: bytes, *, envelope_from: str, recipients: Sequence[str]) -> dict[str, str]:
        """Hand one message over; returns recipients refused while others were accepted."""
        ...

    def close(self) -> None: ...


def _code_text(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {text}".strip()


class SmtpMailer:
    """Sends over one SMTP connection, reconnecting and backing off on temporary failures."""

    def __init__(self, config: SmtpConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._conn: smtplib.SMTP | None = None
        self._helo: str | None = config.helo

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        if self._helo is None:
            # smtplib would look the name up on every reconnect; once is enough.
            self._helo = socket.getfqdn()
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if cfg.security == "ssl":
            conn = smtplib.SMTP_SSL(
                cfg.host, cfg.port, local_hostname=self._helo, timeout=cfg.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=self._helo, timeout=cfg.timeout)
        try:
            if cfg.security == "starttls":
                conn.starttls(context=context)
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except BaseException:
            _quietly_close(conn)
            raise
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            _quietly_close(self._conn)
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()

    def send(self, raw: bytes, *, envelope_from: str, recipients: Sequence[str]) -> dict[str, str]:
        attempt = 0
        while True:
            try:
                return self._send_once(raw, envelope_from, recipients)
            except TemporaryMailError:
                if attempt >= self.config.retries:
                    raise
                self._sleep(self.config.backoff * (2**attempt))
                attempt += 1

    def _send_once(
        self, raw: bytes, envelope_from: str, recipients: Sequence[str]
    ) -> dict[str, str]:
        where = self.config.describe()
        try:
            if self._conn is None:
                self._conn = self._connect()
            refused = self._conn.sendmail(envelope_from, list(recipients), raw)
            return {addr: _code_text(code, text) for addr, (code, text) in refused.items()}
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: _code_text(c, t) for addr, (c, t) in exc.recipients.items()}
            detail = "; ".join(f"{a}: {t}" for a, t in codes.items())
            if all(400 <= c < 500 for c, _ in exc.recipients.values()):
                raise TemporaryMailError(
                    f"recipients deferred ({detail})", server_wide=False
                ) from None
            raise PermanentMailError(f"recipients refused ({detail})") from None
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            raise MailError(
                f"{where} refused the login ({_code_text(exc.smtp_code, exc.smtp_error)}); "
                "check the user and password in HORIZON_MATCH_SMTP_URL"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._drop()
            raise MailError(
                f"{where} does not support what the URL asks for ({exc}); use starttls=0, "
                "smtps:// or a URL without a user, as the server requires"
            ) from None
        except ssl.SSLError as exc:
            self._drop()
            raise MailError(
                f"TLS with {where} failed ({exc}); check the host name, port and smtp/smtps"
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            text = _code_text(exc.smtp_code, exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                self._drop()
                raise TemporaryMailError(f"sender deferred ({text})", server_wide=True) from None
            raise MailError(
                f"{where} refused the sender {exc.sender} ({text}); set HORIZON_MATCH_SENDER to "
                "an address the server accepts"
            ) from None
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            self._drop()
            text = _code_text(exc.smtp_code, exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                raise TemporaryMailError(f"{where} is busy: {text}", server_wide=True) from None
            raise MailError(
                f"{where} refuses this client ({text}); ask its administrator"
            ) from None
        except smtplib.SMTPResponseException as exc:
            # DATA (or RSET) answered with an error code
            text = _code_text(exc.smtp_code, exc.smtp_error)
            if exc.smtp_code == 421 or not 400 <= exc.smtp_code < 600:
                self._drop()
                raise TemporaryMailError(f"{where} closed: {text}", server_wide=True) from None
            if 400 <= exc.smtp_code < 500:
                self._reset()
                raise TemporaryMailError(f"message deferred ({text})", server_wide=False) from None
            self._reset()
            raise PermanentMailError(f"message refused ({text})") from None
        except OSError as exc:  # SMTPServerDisconnected, refused connection, timeout, DNS
            self._drop()
            raise TemporaryMailError(
                f"lost the connection to {where} ({exc or type(exc).__name__})", server_wide=True
            ) from None
        except UnicodeEncodeError:
            raise PermanentMailError(
                f"an address is not plain ASCII ({', '.join(recipients)}); "
                "fix it in the member file"
            ) from None

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()


def _quietly_close(conn: smtplib.SMTP) -> None:
    try:
        conn.close()
    except OSError:
        pass


def html_part(raw: bytes) -> str | None:
    """The text/html body of a message, for previews in a browser."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("html",))
    return part.get_content().replace("\r\n", "\n") if part is not None else None


def write_preview(directory: Path, name: str, raw: bytes) -> list[Path]:
    """Write `name.eml` (open it in a mail client) and `name.html` (open it in a browser)."""
    directory.mkdir(parents=True, exist_ok=True)
    eml = directory / f"{name}.eml"
    eml.write_bytes(raw)
    written = [eml]
    html = html_part(raw)
    if html is not None:
        page = directory / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        written.append(page)
    return written
