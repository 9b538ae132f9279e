"""The horizon-match command line: parse options, call one library function, print.

Library errors (horizon_match.errors.HorizonMatchError) become one clear message and exit 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

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
        except SQLAlchemyError as exc:
            # A database error the library did not foresee: one sentence, not a traceback.
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(
                f"the database refused the operation ({type(exc).__name__}: {detail}); "
                "nothing from this step was saved; check the input, or report this as a bug"
            ) from exc


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
    columns = ["id", "name", "country", "type", "size", "pic", "emails"]
    echo_table(rows, columns + ["own_projects", "cordis_projects"])


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

AS_OF = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])
CALL_STATUSES = ["open", "forthcoming", "closed"]


def as_of_option(func: Any) -> Any:
    return click.option(
        "--as-of", type=AS_OF, default=None,
        help="Work out statuses as of this date (UTC), not now. Example: 2026-06-01.",
    )(func)


def echo_ingest_summary(summary: Any) -> None:
    click.echo(summary.describe())
    if summary.pages:
        click.echo(
            f"search: {summary.pages} page(s), "
            + ("complete" if summary.complete else "incomplete (nothing marked missing)")
            + f"; topic details read: {summary.details_fetched}; requests: {summary.requests}"
        )
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)


@main.group(cls=Group)
def calls() -> None:
    """Fetch call topics from the EU Funding & Tenders portal; import, list, show, export."""


@calls.command("scrape")
@click.option("--programme", "programmes", multiple=True, default=["HORIZON", "H2020"],
              show_default=True, help="HORIZON (Horizon Europe), H2020, or a numeric "
              "frameworkProgramme id; repeat for several.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(CALL_STATUSES),
              default=["open", "forthcoming"], show_default=True,
              help="Portal statuses to ask for; add `--status closed` for history.")
@click.option("--cascade", is_flag=True, help="Also fetch cascade-funding calls (type 8).")
@click.option("--keyword", help="Only topics matching this phrase (marks nothing missing).")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep every raw response in DIR (replayable with --replay).")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run offline from the responses saved in DIR.")
@click.option("--base-url", metavar="URL", help="Serve both endpoints from URL (a mirror or "
              "a test server): URL/search-api/prod/rest/search and "
              "URL/info/funding-tenders/opportunities/data/topicDetails/<id>.json.")
@click.option("--delay", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Seconds between two requests.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds to wait for one answer.")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Retries of a failed request (429/5xx/timeout/cut body), with backoff.")
@click.option("--page-size", type=click.IntRange(1, 100), default=100, show_default=True)
@click.option("--refresh-details", is_flag=True,
              help="Read every topic's details again, even when its listing did not change.")
@as_of_option
@pass_app
def calls_scrape(app: App, programmes: tuple[str, ...], statuses: tuple[str, ...],
                 cascade: bool, keyword: str | None, save_dir: Path | None,
                 replay_dir: Path | None, base_url: str | None, delay: float, timeout: float,
                 retries: int, page_size: int, refresh_details: bool, as_of: Any) -> None:
    """Fetch the calls in scope from the portal and store them.

    Topic details are read only for new topics and topics whose listing changed. Changes of
    stored calls are recorded; calls that a complete scrape no longer finds are marked
    missing, never deleted. Example: horizon-match calls scrape --save data/cache/portal
    """
    from horizon_match.ingest import ScrapeOptions, scrape

    options = ScrapeOptions(
        programmes=programmes, statuses=statuses, cascade=cascade, keyword=keyword,
        page_size=page_size, delay=delay, timeout=timeout, attempts=retries + 1,
        save_dir=save_dir, replay_dir=replay_dir, base_url=base_url,
        refresh_details=refresh_details, now=as_of,
    )
    echo_ingest_summary(scrape(app.db, app.settings, options, app.progress()))


@calls.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@as_of_option
@pass_app
def calls_import(app: App, files: tuple[Path, ...], as_of: Any) -> None:
    """Import saved search pages, topic-details files and normalized .jsonl call files.

    All files are checked first and stored in one transaction; statuses are derived from
    the dates. Example: horizon-match calls import data/demo/calls.jsonl
    """
    from horizon_match.ingest import import_call_files

    echo_ingest_summary(import_call_files(app.db, list(files), now=as_of))


@calls.command("list")
@click.option("--status", type=click.Choice(CALL_STATUSES), help="Only calls in this status.")
@click.option("--before", type=AS_OF, help="Next deadline before this date.")
@click.option("--after", type=AS_OF, help="Next deadline on or after this date.")
@click.option("--programme", help="e.g. HORIZON")
@click.option("--text", help="Text in the identifier, title, description or keywords.")
@click.option("--hide-missing", is_flag=True, help="Leave out calls gone from the portal.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many calls.")
@as_of_option
@pass_app
def calls_list(app: App, status: str | None, before: Any, after: Any, programme: str | None,
               text: str | None, hide_missing: bool, limit: int | None, as_of: Any) -> None:
    """List stored calls, soonest deadline first."""
    from horizon_match.calls import CallFilter, list_calls

    filters = CallFilter(status=status, deadline_before=before, deadline_after=after,
                         programme=programme, text=text, include_missing=not hide_missing,
                         limit=limit)
    rows = list_calls(app.db, filters, now=as_of)
    if not rows:
        click.echo("no calls match; fetch some with `horizon-match calls scrape` or "
                   "`horizon-match calls import FILE`", err=True)
    echo_table(rows, ["identifier", "status", "deadline", "programme", "type", "budget",
                      "title"])


@calls.command("show")
@click.argument("identifier", metavar="ID")
@as_of_option
@pass_app
def calls_show(app: App, identifier: str, as_of: Any) -> None:
    """Show everything stored about call topic ID, with its change history."""
    from horizon_match.calls import show_call

    click.echo(show_call(app.db, identifier, now=as_of))


@calls.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="jsonl is the normalized format `calls import` reads.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Write to this file instead of standard output.")
@click.option("--status", type=click.Choice(CALL_STATUSES), help="Only calls in this status.")
@click.option("--programme", help="e.g. HORIZON")
@as_of_option
@pass_app
def calls_export(app: App, fmt: str, output: Any, status: str | None, programme: str | None,
                 as_of: Any) -> None:
    """Export stored calls as normalized JSONL or CSV."""
    from horizon_match.calls import CallFilter, export_calls

    count = export_calls(app.db, output, fmt, CallFilter(status=status, programme=programme),
                         now=as_of)
    click.echo(f"{count} call(s) exported", err=True)


# --- match / matches / evaluate -----------------------------------------------------------


@main.command("match")
@click.option("--member", "member_ids", multiple=True, metavar="ID",
              help="Match only this member (repeatable). Default: every member.")
@click.option("--top", "top_k", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many calls to keep per member.")
@as_of_option
@pass_app
def match_command(app: App, member_ids: tuple[str, ...], top_k: int, as_of: Any) -> None:
    """Match members against the open and forthcoming calls and store the ranked matches."""
    from horizon_match.matching import run_matching

    summary = run_matching(
        app.db, app.settings, member_ids=list(member_ids) or None, top_k=top_k,
        as_of=as_of, progress=app.progress(),
    )
    click.echo(summary.describe())
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    for member_id, reasons in summary.hidden.items():
        hidden = {k: v for k, v in reasons.items() if k != "closed"}
        if hidden:
            parts = ", ".join(f"{n} by {why}" for why, n in sorted(hidden.items()))
            click.echo(f"{member_id}: {sum(hidden.values())} calls hidden by your preferences ({parts})")


@main.group(cls=Group)
def matches() -> None:
    """Read the stored matches."""


@matches.command("list")
@click.option("--member", "member_id", metavar="ID", help="Only this member's matches.")
@click.option("--run", "run_id", type=int, help="A given run (default: the latest).")
@pass_app
def matches_list(app: App, member_id: str | None, run_id: int | None) -> None:
    """List matches, best first, with deadline and the reason in one line."""
    from horizon_match.matching import list_matches

    rows = list_matches(app.db, member_id=member_id, run_id=run_id)
    if not rows:
        click.echo("no matches stored yet; run `horizon-match match` first", err=True)
        return
    for r in rows:
        r["title"] = r["title"][:70]
        r["explanation"] = r["explanation"][:90]
    echo_table(rows, ["member", "rank", "score", "call", "deadline", "title", "explanation"])


@matches.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--member", "member_id", metavar="ID", help="Only this member's matches.")
@click.option("--run", "run_id", type=int, help="A given run (default: the latest).")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="Write here instead of standard output.")
@pass_app
def matches_export(app: App, fmt: str, member_id: str | None, run_id: int | None, output: Any) -> None:
    """Export matches (member, call, score, rank, deadline, explanation) as JSONL or CSV."""
    from horizon_match.matching import export_matches

    n = export_matches(app.db, output, fmt, member_id=member_id, run_id=run_id)
    click.echo(f"{n} matches exported", err=True)


@main.group(cls=Group)
def evaluate() -> None:
    """Measure matching quality on real outcomes (CORDIS), train the ranker."""


@evaluate.command("cordis")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--task", type=click.Choice(["a", "b"]), default="a", show_default=True,
              help="a: which topic did the organisation win (topic matching); "
              "b: who were the coordinator's partners (consortium suggestions).")
@click.option("--rankings", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one JSON line per query: query_id and the 100 best topic ids "
              "(task b: the 50 best partner PICs, as \"ranked\").")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N queries.")
@click.option("--folds", type=click.IntRange(min=2),
              help="Re-train the ranker on K folds of target topics and rank each fold with the "
              "model that never saw it (held-out numbers).")
@click.option("--ablation", is_flag=True,
              help="With --folds: also train and evaluate the ranker on subsets of the signals.")
@click.option("--ranker", "ranker_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A ranker file (default: the shipped one); with --task b, a partner ranking "
              "model (benchmarks/consortia_train_ranker.py --out).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def evaluate_cordis_command(app: App, folder: Path, task: str, rankings: Path | None,
                            limit: int | None, folds: int | None, ablation: bool,
                            ranker_path: Path | None, as_json: bool) -> None:
    """Rank each query's candidate topics with the matcher; print MRR and Recall@1/5/10.

    With --task b: rank partner organisations for each query's topic and coordinator with the
    consortium suggester; print Recall@10/20/50 and nDCG@20 of it, its ablations and two
    baselines."""
    import json

    if task == "b":  # --- consortia: task b -----------------------------------------------
        from horizon_match.consortia_eval import evaluate_partners
        from horizon_match.partner_ranking import VARIANTS
        from horizon_match.tree_model import load_models

        if folds:
            raise click.UsageError("--folds applies to task a; the task b model is "
                                   "cross-fitted already (see BENCHMARKS.md)")
        # --ranker: a partner ranking model file (benchmarks/consortia_train_ranker.py --out),
        # scored instead of the shipped one; the feature sets it holds are evaluated
        models = load_models(ranker_path) if ranker_path else None
        variants = tuple(v for v in VARIANTS if models is None or v in models)
        if not variants:
            raise click.UsageError(f"{ranker_path}: no feature set of {', '.join(VARIANTS)} "
                                   "in this partner ranking model")
        result = evaluate_partners(app.db, app.settings, folder, rankings=rankings, limit=limit,
                                   variants=variants, progress=app.progress(), models=models)
        click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.as_text())
        return

    from horizon_match.evaluation import evaluate_cordis
    from horizon_match.ranker import RankerModel

    model = RankerModel.load(ranker_path) if ranker_path else None
    report = evaluate_cordis(app.db, app.settings, folder, task=task, limit=limit,
                             rankings=rankings, model=model, folds=folds, ablation=ablation,
                             progress=app.progress())
    click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.table())


@evaluate.command("train-ranker")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save it (default: the shipped horizon_match/artefacts/matching_ranker.npz).")
@click.option("--hidden", type=click.IntRange(min=0), default=32, show_default=True,
              help="Hidden units of the scoring network (0: linear).")
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True)
@pass_app
def evaluate_train_ranker(app: App, folder: Path, output: Path | None, hidden: int,
                          epochs: int) -> None:
    """Train the matching ranker on a CORDIS folder's outcomes (task A queries) and save it."""
    from horizon_match.evaluation import train_ranker_from_cordis
    from horizon_match.ranker import DEFAULT_RANKER_PATH
    from horizon_match.training import TrainingOptions

    target = output or DEFAULT_RANKER_PATH
    model = train_ranker_from_cordis(app.db, app.settings, folder, target,
                                     options=TrainingOptions(hidden=hidden, epochs=epochs),
                                     progress=app.progress())
    click.echo(f"ranker trained on {model.meta.get('examples')} examples, saved to {target}")

