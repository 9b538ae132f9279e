"""Call ingestion benchmark 1: parser throughput on the real portal fixtures.

Run from the repository root:

    python benchmarks/ingest_parse.py [--fixtures ../shared/fixtures/ft_portal] [--seconds 3]

For each saved response it parses the file repeatedly for about `--seconds` and reports
topics per second: search rows (every row of the page, with its HTML cleaned) and
topic-details files (description, conditions, latest news cleaned; budget, deadlines,
links). JSON decoding is done once beforehand: this measures our parsing, not json.loads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scrapers.ft_portal import parse_search_results, parse_topic_details  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "fixtures" / "ft_portal"


def rate(fn, topics: int, seconds: float) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    fn()  # warm up (regex compilation, bs4 tables)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return runs * topics / (time.perf_counter() - start), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'file':62} {'topics':>6} {'topics/s':>9}")
    for path in sorted(args.fixtures.glob("*.json")):
        payload = json.loads(path.read_text(encoding="utf-8"))
        if "TopicDetails" in payload:
            fn, topics = (lambda p=payload: parse_topic_details(p)), 1
        elif "results" in payload:
            topics = len(payload["results"])
            fn = lambda p=payload: parse_search_results(p, languages=None)  # noqa: E731
        else:
            continue
        per_second, _ = rate(fn, topics, args.seconds)
        print(f"{path.name:62} {topics:6d} {per_second:9.1f}")


if __name__ == "__main__":
    main()
