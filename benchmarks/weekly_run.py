"""Benchmark of the weekly job: `horizon-match run --replay` for 300 members and 2,000 calls.

    python benchmarks/weekly_run.py [--members 300] [--calls 2000] [--work data/bench/weekly]

1. prepare (not timed): a replay folder of 2,000 Horizon topics, recorded by the real scraper
   (`scrape(..., save_dir=...)`) from the local portal stand-in of tests/portal_server.py
   serving listing rows built from the 468 real live 2026-27 topics of
   ../shared/data/cordis_dev (cycled, each copy under a new identifier); a database holding
   the CORDIS dev folder (the partner pool) and 300 members made from real CORDIS
   organisations (name, country, type, PIC, a profile from their projects' objectives);
2. cold: `horizon-match --db sqlite:///... run --replay DIR --as-of 2026-01-15` in a child
   process on a copy of that database (no calls, no cached vectors), sending to a real SMTP
   server on loopback (aiosmtpd, in this process);
3. warm: the same command again on the same database (calls unchanged, vectors cached,
   everything already delivered).

Per-stage times come from the run's own record (`runs` table); peak memory is the child's
ru_maxrss (wait4). Output: a Markdown table, with the machine's load average before each run
and whether the learned matching ranker (horizon_match/artefacts/matching_ranker.npz) was
there. `--prepare-only` builds the inputs and stops (nothing timed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from portal_server import OPEN_DETAILS, PortalServer  # noqa: E402
from test_mailer import MailServer, start_server  # noqa: E402

from horizon_match.config import Settings  # noqa: E402
from horizon_match.db import Database  # noqa: E402

AS_OF = "2026-01-15"
TYPES = {"PRC": "company", "HES": "university", "REC": "research", "PUB": "public", "OTH": "other"}


def _ms(day: str, hour: int = 17) -> str:
    return f"{day}T{hour - 2:02d}:00:00.000+0000"


def listing_rows(count: int) -> list[dict]:
    topics = [json.loads(line) for line in
              (SHARED / "data/cordis_dev/live_topics_2026_2027.jsonl").open(encoding="utf-8")]
    rows = []
    for n in range(count):
        t = topics[n % len(topics)]
        copy = n // len(topics)
        ident = t["topic"] if copy == 0 else f"{t['topic']}-B{copy}"
        deadline = t.get("deadline") or "2026-09-15"
        rows.append({
            "reference": f"{8000000 + n}TOPICSen",
            "url": "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/"
                   f"opportunities/topic-details/{ident}",
            "language": "en",
            "summary": t["title"],
            "metadata": {
                "identifier": [ident],
                "title": [t["title"]],
                "type": ["1"],
                "callIdentifier": [t.get("callIdentifier") or ident],
                "callTitle": [t.get("callTitle") or ""],
                "frameworkProgramme": ["43108390"],
                "status": ["31094502"],
                "startDate": [_ms("2025-12-04", 2)],
                "deadlineDate": [_ms(deadline)],
                "deadlineModel": ["single-stage"],
                "typesOfAction": [(t.get("typesOfAction") or "HORIZON RIA").split(" ", 1)[-1]],
                "descriptionByte": [t.get("description") or t["title"]],
                "keywords": [],
                "DATASOURCE": ["SEDIA"],
                "language": ["en"],
            },
        })
    return rows


def record_replay(folder: Path, calls: int) -> None:
    from horizon_match.ingest import ScrapeOptions, scrape

    template = json.loads((SHARED / "fixtures/ft_portal" / OPEN_DETAILS).read_text("utf-8"))
    scratch = folder.parent / "record.db"
    scratch.unlink(missing_ok=True)
    db = Database(f"sqlite:///{scratch}")
    with PortalServer(listing_rows(calls), {}, template) as portal:
        summary = scrape(db, Settings(db_url=db.url), ScrapeOptions(
            save_dir=folder, base_url=portal.url, delay=0.0,
            now=datetime.fromisoformat(AS_OF + "T12:00"),
        ))
    db.close()
    scratch.unlink(missing_ok=True)
    print(f"recorded replay: {summary.describe()}", file=sys.stderr)


def member_file(path: Path, count: int) -> None:
    cordis = SHARED / "data/cordis_dev"
    objectives = {}
    with (cordis / "projects.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            objectives[row["id"]] = (row["title"], row["objective"])
    orgs: dict[str, dict] = {}
    projects: dict[str, list[str]] = defaultdict(list)
    with (cordis / "organizations.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            pic = row["organisationID"]
            orgs.setdefault(pic, row)
            projects[pic].append(row["projectID"])
    # organisations with several projects, spread over countries and types, stable order
    chosen = sorted((p for p in orgs if len(projects[p]) >= 3), key=lambda p: (
        -len(projects[p]), p))[:count]
    with path.open("w", encoding="utf-8") as out:
        for n, pic in enumerate(chosen):
            org = orgs[pic]
            texts = [objectives[p] for p in projects[pic][:3] if p in objectives]
            description = " ".join(f"{t}: {o[:600]}" for t, o in texts)
            out.write(json.dumps({
                "id": f"m{n:03d}",
                "name": org["name"][:200],
                "emails": [f"eu-office@m{n:03d}.example"],
                "country": org["country"] or "IT",
                "organisation_type": TYPES.get(org["activityType"], "other"),
                "pic": pic,
                "description": description or org["name"],
                "keywords": [],
                "preferences": {"languages": ["it"] if org["country"] == "IT" else ["en"]},
            }) + "\n")


def prepare(work: Path, members: int, calls: int) -> tuple[Path, Path]:
    from horizon_match.cordis import import_cordis
    from horizon_match.members import import_members

    work.mkdir(parents=True, exist_ok=True)
    replay = work / f"replay-{calls}"
    if not (replay / "index.jsonl").is_file():
        shutil.rmtree(replay, ignore_errors=True)
        record_replay(replay, calls)
    base = work / f"base-{members}.db"
    if not base.is_file():
        member_file(work / "members.jsonl", members)
        db = Database(f"sqlite:///{base}")
        import_cordis(db, SHARED / "data/cordis_dev")
        import_members(db, work / "members.jsonl")
        db.close()
    return replay, base


def run_child(db_file: Path, replay: Path, smtp_url: str) -> tuple[float, int, str]:
    env = {**os.environ, "HORIZON_MATCH_SMTP_URL": smtp_url,
           "HORIZON_MATCH_SECRET": "benchmark-secret", "HORIZON_MATCH_SENDER":
           "calls@club.example.org"}
    cmd = [sys.executable, "-m", "cli", "--db", f"sqlite:///{db_file}", "run",
           "--replay", str(replay), "--as-of", AS_OF]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss // 1024, out


def stage_times(db_file: Path) -> dict[str, float]:
    """Seconds per stage of the latest weekly run, plus its status and stage errors."""
    from horizon_match.runs import list_runs

    db = Database(f"sqlite:///{db_file}")
    run = list_runs(db, limit=1, kind="weekly")[0]
    db.close()
    times: dict = {s.name: s.seconds or 0.0 for s in run.stages}
    times["status"] = run.status
    times["failed"] = ", ".join(f"{s.name}: {s.error}" for s in run.stages if s.error)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench/weekly")
    parser.add_argument("--prepare-only", action="store_true",
                        help="Build the replay folder and the base database, time nothing.")
    args = parser.parse_args()
    replay, base = prepare(args.work, args.members, args.calls)
    if args.prepare_only:
        print(f"prepared {replay} and {base}", file=sys.stderr)
        return
    from horizon_match.ranker import DEFAULT_RANKER_PATH

    ranker = DEFAULT_RANKER_PATH.is_file()
    server = MailServer()
    controller = start_server(server)
    db_file = args.work / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    shutil.copy(base, db_file)
    rows = []
    try:
        for label in ("cold", "warm"):
            before = len(server.received)
            load = os.getloadavg()
            seconds, rss, out = run_child(db_file, replay, server.url(timeout=30))
            print(out, file=sys.stderr)
            stages = stage_times(db_file)
            rows.append((label, seconds, rss, stages, len(server.received) - before, load))
    finally:
        controller.stop()
    print(f"\n{args.members} members, {args.calls} calls, SQLite, {os.cpu_count()} CPUs, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; learned matching ranker "
          f"{'present' if ranker else 'ABSENT (matching without it)'}\n")
    print("| run | total (wall) | scrape | match | consortia | digest | emails sent "
          "| peak RSS | status | load avg before (1/5/15 min) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for label, seconds, rss, st, sent, load in rows:
        print(f"| {label} | {seconds:.1f} s | {st.get('scrape', 0):.1f} s | "
              f"{st.get('match', 0):.1f} s | {st.get('consortia', 0):.1f} s | "
              f"{st.get('digest', 0):.1f} s | {sent} | {rss} MiB | {st['status']} | "
              f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} |")
    for label, _, _, st, _, _ in rows:
        if st.get("failed"):
            print(f"\n{label}: {st['failed']}")


if __name__ == "__main__":
    main()