# --- consortia ----------------------------------------------------------------------------


@main.group(cls=Group)
def consortia() -> None:
    """Suggest teams (consortia) for calls, list and export them."""


@consortia.command("suggest")
@click.option("--call", "calls", multiple=True, metavar="ID",
              help="Topic identifier; repeat for several. Default: every open or forthcoming "
              "call some member was matched to in the latest matching run.")
@click.option("--lead", metavar="MEMBER", help="Build teams led by this member only.")
@click.option("--size", type=int, metavar="N",
              help="Organisations per team, lead included. Default: by type of action "
              "(7 for RIA/IA, 5 for CSA, 1 for single-beneficiary grants).")
@click.option("--exclude", multiple=True, metavar="MEMBER",
              help="Never propose this member (e.g. no capacity); repeat for several. Members "
              "with exclude_from_consortia in their preferences are always left out.")
@click.option("--leads", "leads_per_call", type=int, default=3, show_default=True,
              help="Teams per call: one per lead, the best matched members first.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Treat this date as today when deciding which calls are still open.")
@click.option("--json", "as_json", is_flag=True, help="Print the teams as JSON lines.")
@pass_app
def consortia_suggest(app: App, calls: tuple[str, ...], lead: str | None, size: int | None,
                      exclude: tuple[str, ...], leads_per_call: int, as_of: Any,
                      as_json: bool) -> None:
    """Propose ranked teams for calls and store them as a new run.

    Each team starts from a club member that matches the call (the coordinator), adds club
    members that bring a missing competence, and external partners with an EU track record
    (from imported CORDIS data) for the rest and for the countries eligibility needs. Each
    partner comes with the aspects of the call it covers; each team says what is still
    missing.
    """
    import json as _json

    from horizon_match.consortia import suggest_consortia

    summary = suggest_consortia(
        app.db, app.settings, call_ids=list(calls) or None, lead=lead, size=size,
        exclude_members=exclude, leads_per_call=leads_per_call, as_of=as_of,
        progress=app.progress(),
    )
    for team in summary.teams:
        click.echo(_json.dumps(team.as_dict(), ensure_ascii=False) if as_json else team.as_text())
        if not as_json:
            click.echo("")
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"run {summary.run_id}: {summary.suggestions} team(s) for {summary.calls} call(s), "
        f"{summary.eligible} eligible; pool of {summary.pool_organisations} organisations "
        f"({summary.seconds:.1f} s)",
        err=as_json,
    )


