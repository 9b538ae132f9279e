"""Where does the matcher miss on task A? (seconds, from a rankings file)

    horizon-match --db sqlite:///data/bench/eval.db evaluate cordis ../shared/data/cordis_dev \\
        --task a --folds 5 --rankings data/bench/rankings-folds5.jsonl
    python benchmarks/task_a_breakdown.py data/bench/rankings-folds5.jsonl [--fold K]

MRR and Recall@1/10 of the no-overlap queries by the organisation's number of profile
projects, by its kind, by the target's programme part, and for Widening countries; then the
same metrics with the profile's own topics taken out of each ranking. That last line is a
diagnosis only (it uses topic identity, which the matcher must not): it bounds what pushing
the own topics down, the dev split's distractors, could ever give. A target below the file's
100 ranked topics counts as missed, so the MRR is about 0.002 below the one `evaluate` prints (it
ranks all candidates). `--fold K` keeps the queries whose target topic is in fold K of the
`--folds` of `evaluate` (to compare with a model that only that fold's topics were held out
from, see finetune_probe.py).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from horizon_match.call_filters import WIDENING_COUNTRIES
from horizon_match.evaluation import read_cordis_folder, topic_folds
from horizon_match.features import parse_identifier
from horizon_match.training import TrainingOptions
from task_a_stats import size_bucket  # noqa: E402  (this folder, as the script's own)

ROOT = Path(__file__).resolve().parent.parent
MISSING = 10_000  # rank of a target below the 100 topics the file holds per query


def line(ranks: list[int]) -> str:
    r = np.asarray(ranks, dtype=np.float64)
    return f"{len(r):6d}  MRR {np.mean(1 / r):.4f}  R@1 {np.mean(r <= 1):.4f}  R@10 {np.mean(r <= 10):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rankings", type=Path)
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "cordis_dev")
    parser.add_argument("--fold", type=int, help="only the queries whose target is in this fold")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    data = read_cordis_folder(args.folder, "a")
    fold_of = topic_folds(data.queries, args.folds, TrainingOptions().seed)
    queries = {q.query_id: q for q in data.queries}
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    ranks: list[int] = []
    without_own: list[int] = []
    with args.rankings.open(encoding="utf-8") as fh:
        for raw in fh:
            row = json.loads(raw)
            q = queries[row["query_id"]]
            if data.overlaps(q) or (args.fold is not None and fold_of.get(q.target_topic) != args.fold):
                continue
            ranked = row["ranked"]
            own = {data.projects[p].topic for p in q.profile_ids if p in data.projects}
            if q.target_topic in ranked:
                at = ranked.index(q.target_topic)
                rank = at + 1
                rank_without_own = rank - sum(1 for t in ranked[:at] if t in own)
            else:
                rank = rank_without_own = MISSING
            ranks.append(rank)
            without_own.append(rank_without_own)
            groups["profile projects"][size_bucket(len(q.profile_ids))].append(rank)
            groups["kind of organisation"][q.activity_type or "?"].append(rank)
            groups["target's programme part"][parse_identifier(q.target_topic).part or "?"].append(rank)
            groups["Widening country"][str(q.country in WIDENING_COUNTRIES)].append(rank)
    print(f"{'no-overlap queries':28s}{line(ranks)}")
    for title, by in groups.items():
        print(f"\nby {title}")
        for key, values in sorted(by.items(), key=lambda kv: -len(kv[1])):
            print(f"  {key:26s}{line(values)}")
    print(f"\n{'own topics taken out':28s}{line(without_own)}  (diagnosis only: topic identity)")


if __name__ == "__main__":
    main()
