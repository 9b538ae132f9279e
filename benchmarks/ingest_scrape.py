"""Call ingestion benchmark 2: a replayed scrape of N topics, end to end.

Run from the repository root:

    python benchmarks/ingest_scrape.py [--topics 2000] [--out data/bench/portal-replay]

1. Builds the replay set once (kept in --out): the local portal stand-in of the tests
   (tests/portal_server.py) serves N Horizon topics cloned from the real saved search rows
   (each under a new identifier, its budget overview and actions agreeing) and topic
   details shaped like the real open-topic file; `calls scrape --save` records it.
2. Runs the real command line `horizon-match calls scrape --replay DIR` in a child process
   on a fresh SQLite file, then again on the same file (nothing changed upstream). For each
   run: wall time of the whole command (interpreter start and schema creation included),
   peak resident memory of the child (ru_maxrss from wait4), and what the command printed.
3. Runs the unchanged scrape once more in this process with every SQL statement counted,
   to show that an unchanged run writes nothing and reads no topic details.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import event  # noqa: E402

from horizon_match.config import Settings  # noqa: E402
from horizon_match.db import Database  # noqa: E402
from horizon_match.ingest import ScrapeOptions, scrape  # noqa: E402
from portal_server import PortalServer  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "ft_portal"
AS_OF = "2026-06-01"


def record(out: Path, topics: int) -> None:
    if (out / "index.jsonl").is_file():
        print(f"replay set: {out} (already recorded)")
        return
    with tempfile.TemporaryDirectory() as tmp, PortalServer.from_fixtures(
        FIXTURES, synthetic=topics
    ) as server:
        db = Database(f"sqlite:///{Path(tmp) / 'record.db'}")
        started = time.perf_counter()
        summary = scrape(db, Settings(db_url=db.url), ScrapeOptions(
            base_url=server.url, save_dir=out, delay=0.0, page_size=100,
            now=datetime.fromisoformat(AS_OF)))
        db.close()
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"replay set: {out}: {summary.new} topics, {summary.pages} search pages, "
          f"{size:.1f} MB, recorded in {time.perf_counter() - started:.1f} s")


def cli_run(db_path: Path, replay: Path) -> tuple[float, float, str]:
    command = [sys.executable, str(ROOT / "cli.py"), "--db", str(db_path), "calls", "scrape",
               "--replay", str(replay), "--delay", "0", "--as-of", AS_OF]
    with tempfile.TemporaryFile("w+") as log:
        # posix_spawn, not fork: a forked child would inherit this process's peak RSS
        started = time.perf_counter()
        pid = os.posix_spawn(command[0], command, {**os.environ, "PYTHONPATH": str(ROOT)},
                             file_actions=[(os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, log.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if status != 0:
        raise SystemExit(f"command failed:\n{output}")
    return seconds, usage.ru_maxrss / 1024, output.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / "data" / "bench" / f"portal-replay-{args.topics}"
    record(out, args.topics)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        for label in ("first run (empty database)", "second run (nothing changed)"):
            seconds, peak_mb, output = cli_run(db_path, out)
            print(f"{label}: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
            print("    " + output.replace("\n", "\n    "))
        db = Database(f"sqlite:///{db_path}")
        writes = [0]

        def count(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                writes[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
        summary = scrape(db, Settings(db_url=db.url), ScrapeOptions(
            replay_dir=out, delay=0.0,
            now=datetime.fromisoformat(AS_OF)))
        db.close()
        print(f"third run, counted: {summary.describe()}; topic details read: "
              f"{summary.details_fetched}; requests: {summary.requests} "
              f"(= {summary.pages} search pages); SQL writes: {writes[0]}")


if __name__ == "__main__":
    main()