@consortia.command("list")
@click.option("--call", "call", required=True, metavar="ID", help="Topic identifier.")
@click.option("--run", "run_id", type=int, help="Run id. Default: the latest run with teams for the call.")
@pass_app
def consortia_list(app: App, call: str, run_id: int | None) -> None:
    """Show the stored teams for one call."""
    from horizon_match.consortia import list_suggestions

    views = list_suggestions(app.db, call, run_id=run_id)
    if not views:
        click.echo(f"no teams stored for {call}; run `horizon-match consortia suggest --call {call}`")
        return
    click.echo("\n\n".join(v.as_text() for v in views))


@consortia.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="jsonl: one team per line; csv: one partner per line.")
@click.option("--run", "run_id", type=int, help="Run id. Default: the latest run with teams.")
@click.option("--call", metavar="ID", help="Only the teams of this call.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Write to this file instead of standard output.")
@pass_app
def consortia_export(app: App, fmt: str, run_id: int | None, call: str | None, output: Any) -> None:
    """Export stored teams (who, role, country, type, aspects covered, what is missing)."""
    from horizon_match.consortia import export_suggestions

    count = export_suggestions(app.db, output, fmt, run_id=run_id, call=call)
    click.echo(f"{count} team(s) exported", err=True)


# --- run / runs / digest ------------------------------------------------------------------

