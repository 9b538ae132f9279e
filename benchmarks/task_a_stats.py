"""How much a task-A profile says about where its target lies (no embeddings, seconds).

    python benchmarks/task_a_stats.py [--folder ../shared/data/cordis_dev]

For the queries whose target topic is not one of the profile projects' own topics: the share
with a profile project in the target's programme part, destination and call series
(year-free), the profile sizes, and how many candidate topics share the target's
destination / part / call series.

It also prints a ceiling. An organisation's queries have profiles that differ by one project
(each leaves out its own target), so for a big organisation a matcher that may not use topic
identity gives them nearly the same ranking. If it gave them exactly the same ranking, the
best it could do is put that organisation's targets first, most frequent first: MRR
sum(count_k / k) and at most 10 targets in the top 10. The ceiling is that bound, summed over
organisations, per profile size.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from horizon_match.evaluation import read_cordis_folder
from horizon_match.features import parse_identifier

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "cordis_dev")
    args = parser.parse_args()
    data = read_cordis_folder(args.folder)
    queries = [q for q in data.queries if not data.overlaps(q)]
    places = {}
    for year in {q.call_year for q in queries}:
        places.update({c.topic: parse_identifier(c.topic) for c in data.candidates(year)})
    per = {k: Counter(getattr(p, k) for p in places.values()) for k in ("part", "destination", "call")}
    same: Counter[str] = Counter()
    sizes: dict[str, list[int]] = {k: [] for k in per}
    profile_sizes = []
    for q in queries:
        target = places[q.target_topic]
        own = [parse_identifier(data.projects[p].topic) for p in q.profile_ids
               if p in data.projects and data.projects[p].topic]
        profile_sizes.append(len(own))
        for k in per:
            same[k] += any(getattr(o, k) == getattr(target, k) for o in own)
            sizes[k].append(per[k][getattr(target, k)])
    print(f"{len(queries)} no-overlap queries, {len(places)} candidate topics")
    print(f"profile projects: median {np.median(profile_sizes):.0f}, mean {np.mean(profile_sizes):.1f}")
    for k in per:
        print(f"{k:<12} a profile project shares the target's {k}: {same[k] / len(queries):.1%}; "
              f"candidates sharing it: median {np.median(sizes[k]):.0f}")
    print_ceiling(queries)


def size_bucket(n: int) -> str:
    """Profile-size bins, shared with benchmarks/task_a_breakdown.py so the two read side by side."""
    return "30+" if n >= 30 else f"{n // 5 * 5}-{n // 5 * 5 + 4}"


def print_ceiling(queries: list) -> None:
    by_org: dict[str, list] = defaultdict(list)
    for q in queries:
        by_org[q.organisation].append(q)
    rr: dict[str, float] = defaultdict(float)
    top10: dict[str, int] = defaultdict(int)
    n: dict[str, int] = defaultdict(int)
    for group in by_org.values():
        counts = sorted(Counter(q.target_topic for q in group).values(), reverse=True)
        # profiles of one organisation differ in size by at most one; bin by the largest
        bucket = size_bucket(max(len(q.profile_ids) for q in group))
        for key in (bucket, "all"):
            rr[key] += sum(c / k for k, c in enumerate(counts, start=1))
            top10[key] += sum(counts[:10])
            n[key] += len(group)
    print(f"\nceiling with one ranking per organisation ({len(by_org)} organisations)")
    for key in sorted(n, key=lambda k: int(k.split("-")[0].rstrip("+")) if k != "all" else 1000):
        print(f"  profile projects {key:6s} n={n[key]:5d}  MRR <= {rr[key] / n[key]:.4f}  "
              f"R@10 <= {top10[key] / n[key]:.4f}")


if __name__ == "__main__":
    main()
