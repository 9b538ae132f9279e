"""Does "no destination profile" point at the target in the held-out task-A runs? (seconds)

    python benchmarks/fold_leak_stats.py [--folder ../shared/data/cordis_dev] [--folds 5]

`evaluate cordis --task a --folds K` builds destination profiles only from projects of topics
outside the held-out fold (and, in training, outside an inner fold that holds each example's
own target). A destination all of whose topics are left out has no profile, and the target is
always left out. This prints, weighted by query, the share of candidate topics and the share
of targets whose destination (known on the full folder) has no profile, for the held-out folds
and for the training folds. Equal shares would mean the trace carries no information.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from horizon_match.evaluation import INNER_FOLDS, read_cordis_folder, topic_folds
from horizon_match.features import parse_identifier
from horizon_match.training import TrainingOptions

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "cordis_dev")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    seed = TrainingOptions().seed
    data = read_cordis_folder(args.folder, "a")
    overlap = [data.overlaps(q) for q in data.queries]
    fold_of = topic_folds(data.queries, args.folds, seed)
    years = sorted({q.call_year for q in data.queries})
    destination = {
        c.topic: parse_identifier(c.topic).destination for y in years for c in data.candidates(y)
    }

    def profiled(left_out: set[str]) -> set[str]:
        return {parse_identifier(p.topic).destination for p in data.projects.values()
                if p.topic and p.topic not in left_out} - {""}

    everywhere = profiled(set())

    def missing(topic: str, profiles: set[str]) -> bool:
        d = destination.get(topic, "")
        return d in everywhere and d not in profiles

    shares = {"held_out": [0, 0, 0, 0], "training": [0, 0, 0, 0]}  # cands missing/all, targets

    def count(kind: str, queries: list, profiles: set[str]) -> None:
        for q in queries:
            cands = data.candidates(q.call_year)
            shares[kind][0] += sum(missing(c.topic, profiles) for c in cands)
            shares[kind][1] += len(cands)
            shares[kind][2] += missing(q.target_topic, profiles)
            shares[kind][3] += 1

    for fold in range(args.folds):
        held = {t for t, f in fold_of.items() if f == fold}
        count("held_out", [q for q in data.queries if q.target_topic in held], profiled(held))
        train = [q for i, q in enumerate(data.queries) if q.target_topic not in held and not overlap[i]]
        inner_of = topic_folds(train, INNER_FOLDS, seed + 100 + fold)
        for inner in range(INNER_FOLDS):
            left_out = held | {t for t, f in inner_of.items() if f == inner}
            count("training", [q for q in train if inner_of[q.target_topic] == inner],
                  profiled(left_out))
    for kind, (cm, ca, tm, ta) in shares.items():
        print(f"{kind}: candidates without a destination profile {cm / ca:.1%}, "
              f"targets without one {tm / ta:.1%} ({ta} queries)")


if __name__ == "__main__":
    main()