WEEK_DAY = click.DateTime(formats=["%Y-%m-%d"])


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _counts_line(counts: dict[str, Any], limit: int = 8) -> str:
    shown = [f"{k}={v}" for k, v in counts.items() if v not in (None, "", 0, False)]
    return " ".join(shown[:limit])


def echo_send_report(send: Any) -> None:
    if send.dry_run:
        click.echo(f"dry run: {len(send.previews)} file(s) written, nothing sent or recorded")
    else:
        click.echo(
            f"emails: {send.sent} sent, {send.failed} refused, {send.left_pending} left pending, "
            f"{send.cancelled} cancelled (unsubscribed)"
        )
    click.echo(
        f"composed now: {send.digests} digest(s) with {send.match_items} match(es) and "
        f"{send.reminder_items} reminder(s), {send.consortium_messages} consortium message(s); "
        f"{send.members_unsubscribed} member(s) unsubscribed, "
        f"{send.members_without_email} without an address"
    )
    for line in send.problems:
        click.echo(f"  problem: {line}")
    if send.error:
        click.echo(f"  stopped: {send.error}")


def echo_weekly_report(report: Any) -> None:
    head = "resumed run" if report.resumed else "run"
    click.echo(f"{head} {report.run_id} {report.status} in {report.seconds:.1f} s "
               f"(as of {report.as_of})")
    if report.took_over_from:
        click.echo(f"  took over the lock of a dead run ({report.took_over_from})")
    if report.abandoned_run:
        click.echo(f"  run {report.abandoned_run} had been interrupted; marked failed")
    for stage in report.stages:
        secs = f"{stage.seconds:.1f} s" if stage.seconds is not None else ""
        click.echo(f"  {stage.name:<10} {stage.status:<8} {secs:>9}  {_counts_line(stage.counts)}")
        if stage.error:
            click.echo(f"  {'':<10} error: {stage.error}")
    if report.send is not None:
        echo_send_report(report.send)


