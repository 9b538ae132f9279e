from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import text

from cli import main
from horizon_match.db import Database, current_revision, head_revision
from models import Base


def test_fresh_database_gets_head_schema(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    assert set(Base.metadata.tables) <= set(db.table_names())


def test_migrations_produce_exactly_the_models(db: Database) -> None:
    # A model change without its migration would show up here as a diff.
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_keeps_data_and_revision(db_url: str) -> None:
    first = Database(db_url)
    with first.engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (pic, name) VALUES ('999', 'ACME')"))
    first.close()
    second = Database(db_url)
    with second.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM organisations")).scalar_one() == "ACME"
    assert current_revision(second.engine) == head_revision()
    second.close()


def test_old_database_is_upgraded(db_url: str) -> None:
    # An empty database at "no revision" is the oldest state; opening upgrades it to head.
    db = Database(db_url, migrate=False)
    assert current_revision(db.engine) is None
    db.close()
    db = Database(db_url)
    assert current_revision(db.engine) == head_revision()
    db.close()


def test_unknown_newer_revision_is_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Database(url).close()
    db = Database(url, migrate=False)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.close()
    result = CliRunner().invoke(main, ["--db", url, "db", "upgrade"])
    assert result.exit_code == 1
    assert "newer version" in result.output


def test_bad_db_url_is_one_clear_sentence() -> None:
    result = CliRunner().invoke(main, ["--db", "mysql://x/y", "db", "upgrade"])
    assert result.exit_code == 1
    assert "unsupported database scheme" in result.output
    # a ClickException exits cleanly; an uncaught error would also give exit code 1 under
    # CliRunner (and never puts a traceback in the output), so check the exception itself
    assert isinstance(result.exception, SystemExit), result.exception


def test_a_database_folder_that_cannot_be_made_is_one_clear_sentence(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["--db", str(blocker / "sub" / "x.db"), "members", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "cannot create the folder" in result.output and "--db" in result.output


def test_a_file_that_is_not_a_database_is_one_line(tmp_path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_text("hello, not SQLite\n" * 100)
    result = CliRunner().invoke(main, ["--db", str(bogus), "members", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "file is not a database" in result.output
    assert "Background on this error" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_driver_that_is_not_installed_is_one_clear_sentence() -> None:
    result = CliRunner().invoke(main, ["--db", "postgresql+nosuchdriver://u@127.0.0.1/x",
                                       "members", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "use sqlite:///file.db or postgresql://" in result.output
