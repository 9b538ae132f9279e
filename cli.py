"""The horizon-match command line: parse options, call one library function, print.

Library errors (horizon_match.errors.HorizonMatchError) become one clear message and exit 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from horizon_match.config import Settings, load_settings
from horizon_match.db import Database, open_database
from horizon_match.errors import HorizonMatchError


class TerminalProgress:
    """A progress bar on stderr when it is a terminal; silent in a pipe or under cron."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._enabled = sys.stderr.isatty()

    def start(self, label: str, total: int | None) -> None:
        if self._enabled:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self._bar.__enter__()

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


class App:
    """What every command gets: the settings, and the database opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = open_database(self.settings.db_url)
        return self._db

    def progress(self) -> TerminalProgress:
        return TerminalProgress()


class Group(click.Group):
    """Turns library errors into one sentence on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HorizonMatchError as exc:
            raise click.ClickException(str(exc)) from exc


pass_app = click.make_pass_decorator(App)


@click.group(cls=Group)
@click.option(
    "--db",
    metavar="URL",
    help="Database: a SQLAlchemy URL (sqlite:///file.db, postgresql://host/db) or a .db path. "
    "Default: $HORIZON_MATCH_DB, else data/horizon-match.db.",
)
@click.version_option(package_name="horizon-match")
@click.pass_context
def main(ctx: click.Context, db: str | None) -> None:
    """Match EU Horizon calls to club members, propose consortia, email the results."""
    try:
        ctx.obj = App(load_settings(os.environ, db=db))
    except HorizonMatchError as exc:
        raise click.ClickException(str(exc)) from exc


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as aligned columns (plain text, pipe friendly)."""
    if not rows:
        return
    widths = {c: max(len(c), *(len(str(r.get(c, "") or "")) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        click.echo("  ".join(str(r.get(c, "") or "").ljust(widths[c]) for c in columns).rstrip())


# --- members ------------------------------------------------------------------------------

# --- cordis -------------------------------------------------------------------------------

# --- calls --------------------------------------------------------------------------------

# --- match / matches / evaluate -----------------------------------------------------------

# --- consortia ----------------------------------------------------------------------------

# --- run / runs / digest ------------------------------------------------------------------

# --- demo ---------------------------------------------------------------------------------


@main.group(cls=Group)
def db() -> None:
    """Inspect or upgrade the database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Bring the database schema up to date (every command also does this on open)."""
    from horizon_match.db import current_revision

    click.echo(f"schema at revision {current_revision(app.db.engine)}")


if __name__ == "__main__":
    main()