@main.command("run")
@click.option("--replay", type=click.Path(exists=True, file_okay=False, path_type=Path),
              metavar="DIR",
              help="Scrape from a folder of saved portal responses (see `calls scrape --save`) "
              "instead of the live portal.")
@click.option("--skip-scrape", is_flag=True, help="Do not scrape; use the calls already stored.")
@click.option("--as-of", type=WEEK_DAY, default=None,
              help="Treat this date (UTC) as today for deadlines and eligibility, e.g. 2026-06-01.")
@click.option("--dry-run", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write every email to DIR as .eml and .html instead of sending it.")
@click.option("--top-k", type=click.IntRange(1, 200), default=20, show_default=True,
              help="Matches kept per member.")
@click.pass_context
def run_command(ctx: click.Context, replay: Path | None, skip_scrape: bool, as_of: Any,
                dry_run: Path | None, top_k: int) -> None:
    """Run the weekly job: scrape, match, suggest consortia, send the digests.

    One run at a time (a second start stops with who holds the lock); running it twice sends
    nothing new; a run that died is resumed by the next start. Exit status 1 when a stage
    failed (see `horizon-match runs show ID`).
    """
    from horizon_match.jobs import WeeklyOptions, run_weekly

    app: App = ctx.obj
    if replay and skip_scrape:
        raise click.UsageError("--replay and --skip-scrape exclude each other")
    options = WeeklyOptions(
        replay_dir=replay, skip_scrape=skip_scrape, as_of=as_of.date() if as_of else None,
        dry_run_dir=dry_run, top_k=top_k,
    )
    report = run_weekly(app.db, app.settings, options, app.progress())
    echo_weekly_report(report)
    if not report.ok:
        ctx.exit(1)


@main.group(cls=Group)
def runs() -> None:
    """What the weekly job (and the other recorded jobs) did."""


@runs.command("list")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option("--kind", help="Only runs of this kind (weekly, digest, match, ...).")
@pass_app
def runs_list(app: App, limit: int, kind: str | None) -> None:
    """The latest runs, newest first."""
    from horizon_match.runs import list_runs

    rows = []
    for run in list_runs(app.db, limit=limit, kind=kind):
        failed = [s.name for s in run.stages if s.status == "failed"]
        rows.append({
            "id": run.id, "kind": run.kind, "status": run.status,
            "started": _when(run.started_at),
            "seconds": f"{run.seconds:.0f}" if run.seconds is not None else "",
            "as_of": run.as_of.date().isoformat() if run.as_of else "",
            "failed_stages": ",".join(failed),
        })
    if not rows:
        click.echo("no runs yet; start one with `horizon-match run`", err=True)
    echo_table(rows, ["id", "kind", "status", "started", "seconds", "as_of", "failed_stages"])


@runs.command("show")
@click.argument("run_id", type=int, metavar="ID")
@pass_app
def runs_show(app: App, run_id: int) -> None:
    """One run: its options, every stage with counts and errors, and the emails it queued."""
    from horizon_match.runs import get_run

    run = get_run(app.db, run_id)
    click.echo(f"run {run.id} ({run.kind}): {run.status}")
    click.echo(f"  started   {_when(run.started_at)} UTC")
    click.echo(f"  finished  {_when(run.finished_at) or '-'}"
               + (f" ({run.seconds:.1f} s)" if run.seconds is not None else ""))
    if run.as_of:
        click.echo(f"  as of     {run.as_of.date()}")
    opts = {k: v for k, v in run.options.items() if v not in (None, False)}
    if opts:
        click.echo("  options   " + " ".join(f"{k}={v}" for k, v in opts.items()))
    for stage in run.stages:
        secs = f"{stage.seconds:.1f} s" if stage.seconds is not None else ""
        click.echo(f"  stage {stage.name:<10} {stage.status:<8} {secs:>9}")
        for key, value in stage.counts.items():
            if value is not None:
                click.echo(f"      {key}: {value}")
        for note in stage.notes:
            click.echo(f"      note: {note}")
    if run.messages:
        click.echo("  emails    " + ", ".join(f"{n} {s}" for s, n in sorted(run.messages.items())))
    if run.deliveries:
        items = sorted(run.deliveries.items())
        click.echo("  items     " + ", ".join(f"{n} {k}" for k, n in items))
    for err in run.errors:
        click.echo(f"  error in {err.get('stage')}: {err.get('error')}")


@main.group(cls=Group)
def digest() -> None:
    """Send (or preview) the members' digests without running the whole job."""


@digest.command("send")
@click.option("--dry-run", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write every email to DIR as .eml and .html; send and record nothing.")
@click.option("--as-of", type=WEEK_DAY, default=None,
              help="Treat this date (UTC) as today for deadlines and reminders.")
@click.pass_context
def digest_send(ctx: click.Context, dry_run: Path | None, as_of: Any) -> None:
    """Compose the digests due from the latest matches and send them with anything still
    pending. Every (member, call) is emailed at most once, so running it again is safe."""
    from horizon_match.jobs import send_digests_now

    app: App = ctx.obj
    result = send_digests_now(app.db, app.settings, as_of=as_of.date() if as_of else None,
                              dry_run_dir=dry_run, progress=app.progress())
    if result.run_id is not None:
        click.echo(f"run {result.run_id}")
    echo_send_report(result.send)
    if dry_run is not None:
        click.echo(f"open the .html files in {dry_run} in a browser, the .eml in a mail client")
    if not result.send.ok:
        ctx.exit(1)


@members.command("unsubscribe")
@click.argument("token")
@pass_app
def members_unsubscribe(app: App, token: str) -> None:
    """Stop all email to the member named by TOKEN (from an email's unsubscribe link or the
    subject of an unsubscribe reply)."""
    from horizon_match.deliveries import unsubscribe_member

    result = unsubscribe_member(app.db, app.settings, token)
    state = "was already unsubscribed" if result.already else "is now unsubscribed"
    click.echo(f"{result.member_id} ({result.name}) {state}; "
               f"{result.cancelled} pending email(s) cancelled")


# --- demo ---------------------------------------------------------------------------------


@main.command("demo")
@click.option(
    "--force",
    is_flag=True,
    help="With --db: load the demo even if that database already holds members.",
)
@click.option(
    "--load-only",
    is_flag=True,
    help="Only load the demo data; skip the weekly job (matching, consortia, email previews).",
)
@click.pass_context
def demo_command(ctx: click.Context, force: bool, load_only: bool) -> None:
    """Build a fresh demo database (data/demo.db) and show what it holds.

    It loads the shipped demo data: Genoa organisations found in CORDIS with their projects,
    a few fictional SMEs described in Italian, and the live 2026-27 Horizon Europe topics.
    Your own database is never touched unless you name it with --db.
    """
    from horizon_match.demo import run_demo

    app = ctx.find_object(App)
    given_db = ctx.find_root().params.get("db")
    report = run_demo(
        app.settings, explicit_db=given_db is not None, force=force, progress=app.progress(),
        weekly=not load_only,
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
    weekly = report.stages.get("weekly")
    if weekly is not None:
        click.echo("weekly job on the demo data (emails written as previews, nothing sent):")
        echo_weekly_report(weekly)
        if weekly.send is not None and weekly.send.previews:
            folder = weekly.send.previews[0].parent
            try:
                folder = folder.relative_to(Path.cwd())
            except ValueError:
                pass
            click.echo(f"read them:    open {folder}/*.html in a browser")
        click.echo(f"matches:      horizon-match --db {shown} matches list --member <id>")
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
