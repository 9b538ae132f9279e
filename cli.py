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


@main.group(cls=Group)
def members() -> None:
    """Import, export, list, show and remove member profiles."""


@members.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def members_import(app: App, file: Path) -> None:
    """Import member profiles from FILE (.csv, .jsonl, .yaml/.yml, optionally .gz).

    Members are matched by id: new ids are created, known ids updated, never duplicated.
    The file is checked whole first; on any problem every problem is listed as
    file:line: field: what is wrong, and nothing is written.
    """
    from horizon_match.members import import_members

    click.echo(str(import_members(app.db, file)))


@members.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "yaml"]),
    help="Output format. Default: from the --output file name, else jsonl.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (a .gz name compresses) instead of standard output.",
)
@pass_app
def members_export(app: App, fmt: str | None, output: Path | None) -> None:
    """Export every member profile; importing the output gives the same members back.

    CSV has no column for past projects: use jsonl or yaml for a complete copy.
    """
    from horizon_match.members import export_members, write_members_file

    if output is None:
        export_members(app.db, sys.stdout, fmt or "jsonl")
    else:
        count = write_members_file(app.db, output, fmt)
        click.echo(f"{count} member(s) written to {output}", err=True)


@members.command("list")
@pass_app
def members_list(app: App) -> None:
    """List members with country, type, size, PIC and project counts."""
    from horizon_match.members import list_members

    rows = list_members(app.db)
    for row in rows:  # echo_table shows 0 as blank; a count of 0 is information here
        for key in ("emails", "own_projects", "cordis_projects"):
            row[key] = str(row[key])
    if not rows:
        click.echo("no members yet; add some with `horizon-match members import FILE`", err=True)
    echo_table(
        rows,
        ["id", "name", "country", "type", "size", "pic", "emails", "own_projects", "cordis_projects"],
    )


@members.command("show")
@click.argument("member_id", metavar="ID")
@pass_app
def members_show(app: App, member_id: str) -> None:
    """Show one member's profile and track record (own past projects and CORDIS projects
    found through its PIC)."""
    from horizon_match.members import show_member

    click.echo(show_member(app.db, member_id).as_text())


@members.command("remove")
@click.argument("member_id", metavar="ID")
@pass_app
def members_remove(app: App, member_id: str) -> None:
    """Remove member ID and its own past projects (its matches and deliveries go too).

    The organisation row stays when CORDIS projects refer to it.
    """
    from horizon_match.members import remove_member

    click.echo(str(remove_member(app.db, member_id)))


# --- cordis -------------------------------------------------------------------------------


@main.group(cls=Group)
def cordis() -> None:
    """CORDIS projects: the partner pool and the members' track record."""


@cordis.command("import")
@click.argument("folder", type=click.Path(path_type=Path))
@pass_app
def cordis_import(app: App, folder: Path) -> None:
    """Import a CORDIS folder: projects.csv, organizations.csv, project_euroscivoc.csv.

    Reads the files as CORDIS publishes them (`;`-separated, project.csv, organization.csv,
    euroSciVoc.csv) or comma-separated, plain or .csv.gz. Everything is checked first; bad
    input writes nothing. Importing the same folder again changes nothing.
    """
    from horizon_match.cordis import import_cordis

    s = import_cordis(app.db, folder, progress=app.progress())
    click.echo(
        f"imported {s.projects} projects ({s.projects_created} new), "
        f"{s.organisations} organisations ({s.organisations_created} new), "
        f"{s.participations} participations ({s.participations_removed} removed"
        + (f", {s.merged_rows} repeated rows merged" if s.merged_rows else "")
        + "), "
        f"{s.fields} fields ({s.fields_removed} removed) in {s.seconds:.1f} s"
    )

# --- calls --------------------------------------------------------------------------------

# --- match / matches / evaluate -----------------------------------------------------------

# --- consortia ----------------------------------------------------------------------------

# --- run / runs / digest ------------------------------------------------------------------

# --- demo ---------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--force",
    is_flag=True,
    help="With --db: load the demo even if that database already holds members.",
)
@click.pass_context
def demo_command(ctx: click.Context, force: bool) -> None:
    """Build a fresh demo database (data/demo.db) and show what it holds.

    It loads the shipped demo data: Genoa organisations found in CORDIS with their projects,
    a few fictional SMEs described in Italian, and the live 2026-27 Horizon Europe topics.
    Your own database is never touched unless you name it with --db.
    """
    from horizon_match.demo import run_demo

    app = ctx.find_object(App)
    given_db = ctx.find_root().params.get("db")
    report = run_demo(
        app.settings, explicit_db=given_db is not None, force=force, progress=app.progress()
    )
    click.echo(f"database      {report.db_url}" + ("  (created anew)" if report.fresh else ""))
    by_type = ", ".join(f"{k} {v}" for k, v in report.members_by_type.items())
    by_lang = ", ".join(f"{k} {v}" for k, v in report.members_by_language.items())
    click.echo(f"members       {report.members} ({by_type}; languages: {by_lang})")
    click.echo(
        f"organisations {report.organisations} "
        f"({report.member_organisations_with_projects} members with CORDIS projects)"
    )
    click.echo(
        f"projects      {report.projects} from CORDIS, {report.member_projects} from member files"
    )
    by_status = ", ".join(f"{k} {v}" for k, v in report.calls_by_status.items())
    click.echo(f"calls         {report.calls} ({by_status})")
    if report.next_deadlines:
        click.echo("next deadlines")
        for d in report.next_deadlines:
            title = d.title if len(d.title) <= 60 else d.title[:57] + "..."
            click.echo(f"  {d.at:%Y-%m-%d}  {d.identifier}  {title}")
    shown = given_db
    if report.db_path is not None:
        try:
            shown = str(report.db_path.relative_to(Path.cwd()))
        except ValueError:
            shown = str(report.db_path)
    click.echo(f"explore it:   horizon-match --db {shown} members list")


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
