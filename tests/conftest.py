"""Shared fixtures: a real database on every backend, paths to the real shared data.

Every test that takes `db` (or `db_url`) runs on SQLite and on PostgreSQL. PostgreSQL tests
need the server on 127.0.0.1:5432 (database `test`); outside CI they are skipped when it does
not answer, in CI (CI=true) they fail, so a green CI means both backends passed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from horizon_match.db import Database

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_URL = os.environ.get("HORIZON_MATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_or_skip() -> None:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but {PG_URL} does not answer")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, private schema dropped afterwards."""
    pg_or_skip()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"the shared data folder {SHARED} is missing (it sits beside the repository)")
    return SHARED


@pytest.fixture
def cordis_dev(shared: Path) -> Path:
    return shared / "data" / "cordis_dev"


@pytest.fixture
def portal_fixtures(shared: Path) -> Path:
    return shared / "fixtures" / "ft_portal"
