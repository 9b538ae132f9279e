"""CORDIS import benchmark: time and peak memory of `horizon-match cordis import`.

Run from the repository root:

    python benchmarks/cordis_import.py [--dev ../shared/data/cordis_dev] [--scale 4]
        [--pg postgresql://postgres@127.0.0.1:5432/test] [--no-pg]

For the dev folder and for a synthetic folder `--scale` times larger (the dev rows repeated
with shifted project ids and PICs, so every copy is new projects and new organisations:
a pessimistic stand-in for a bigger export, where PICs would recur), it runs the real command
line in a child process, first on an empty database and then again on the same data
(re-import, which must change nothing), on a fresh SQLite file and on PostgreSQL (a scratch
schema, dropped afterwards). Reported per run: wall time of the whole command (interpreter
start, schema creation, reading, checking, storing), the import's own time as the command
prints it, and the child's peak resident memory (ru_maxrss from wait4).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEV = ROOT.parent / "shared" / "data" / "cordis_dev"
FILES = {
    "projects.csv": ("id",),
    "organizations.csv": ("projectID", "organisationID"),
    "project_euroscivoc.csv": ("projectID",),
}
SHIFT = 1_000_000_000  # ids and PICs have 9 digits: copy k gets k * SHIFT added


def make_scaled_folder(dev: Path, target: Path, scale: int) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, id_columns in FILES.items():
        with (dev / name).open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
        with (target / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, header)
            writer.writeheader()
            for k in range(scale):
                for row in rows:
                    copy = dict(row)
                    for column in id_columns:
                        copy[column] = str(int(row[column]) + k * SHIFT)
                    writer.writerow(copy)


def run_import(db_url: str, folder: Path) -> dict[str, float | str]:
    command = [sys.executable, "-m", "cli", "--db", db_url, "cordis", "import", str(folder)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    out = child.stdout.read() if child.stdout else ""
    err = child.stderr.read() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {' '.join(command)}\n{out}{err}")
    own = re.search(r"in ([\d.]+) s", out)
    return {
        "wall": wall,
        "own": float(own.group(1)) if own else float("nan"),
        "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "output": out.strip(),
    }


def pg_schema(url: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = "bench_" + uuid.uuid4().hex[:10]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{url}?options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    results: list[tuple[str, str, str, dict[str, float | str]]] = []
    with tempfile.TemporaryDirectory(prefix="hm-cordis-bench-") as tmp:
        scaled = Path(tmp) / f"x{args.scale}"
        make_scaled_folder(args.dev, scaled, args.scale)
        folders = [("dev", args.dev), (f"{args.scale}x dev", scaled)]
        for label, folder in folders:
            sqlite_file = Path(tmp) / (label.replace(" ", "_") + ".db")
            backends = [("SQLite", f"sqlite:///{sqlite_file}", None)]
            if not args.no_pg:
                schema, url = pg_schema(args.pg)
                backends.append(("PostgreSQL", url, schema))
            for backend, url, schema in backends:
                try:
                    for run in ("first import", "re-import"):
                        result = run_import(url, folder)
                        results.append((label, backend, run, result))
                        print(f"{label:8} {backend:10} {run:12} wall {result['wall']:6.1f} s  "
                              f"import {result['own']:6.1f} s  "
                              f"peak RSS {result['rss_mib']:6.0f} MiB"
                              f"\n    {result['output']}", flush=True)
                finally:
                    if schema:
                        drop_schema(args.pg, schema)

    print("\n| folder | database | run | wall time (whole command) | import (as printed) "
          "| peak RSS |")
    print("|---|---|---|---:|---:|---:|")
    for label, backend, run, r in results:
        print(f"| {label} | {backend} | {run} | {r['wall']:.1f} s | {r['own']:.1f} s | "
              f"{r['rss_mib']:.0f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
