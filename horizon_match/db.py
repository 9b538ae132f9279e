"""Opening the database: engine, schema upgrade through migrations, sessions.

SQLite (a file under data/) is the zero-setup default; PostgreSQL works through the same
SQLAlchemy URL. Opening a database always brings its schema up to date, so an old file keeps
working after an upgrade of horizon-match.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from horizon_match.errors import DatabaseError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers (a web page, `members list`) work while the weekly job writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _create_engine(url: str, **options: object) -> Engine:
    try:
        return create_engine(url, **options)
    except ImportError as exc:  # e.g. postgresql+psycopg2:// without psycopg2 installed
        raise DatabaseError(
            f"the database driver for {url.split('://', 1)[0]!r} is not installed "
            f"({exc.name or exc}); use sqlite:///file.db or postgresql://... (psycopg 3, "
            "installed with horizon-match)"
        ) from exc
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"the database URL is not valid ({exc}); use sqlite:///file.db or "
            "postgresql://user@host/dbname"
        ) from exc


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = _create_engine(url)
        path = engine.url.database  # without the ?query part of the URL
        if not path or path == ":memory:":
            # one in-memory database for every thread (the matcher prepares members in a
            # worker thread): SQLAlchemy's default would give each thread its own, empty one
            engine.dispose()
            engine = _create_engine(url, poolclass=StaticPool,
                                    connect_args={"check_same_thread": False})
        if path and path != ":memory:" and not path.startswith("file:"):
            folder = Path(path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                engine.dispose()
                raise DatabaseError(
                    f"cannot create the folder {folder} for the database file {path} "
                    f"({exc.strerror}); check the --db path (or HORIZON_MATCH_DB)"
                ) from exc
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return _create_engine(url, pool_pre_ping=True)


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    return script.get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every pending migration (a fresh database gets the whole schema)."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(_alembic_config(engine))
    if current is not None and current not in {r.revision for r in script.walk_revisions()}:
        raise DatabaseError(
            f"the database schema is at revision {current}, which this version of horizon-match "
            "does not know (it was made by a newer version); upgrade horizon-match"
        )
    command.upgrade(_alembic_config(engine), "head")


class Database:
    """An opened, up-to-date database. Use `session()` for a unit of work."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            if migrate:
                upgrade(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            reason = " ".join(str(exc.orig).split())
            raise DatabaseError(
                f"cannot open the database {self.engine.url.render_as_string(hide_password=True)}: "
                f"{reason}; check the --db URL (or HORIZON_MATCH_DB) and that the server runs"
            ) from exc
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back whole on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    try:
        return Database(url)
    except SQLAlchemyError as exc:
        # the driver's own message, without SQLAlchemy's statement and "Background" lines
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise DatabaseError(
            f"cannot open the database: {reason}; check the --db URL (or HORIZON_MATCH_DB)"
        ) from exc
