"""How much a task-A profile says about where its target lies (no embeddings, seconds).

    python benchmarks/task_a_stats.py [--folder ../shared/data/cordis_dev]

For the queries whose target topic is not one of the profile projects' own topics: the share
with a profile project in the target's programme part, destination and call series
(year-free), the profile sizes, and how many candidate topics share the target's
destination / part / call series.
"""

from __future__ import annotations

import argparse
from collections import Counter
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


if __name__ == "__main__":
    main()
