"""Settings: one frozen object built once by the CLI and passed to the library.

`load_settings` is the only place that looks at environment variables, and it is given the
mapping explicitly (the CLI passes os.environ) so the library never reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from horizon_match.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEMO_DIR = DEFAULT_DATA_DIR / "demo"
DEFAULT_MODEL = "all-MiniLM-L6-v2"

ENV_DB = "HORIZON_MATCH_DB"
ENV_DATA_DIR = "HORIZON_MATCH_DATA_DIR"
ENV_MODEL = "HORIZON_MATCH_MODEL"
ENV_SMTP_URL = "HORIZON_MATCH_SMTP_URL"
ENV_SECRET = "HORIZON_MATCH_SECRET"
ENV_SENDER = "HORIZON_MATCH_SENDER"
ENV_REPLY_TO = "HORIZON_MATCH_REPLY_TO"
ENV_PUBLIC_URL = "HORIZON_MATCH_PUBLIC_URL"


@dataclass(frozen=True)
class Settings:
    db_url: str
    data_dir: Path = DEFAULT_DATA_DIR
    # "all-MiniLM-L6-v2" (shipped package) or a path to a sentence-transformers model folder
    model: str = DEFAULT_MODEL
    smtp_url: str | None = None
    sender: str = "horizon-match <noreply@localhost>"
    reply_to: str | None = None
    secret: str = "change-me"
    # where the club serves horizon-match over HTTPS; enables one-click unsubscribe links
    public_url: str | None = None
    portal_base_url: str = "https://api.tech.ec.europa.eu/search-api/prod/rest/search"
    topic_details_base_url: str = (
        "https://ec.europa.eu/info/funding-tenders/opportunities/data/topicDetails"
    )
    extra: dict = field(default_factory=dict)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)


def default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'horizon-match.db'}"


def normalise_db_url(url: str) -> str:
    """Accept a bare file path or a SQLAlchemy URL; prefer the psycopg 3 driver for postgres."""
    if "://" not in url:
        if not url.endswith((".db", ".sqlite", ".sqlite3")):
            raise ConfigError(
                f"database {url!r} is neither a SQLAlchemy URL (sqlite:///file.db, "
                "postgresql://host/db) nor a .db/.sqlite file path; give one of those"
            )
        return f"sqlite:///{Path(url).resolve()}"
    scheme = url.split("://", 1)[0]
    if scheme in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if not scheme.startswith(("sqlite", "postgresql")):
        raise ConfigError(
            f"unsupported database scheme {scheme!r}; use sqlite:///path.db or postgresql://..."
        )
    return url


def load_settings(env: Mapping[str, str], db: str | None = None, **overrides: object) -> Settings:
    """Build settings from explicit options, then environment variables, then defaults."""
    data_dir = Path(env.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR)
    url = db or env.get(ENV_DB) or default_db_url(data_dir)
    settings = Settings(
        db_url=normalise_db_url(url),
        data_dir=data_dir,
        model=env.get(ENV_MODEL) or DEFAULT_MODEL,
        smtp_url=env.get(ENV_SMTP_URL) or None,
        secret=env.get(ENV_SECRET) or "change-me",
        sender=env.get(ENV_SENDER) or Settings.sender,
        reply_to=env.get(ENV_REPLY_TO) or None,
        public_url=env.get(ENV_PUBLIC_URL) or None,
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.with_(**clean) if clean else settings
