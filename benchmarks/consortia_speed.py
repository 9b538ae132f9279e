"""Speed and memory of `consortia suggest`: 500 calls against a pool of 30,000 organisations.

    python benchmarks/consortia_speed.py [--db sqlite:///data/bench-consortia-speed.db]
        [--calls 500] [--organisations 30000] [--leads 3]

Builds (once; later runs reuse the database) a club of the 27 demo members, a partner pool of
the CORDIS dev projects plus synthetic copies of them under new PICs until the pool holds
--organisations organisations (a copy keeps the project text, so its vector comes from the
cache, and gets a new id, new PICs and the same team structure), and --calls open calls (the
468 live topics of ../shared/data/cordis_dev, repeated under new identifiers to reach the
number). Each call gets three matched members (a stored match run, as the weekly job leaves
one). A first, untimed `suggest_consortia` fills the embedding cache; the second one is timed
(wall clock, CPU time, peak RSS of the process).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import resource
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, select

from horizon_match.config import Settings
from horizon_match.consortia import suggest_consortia
from horizon_match.cordis import import_cordis
from horizon_match.db import Database
from horizon_match.embedding import load_embedder
from horizon_match.ingest import import_call_files
from horizon_match.members import import_members
from horizon_match.partner_pool import load_pool
from models.tables import Call, Match, Member, Organisation, Run

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "cordis_dev"
WORK = ROOT / "data" / "bench" / "consortia"
AS_OF = date(2026, 3, 1)


def synthetic_cordis(folder: Path, copies: int) -> None:
    """The dev folder plus `copies` copies of every project with new ids and new PICs."""
    folder.mkdir(parents=True, exist_ok=True)
    with (DEV / "projects.csv").open(newline="", encoding="utf-8") as fh:
        projects = list(csv.reader(fh))
    with (DEV / "organizations.csv").open(newline="", encoding="utf-8") as fh:
        orgs = list(csv.reader(fh))
    ph, oh = projects[0], orgs[0]
    pid, oid, opid = ph.index("id"), oh.index("organisationID"), oh.index("projectID")
    with gzip.open(folder / "projects.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ph)
        for c in range(copies + 1):
            for row in projects[1:]:
                row = list(row)
                if c:
                    row[pid] = f"{c}{row[pid]}"
                w.writerow(row)
    with gzip.open(folder / "organizations.csv.gz", "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(oh)
        for c in range(copies + 1):
            for row in orgs[1:]:
                row = list(row)
                if c:
                    row[opid] = f"{c}{row[opid]}"
                    row[oid] = f"{c}{row[oid]:0>9}"
                w.writerow(row)


def calls_file(path: Path, n: int) -> None:
    topics = [json.loads(line) for line in (DEV / "live_topics_2026_2027.jsonl").open(encoding="utf-8")]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            t = topics[i % len(topics)]
            suffix = "" if i < len(topics) else f"-COPY{i // len(topics)}"
            fh.write(json.dumps({
                "identifier": t["topic"] + suffix, "title": t["title"],
                "call_identifier": t.get("callIdentifier"), "call_title": t.get("callTitle"),
                "programme": "HORIZON", "description": t.get("description") or "",
                "opening_date": "2026-01-01T00:00:00",
                "deadlines": [{"at": "2026-12-31T17:00:00", "stage": 1}],
                "type_of_action": t.get("typesOfAction"), "source": "bench",
            }) + "\n")


def build(db: Database, calls: int, organisations: int, leads: int) -> None:
    with db.session() as s:
        if s.scalar(select(func.count()).select_from(Call)) >= calls:
            return
    copies = 0
    while True:  # each copy adds ~the dev pool's beneficiaries (10,051)
        if 10051 * (copies + 1) >= organisations:
            break
        copies += 1
    folder = WORK / f"cordis_x{copies + 1}"
    if not (folder / "projects.csv.gz").exists():
        synthetic_cordis(folder, copies)
    t = time.perf_counter()
    import_cordis(db, folder)
    import_members(db, ROOT / "data" / "demo" / "members.jsonl")
    path = WORK / f"calls_{calls}.jsonl"
    calls_file(path, calls)
    import_call_files(db, [path], now=datetime(2026, 3, 1))
    rng = random.Random(0)
    with db.session() as s:
        members = sorted(s.scalars(select(Member.id)))
        run = Run(kind="match", status="done", started_at=datetime(2026, 3, 1), options={}, stats={}, errors=[])
        s.add(run)
        s.flush()
        for call_id in s.scalars(select(Call.id)):
            for rank, m in enumerate(rng.sample(members, leads), 1):
                s.add(Match(run_id=run.id, member_id=m, call_id=call_id, score=1.0 / rank, rank=rank))
    print(f"built the database in {time.perf_counter() - t:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=f"sqlite:///{ROOT / 'data' / 'bench-consortia-speed.db'}")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--organisations", type=int, default=30000)
    ap.add_argument("--leads", type=int, default=3)
    ap.add_argument("--skip-warmup", action="store_true", help="the cache is known to be full")
    args = ap.parse_args()
    db = Database(args.db)
    build(db, args.calls, args.organisations, args.leads)
    settings = Settings(db_url=args.db)
    embedder = load_embedder(settings)
    pool = load_pool(db)
    with db.session() as s:
        n_orgs = s.scalar(select(func.count()).select_from(Organisation))
    print(f"pool: {len(pool)} organisations ({n_orgs} stored), {len(pool.projects)} projects",
          flush=True)
    if not args.skip_warmup:
        t = time.perf_counter()
        suggest_consortia(db, settings, embedder=embedder, as_of=AS_OF, leads_per_call=args.leads)
        print(f"warm-up run (fills the embedding cache): {time.perf_counter() - t:.0f} s", flush=True)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    summary = suggest_consortia(db, settings, embedder=embedder, as_of=AS_OF,
                                leads_per_call=args.leads)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "calls": summary.calls, "teams": summary.suggestions, "eligible": summary.eligible,
        "pool_organisations": summary.pool_organisations, "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1), "peak_rss_mib": round(peak),
    }))


if __name__ == "__main__":
    main()
